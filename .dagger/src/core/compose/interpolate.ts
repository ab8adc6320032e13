/**
 * Variables in a compose file as compose substitutes them (compose-go's template rules): `$$` is a
 * literal `$`; `$N` and `${N}`; `${N:-d}` (unset or empty: d) and `${N-d}` (unset: d); `${N:?msg}` and
 * `${N?msg}` (required: an error naming the variable); `${N:+r}` and `${N+r}` (set: r); defaults and
 * replacements may hold variables themselves (`${B:-${N}}`). A variable without a value is "".
 */
import { PipelineError } from "../errors.js";

export interface InterpolateOptions {
  /** A required variable without a value is an error (a file checked before a deploy); otherwise "". */
  strict?: boolean;
  /** Where the text is, for the error (`services.web.image`). */
  where?: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

export function interpolate(text: string, vars: ReadonlyMap<string, string>, o: InterpolateOptions = {}): string {
  if (!text.includes("$")) return text;
  return expand(text, 0, vars, o, false).out;
}

/** Expands from `i` to the end, or (nested) to the `}` that closes the braces it is inside. */
function expand(
  text: string,
  i: number,
  vars: ReadonlyMap<string, string>,
  o: InterpolateOptions,
  nested: boolean,
): { out: string; end: number } {
  let out = "";
  while (i < text.length) {
    const c = text[i]!;
    if (nested && c === "}") return { out, end: i };
    if (c !== "$") {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === "$") {
      out += "$";
      i += 2;
      continue;
    }
    if (next === "{") {
      const r = braced(text, i + 2, vars, o);
      out += r.out;
      i = r.end + 1;
      continue;
    }
    const name = NAME.exec(text.slice(i + 1))?.[0];
    if (name) {
      out += vars.get(name) ?? "";
      i += 1 + name.length;
      continue;
    }
    out += c; // a lone `$` stays
    i++;
  }
  return { out, end: i };
}

/** `${…}` from just after the brace: the value and the index of the closing `}`. */
function braced(
  text: string,
  i: number,
  vars: ReadonlyMap<string, string>,
  o: InterpolateOptions,
): { out: string; end: number } {
  const name = NAME.exec(text.slice(i))?.[0];
  if (!name) throw invalid(text, o, "a variable name must follow `${`");
  let j = i + name.length;
  if (j >= text.length) throw invalid(text, o, "a `${` is not closed");
  const value = vars.get(name);
  if (text[j] === "}") return { out: value ?? "", end: j };
  const colon = text[j] === ":";
  if (colon) j++;
  const op = text[j];
  if (op !== "-" && op !== "?" && op !== "+")
    throw invalid(text, o, `\`${text.slice(i - 2, j + 1)}\` is no substitution compose knows`);
  const rest = expand(text, j + 1, vars, o, true);
  if (text[rest.end] !== "}") throw invalid(text, o, "a `${` is not closed");
  const set = value !== undefined && (!colon || value !== "");
  if (op === "-") return { out: set ? value : rest.out, end: rest.end };
  if (op === "+") return { out: set ? rest.out : "", end: rest.end };
  if (set) return { out: value, end: rest.end };
  if (o.strict)
    throw new PipelineError(
      "COMPOSE_INVALID",
      `${o.where ? `${o.where}: ` : ""}required variable ${name} is missing a value${rest.out ? `: ${rest.out}` : ""}`,
      `set ${name} in the .env the deploy gets (--env-file), or give it a default: \${${name}:-value}`,
    );
  return { out: "", end: rest.end };
}

function invalid(text: string, o: InterpolateOptions, why: string): PipelineError {
  return new PipelineError(
    "COMPOSE_INVALID",
    `${o.where ? `${o.where}: ` : ""}\`${text}\`: ${why}`,
    "write variables as compose does: $NAME, ${NAME}, ${NAME:-default}, ${NAME:?message}; a literal $ is $$",
  );
}
