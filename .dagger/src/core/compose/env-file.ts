import { shellQuote } from "../shell.js";
import { interpolate } from "./interpolate.js";

/**
 * The keys of a `.env` file and their values, as compose reads them (test/module/dotenv-judge.test.ts holds this
 * to compose's own reading of its fixtures). Values are only ever compared or substituted, never shown.
 */
export function envEntries(text: string): Map<string, string> {
  return parseDotenv(text);
}

export interface EnvDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

export function diffEnv(before: string, after: string): EnvDiff {
  const a = envEntries(before);
  const b = envEntries(after);
  return {
    added: [...b.keys()].filter((k) => !a.has(k)).sort(),
    removed: [...a.keys()].filter((k) => !b.has(k)).sort(),
    changed: [...b.keys()].filter((k) => a.has(k) && a.get(k) !== b.get(k)).sort(),
  };
}

/** The values of a `.env` file as compose reads them for interpolation (one reading: `parseDotenv`). */
export function envValues(text: string): Map<string, string> {
  return parseDotenv(text);
}

/** Whether compose can read the `.env` at all: its first problem (`line 7: key cannot contain a space`), or undefined. */
export function dotenvProblem(text: string): string | undefined {
  try {
    parseDotenv(text, { strict: true });
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * compose's `.env` reading: a UTF-8 BOM skipped; `#` lines and blank lines skipped; `export ` allowed; `KEY=value`
 * or `KEY: value`, spaces around the key and the value trimmed; a bare `KEY` takes the environment's value (here
 * there is none: it is left out); unquoted values end at ` #` and substitute `${OTHER}` (the keys above it);
 * `'…'` is literal but for `\'`, and may span lines; `"…"` may span lines, knows `\n`, `\r`, `\"`, `\\` and
 * `\$`, and substitutes. In strict mode a line compose refuses (a key with a space) is an error.
 */
export function parseDotenv(text: string, o: { strict?: boolean } = {}): Map<string, string> {
  const out = new Map<string, string>();
  const src = text.replace(/^\uFEFF/, "").replace(/\r\n?/g, "\n");
  let i = 0;
  let line = 1;
  const fail = (why: string) => {
    throw new Error(`line ${line}: ${why}`);
  };
  while (i < src.length) {
    // one entry: skip blank lines and comments
    const nl = src.indexOf("\n", i);
    const end = nl < 0 ? src.length : nl;
    const head = src.slice(i, end);
    const trimmed = head.trim();
    if (trimmed === "" || trimmed.startsWith("#")) {
      i = end + 1;
      line++;
      continue;
    }
    const m = /^\s*(?:export\s+)?([^=:#]*?)\s*([=:])[ \t]*/.exec(head);
    if (!m) {
      // a bare name: the environment's value, which a deploy does not have
      const name = trimmed.replace(/^export\s+/, "");
      if (/\s/.test(name) && o.strict) fail("key cannot contain a space");
      i = end + 1;
      line++;
      continue;
    }
    const key = m[1]!;
    if (/\s/.test(key) && o.strict) fail("key cannot contain a space");
    if (key === "" && o.strict) fail("a line without a key");
    let j = i + m[0].length;
    const q = src[j];
    let value: string;
    if (q === '"' || q === "'") {
      // the closing quote: the first one not escaped, maybe lines further
      let k = j + 1;
      while (k < src.length && !(src[k] === q && src[k - 1] !== "\\")) k++;
      if (k >= src.length && o.strict) fail(`unterminated quoted value`);
      const raw = src.slice(j + 1, k);
      line += raw.split("\n").length - 1;
      value =
        q === "'"
          ? raw.replace(/\\'/g, "'")
          : substitute(
              raw.replace(/\\([nr])/g, (_, c: string) => (c === "n" ? "\n" : "\r")).replace(/\\([^$])/g, "$1"),
              out,
            );
      const after = src.indexOf("\n", k);
      j = after < 0 ? src.length : after;
      // after the closing quote: a comment at most (`'it''s'` is refused by compose)
      if (o.strict && !/^\s*(#.*)?$/.test(src.slice(k + 1, j))) fail(`unexpected characters after the quoted value`);
    } else {
      const rest = src.slice(j, end);
      const hash = /(^|\s)#/.exec(rest);
      value = substitute((hash ? rest.slice(0, hash.index) : rest).trim(), out);
      j = end;
    }
    if (key !== "") out.set(key, value);
    i = j + 1;
    line++;
  }
  return out;
}

/** `${OTHER}`, `$OTHER`, `${OTHER:-d}` in a value: the keys read so far (compose's rules); `\$` and `$$` are `$`. */
function substitute(value: string, known: ReadonlyMap<string, string>): string {
  if (!value.includes("$")) return value;
  const parts = value.split("\\$");
  return parts.map((p) => interpolate(p, known)).join("$");
}

/**
 * A file for `. file` that exports the `.env`'s variables, each value quoted by
 * the one quoting routine: how `docker stack deploy` (which reads no `.env`)
 * gets them for interpolation without a value on any command line. Keys that
 * are no shell name (`a.b`, `a-b`) cannot be interpolated anyway and are left out,
 * and so are docker's and the shell's own names (`notExported`).
 */
export function envExports(text: string): string {
  return [...envValues(text)]
    .filter(([k]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && !notExported(k))
    .map(([k, v]) => `export ${k}=${shellQuote(v)}\n`)
    .join("");
}

/**
 * Names the release's `.env` may not set in the shell that deploys: docker's own (where it goes, which login) and the
 * shell's.
 */
export function notExported(key: string): boolean {
  return (
    /^DOCKER_/.test(key) ||
    /^LD_/.test(key) ||
    [
      "PATH",
      "IFS",
      "HOME",
      "ENV",
      "BASH_ENV",
      "CDPATH",
      "PWD",
      "OLDPWD",
      "SHELL",
      "PS1",
      "PS2",
      "PS4",
      "OPTIND",
    ].includes(key)
  );
}
