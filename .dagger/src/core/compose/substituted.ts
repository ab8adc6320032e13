/**
 * What compose refuses only once the deploy's variables are in: a bind whose source substitutes to nothing
 * (`${MEDIA}:/media` with MEDIA unset is `:/media`), a typed field that is no longer its type (`replicas: ${N}`,
 * `read_only: ${RO}`). Checked with the production `.env` before anything is sent, so such a file fails here,
 * with the field and the variable named, and never halfway on the server. Read on the rendered release: what the
 * server's compose reads (a build's arguments are gone from it).
 */
import { PipelineError } from "../errors.js";
import { composeData } from "./compose.js";
import { envValues } from "./env-file.js";
import { interpolate } from "./interpolate.js";

const INT = ["scale", "deploy.replicas", "healthcheck.retries", "cpu_shares", "pids_limit", "oom_score_adj"];
const NUMBER = ["cpus", "deploy.resources.limits.cpus", "deploy.resources.reservations.cpus"];
const BOOL = ["privileged", "read_only", "tty", "stdin_open", "init", "oom_kill_disable", "healthcheck.disable"];

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

function at(svc: Record<string, unknown>, path: string): unknown {
  let v: unknown = svc;
  for (const k of path.split(".")) v = isObject(v) ? v[k] : undefined;
  return v;
}

/** The names of the variables a text uses, for the message. */
const names = (s: string) => [...new Set([...s.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!))];

/** Every such problem of `root` (the resolved compose data) with `vars`, as `services.x.key: …` lines. */
export function substitutionProblems(root: unknown, vars: ReadonlyMap<string, string>): string[] {
  const services = isObject(root) && isObject(root.services) ? root.services : {};
  const problems: string[] = [];
  const unset = (s: string) => {
    const missing = names(s).filter((n) => !vars.get(n));
    return missing.length ? ` (${missing.join(", ")} unset or empty in the .env)` : "";
  };
  // a required variable without a value (`${TOKEN:?set it}`), anywhere in the file: compose refuses the whole file
  const walk = (v: unknown, at: string) => {
    if (typeof v === "string") {
      if (!v.includes("$")) return;
      try {
        interpolate(v, vars, { strict: true, where: at });
      } catch (e) {
        problems.push((e as Error).message);
      }
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}[${i}]`));
    else if (isObject(v)) for (const [k, x] of Object.entries(v)) walk(x, at ? `${at}.${k}` : k);
  };
  walk(root, "");
  for (const [name, raw] of Object.entries(services)) {
    if (!isObject(raw)) continue;
    const where = `services.${name}`;
    const typed = (paths: string[], ok: (s: string) => boolean, kind: string) => {
      for (const p of paths) {
        const v = at(raw, p);
        if (typeof v !== "string" || !v.includes("$")) continue;
        const s = interpolate(v, vars).trim();
        if (!ok(s))
          problems.push(
            `${where}.${p}: \`${v}\` is \`${s}\` once substituted, not ${kind}${unset(v)}; compose refuses it`,
          );
      }
    };
    typed(INT, (s) => /^-?\d+$/.test(s), "a whole number");
    typed(NUMBER, (s) => /^-?(\d+\.?\d*|\.\d+)$/.test(s), "a number");
    typed(BOOL, (s) => /^(true|false|yes|no|on|off|y|n|1|0)$/i.test(s), "true or false");
    const volumes = Array.isArray(raw.volumes) ? raw.volumes : [];
    volumes.forEach((v, i) => {
      if (typeof v !== "string" || !v.includes("$")) return;
      const s = interpolate(v, vars);
      const parts = s.split(":");
      if (parts.some((p) => p === "") || s.trim() === "")
        problems.push(
          `${where}.volumes[${i}]: \`${v}\` is \`${s}\` once substituted, with an empty part${unset(v)}; set the variable in the production .env, or give it a default (\`\${NAME:-./data}\`)`,
        );
    });
  }
  return problems;
}

/**
 * Refuses a release that the server's compose would refuse with this `.env` (`what` names the input it came from),
 * before anything is sent. The message names fields and variables, never a value of the `.env`.
 */
export function assertSubstitutable(file: string, releaseText: string, env: string, what: string): void {
  const problems = substitutionProblems(composeData(releaseText), envValues(env));
  if (problems.length)
    throw new PipelineError(
      "COMPOSE_INVALID",
      `${file} with the .env of --${what.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} cannot be deployed; nothing was sent:\n  ${problems.join("\n  ")}`,
      `set the variables named above in that .env, or give them defaults in the compose file (\`\${NAME:-value}\`)`,
    );
}
