/**
 * How compose merges one service definition over another (`extends`) and one file over another (an `include`
 * with several paths): maps merge key by key, lists append, some keys replace (`command`, `entrypoint`,
 * `healthcheck.test`), some lists are merged as maps (`environment`, `labels`, `depends_on`, `networks`), and
 * lists that name things keep one entry per name (ports, volumes by target, env files by path), the last
 * definition in the first one's place. `!override` (take this value whole) and `!reset` (drop the key) are
 * given as the paths they were written at. The differential test (test/module/compose-judge.test.ts) holds these
 * rules to what `docker compose config` makes of compose's own fixtures.
 */

import { sourceEnd } from "./short-volume.js";

export type Path = readonly (string | number)[];

export interface Tagged {
  /** Paths (from the document's root) written with `!override`. */
  overrides: ReadonlySet<string>;
  /** Paths written with `!reset`. */
  resets: ReadonlySet<string>;
}

export const pathKey = (p: Path): string => JSON.stringify(p);

const NONE: Tagged = { overrides: new Set(), resets: new Set() };

type Merger = (base: unknown, over: unknown, at: Path, tags: Tagged) => unknown;

/** `services.*.environment` style patterns against a path. */
function matches(pattern: string, at: Path): boolean {
  const parts = pattern.split(".");
  return parts.length === at.length && parts.every((p, i) => p === "*" || p === String(at[i]));
}

const isMap = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/** A map or list of `KEY=value` (or bare `KEY`) as a list, maps in key order, as compose turns them. */
function asSequence(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (isMap(v))
    return Object.keys(v)
      .sort()
      .map((k) => (v[k] === null || v[k] === undefined ? k : `${k}=${String(v[k])}`));
  if (v === null || v === undefined) return [];
  return [v];
}

function asMapping(v: unknown, fill: unknown): Record<string, unknown> {
  if (isMap(v)) return v;
  if (Array.isArray(v)) return Object.fromEntries(v.map((k) => [String(k), structuredClone(fill)]));
  return {};
}

const toSequence: Merger = (b, o) => [...asSequence(b), ...asSequence(o)];
const replace: Merger = (_b, o) => o;

const SPECIAL: [string, Merger][] = [
  ["services.*.command", replace],
  ["services.*.entrypoint", replace],
  ["services.*.healthcheck.test", replace],
  ...[
    "services.*.annotations",
    "services.*.build.args",
    "services.*.build.additional_contexts",
    "services.*.build.extra_hosts",
    "services.*.build.labels",
    "services.*.deploy.labels",
    "services.*.dns",
    "services.*.dns_opt",
    "services.*.dns_search",
    "services.*.env_file",
    "services.*.label_file",
    "services.*.environment",
    "services.*.extra_hosts",
    "services.*.labels",
    "services.*.sysctls",
    "services.*.tmpfs",
    "networks.*.labels",
    "volumes.*.labels",
  ].map((p): [string, Merger] => [p, toSequence]),
  [
    "services.*.build",
    (b, o, at, t) =>
      mergeMappings(
        typeof b === "string" ? { context: b } : asMapping(b, null),
        typeof o === "string" ? { context: o } : asMapping(o, null),
        at,
        t,
      ),
  ],
  [
    "services.*.depends_on",
    (b, o, at, t) =>
      mergeMappings(
        asMapping(b, { condition: "service_started", required: true }),
        asMapping(o, { condition: "service_started", required: true }),
        at,
        t,
      ),
  ],
  ["services.*.networks", (b, o, at, t) => mergeMappings(asMapping(b, null), asMapping(o, null), at, t)],
  [
    "services.*.logging",
    (b, o, at, t) => {
      const bd = isMap(b) ? b.driver : undefined;
      const od = isMap(o) ? o.driver : undefined;
      return bd !== undefined && od !== undefined && bd !== od ? o : mergeYamlDefault(b, o, at, t);
    },
  ],
  ["services.*.ulimits.*", (b, o, at, t) => (isMap(b) && isMap(o) ? mergeMappings(b, o, at, t) : o)],
];

function mergeMappings(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
  at: Path,
  tags: Tagged,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const here = [...at, k];
    if (tags.resets.has(pathKey(here))) delete out[k];
    else if (tags.overrides.has(pathKey(here)) || !(k in out)) out[k] = v;
    else out[k] = mergeYaml(out[k], v, here, tags);
  }
  return out;
}

function mergeYamlDefault(base: unknown, over: unknown, at: Path, tags: Tagged): unknown {
  if (over === null || over === undefined) return base;
  if (isMap(base) && isMap(over)) return mergeMappings(base, over, at, tags);
  if (Array.isArray(base) && Array.isArray(over)) return [...base, ...over];
  return over;
}

/** `over` merged onto `base` at `at` (the path both sit at: `["services", "web"]`), as compose merges them. */
export function mergeYaml(base: unknown, over: unknown, at: Path, tags: Tagged = NONE): unknown {
  const special = SPECIAL.find(([p]) => matches(p, at));
  if (special) return special[1](base, over, at, tags);
  return mergeYamlDefault(base, over, at, tags);
}

// ---- one entry per name, as compose keeps them after a merge

type Indexer = (entry: unknown) => string;

const keyValue: Indexer = (e) => {
  const s = typeof e === "string" ? e : String(e);
  const eq = s.indexOf("=");
  return eq < 0 ? s : s.slice(0, eq);
};

/** A short volume `src:dst[:mode]` (or just `dst`) or a long one: its target. */
const volumeTarget: Indexer = (e) => {
  if (isMap(e)) return String(e.target ?? "");
  const s = String(e);
  const end = sourceEnd(s);
  return end === s.length ? s : (s.slice(end + 1).split(":")[0] ?? "");
};

const port: Indexer = (e) =>
  isMap(e)
    ? `${String(e.host_ip ?? "")}:${String(e.published ?? "")}:${String(e.target)}:${String(e.protocol ?? "tcp")}`
    : String(e);

const mount =
  (dir: string): Indexer =>
  (e) =>
    isMap(e) ? String(e.target ?? `${dir}/${String(e.source)}`) : `${dir}/${String(e)}`;

const UNIQUE: [string, Indexer][] = [
  ["services.*.annotations", keyValue],
  ["services.*.build.args", keyValue],
  ["services.*.build.additional_contexts", keyValue],
  ["services.*.build.labels", keyValue],
  ["services.*.build.tags", keyValue],
  ["services.*.cap_add", keyValue],
  ["services.*.cap_drop", keyValue],
  ["services.*.configs", mount("")],
  ["services.*.deploy.labels", keyValue],
  ["services.*.dns", keyValue],
  ["services.*.dns_opt", keyValue],
  ["services.*.dns_search", keyValue],
  ["services.*.environment", keyValue],
  ["services.*.env_file", (e) => (isMap(e) ? String(e.path) : String(e))],
  ["services.*.expose", (e) => String(e)],
  ["services.*.extra_hosts", (e) => String(e)],
  ["services.*.labels", keyValue],
  ["services.*.links", keyValue],
  ["services.*.networks.*.aliases", keyValue],
  ["services.*.ports", port],
  ["services.*.profiles", keyValue],
  ["services.*.secrets", mount("/run/secrets")],
  ["services.*.sysctls", keyValue],
  ["services.*.tmpfs", keyValue],
  ["services.*.volumes", volumeTarget],
  ["services.*.devices", volumeTarget],
];

/** Lists that name things keep one entry per name: the last definition, in the first one's place. */
export function enforceUnicity(value: unknown, at: Path = []): unknown {
  if (isMap(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, enforceUnicity(v, [...at, k])]));
  if (!Array.isArray(value)) return value;
  const indexer = UNIQUE.find(([p]) => matches(p, at))?.[1];
  if (!indexer) return value;
  const out: unknown[] = [];
  const seen = new Map<string, number>();
  for (const e of value) {
    const k = indexer(e);
    const j = seen.get(k);
    if (j === undefined) {
      seen.set(k, out.length);
      out.push(e);
    } else out[j] = e;
  }
  return out;
}
