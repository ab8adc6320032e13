/**
 * Settings in one committed file (vps-pipeline.yml at the repository's root): every setting of the module and of
 * `vps(...)` that is not a secret, named as its flag is. A flag given on the command line wins over the file, the
 * file over the default; `plan` and `status` say which one each setting came from. Secrets are never read from the
 * file: they stay Dagger secrets given by reference on the command line.
 */
import { parse } from "yaml";
import { DEFAULTS } from "../defaults.js";
import { PipelineError } from "../errors.js";

/** The file looked for at the source's root when `--settings` names none. */
export const SETTINGS_FILE = "vps-pipeline.yml";

export type Scope = "module" | "vps";
/** `found`: the compose file, taken from the search list (core/settings/compose-file-search.ts). */
export type Origin = "flag" | "file" | "default" | "found";
type Kind = "string" | "integer" | "strings";
type Value = string | number | string[];

interface SettingDef {
  /** The argument's name (`keepReleases`); in the file and on the command line its kebab-case (`keep-releases`). */
  name: string;
  scope: Scope;
  kind: Kind;
  /** Absent: required (host, hostKey, project), or found otherwise (composeFile: the compose-file search). */
  default?: Value;
}

const s = (name: string, scope: Scope, kind: Kind, dflt?: Value): SettingDef => ({
  name,
  scope,
  kind,
  ...(dflt !== undefined ? { default: dflt } : {}),
});

/** Every setting a file may hold, in the order `vps --help` lists them. */
export const SETTINGS: readonly SettingDef[] = [
  s("composeFile", "module", "string"),
  s("imagePrefix", "module", "string", ""),
  s("registry", "module", "string", ""),
  s("registryUser", "module", "string", ""),
  s("platforms", "module", "strings", []),
  s("host", "vps", "string"),
  s("hostKey", "vps", "string"),
  s("project", "vps", "string"),
  s("user", "vps", "string", DEFAULTS.user),
  s("port", "vps", "integer", DEFAULTS.port),
  s("dir", "vps", "string", ""),
  s("pullUser", "vps", "string", ""),
  s("keepReleases", "vps", "integer", DEFAULTS.keepReleases),
  s("healthTimeout", "vps", "integer", DEFAULTS.healthTimeout),
  s("lockTimeout", "vps", "integer", DEFAULTS.lockTimeout),
  s("by", "vps", "string", ""),
  s("edgeImage", "vps", "string", DEFAULTS.edgeImage),
  s("edgeTls", "vps", "string", DEFAULTS.edgeTls),
  s("orchestrator", "vps", "string", DEFAULTS.orchestrator),
  s("resticImage", "vps", "string", DEFAULTS.resticImage),
  s("keepSnapshots", "vps", "integer", DEFAULTS.keepSnapshots),
  s("keepSnapshotDays", "vps", "integer", DEFAULTS.keepSnapshotDays),
  s("keepOffsiteSnapshots", "vps", "integer", DEFAULTS.keepOffsiteSnapshots),
  s("keepOffsiteSnapshotDays", "vps", "integer", DEFAULTS.keepOffsiteSnapshotDays),
  s("backupOffsite", "vps", "string", ""),
  s("backupOffsiteHostKey", "vps", "string", ""),
  s("previewDomain", "vps", "string", ""),
  s("previewLimit", "vps", "integer", DEFAULTS.previewLimit),
  s("previewWhenFull", "vps", "string", DEFAULTS.previewWhenFull),
  s("previewTtl", "vps", "integer", DEFAULTS.previewTtl),
  s("previewMemory", "vps", "string", DEFAULTS.previewMemory),
  s("previewCpus", "vps", "string", DEFAULTS.previewCpus),
  s("previewSeed", "vps", "string", ""),
];

/** Secrets, with the scope that takes them: named in a file, they are refused with the flag to use instead. */
export const SECRET_SETTINGS: Readonly<Record<string, Scope>> = {
  registryToken: "module",
  sshKey: "vps",
  sshKeyPassphrase: "vps",
  pullToken: "vps",
  envFile: "vps",
  backupPassword: "vps",
  backupOffsiteKey: "vps",
  previewEnv: "vps",
  notifyUrl: "vps",
};

/** `keepReleases` → `keep-releases`: the flag's name, and the key in the file. */
export const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** What a settings file says, per scope, by argument name (`keepReleases`). */
export interface SettingsFile {
  path: string;
  module: Record<string, Value>;
  vps: Record<string, Value>;
}

const byKey = new Map(SETTINGS.map((d) => [kebab(d.name), d]));
const secretKeys = new Set(Object.keys(SECRET_SETTINGS).map(kebab));

/** The known key nearest to a misspelt one (at most 2 edits away), for the message. */
function nearest(key: string, keys: Iterable<string>): string | undefined {
  const distance = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    return d[a.length]![b.length]!;
  };
  let best: [string, number] | undefined;
  for (const k of keys) {
    const n = distance(key, k);
    if (n <= 2 && (!best || n < best[1])) best = [k, n];
  }
  return best?.[0];
}

/** A file's value as the setting's kind, or what is wrong with it. */
function value(def: SettingDef, v: unknown): { ok: Value } | { problem: string } {
  switch (def.kind) {
    case "integer":
      return typeof v === "number" && Number.isInteger(v) ? { ok: v } : { problem: "must be a whole number" };
    case "string":
      // `preview-cpus: 1` is what a YAML writer means as text
      if (typeof v === "number") return { ok: String(v) };
      return typeof v === "string" ? { ok: v } : { problem: "must be a text value" };
    case "strings":
      if (typeof v === "string") return { ok: [v] };
      return Array.isArray(v) && v.every((x) => typeof x === "string")
        ? { ok: v as string[] }
        : { problem: "must be a list of text values" };
  }
}

/**
 * The settings file `text` (at `path` in the source), checked: every problem at once, each naming the key and the
 * fix (SETTINGS_INVALID). Nothing of it is used when anything is wrong.
 */
export function parseSettingsFile(text: string, path: string): SettingsFile {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new PipelineError(
      "SETTINGS_INVALID",
      `${path}: is not YAML: ${(e as Error).message.split("\n")[0]}`,
      `fix ${path} (the module's \`init\` writes a valid one)`,
      { cause: e },
    );
  }
  const out: SettingsFile = { path, module: {}, vps: {} };
  if (doc === null || doc === undefined) return out;
  const problems: string[] = [];
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isMap(doc))
    throw new PipelineError(
      "SETTINGS_INVALID",
      `${path}: must be a mapping of settings`,
      "write `key: value` lines, the server's settings under `vps:`",
    );
  const read = (map: Record<string, unknown>, scope: Scope, prefix: string) => {
    for (const [key, raw] of Object.entries(map)) {
      const at = `${prefix}${key}`;
      if (scope === "module" && key === "vps") continue;
      if (secretKeys.has(key)) {
        problems.push(
          `${at}: is a secret and never goes in a file of the repository: pass --${key}=env:NAME on the command line (or file:, cmd:, op://, vault://)`,
        );
        continue;
      }
      const def = byKey.get(key);
      if (!def) {
        const near = nearest(key, byKey.keys());
        problems.push(`${at}: is not a setting${near ? ` (did you mean ${near}?)` : ""}`);
        continue;
      }
      if (def.scope !== scope) {
        problems.push(
          def.scope === "vps"
            ? `${at}: is a setting of the server: put it under \`vps:\``
            : `${at}: is a setting of the module: put it at the top level, not under \`vps:\``,
        );
        continue;
      }
      if (raw === null || raw === undefined) continue; // `key:` with nothing: as if not written
      const v = value(def, raw);
      if ("problem" in v) problems.push(`${at}: ${v.problem}`);
      else out[scope][def.name] = v.ok;
    }
  };
  read(doc, "module", "");
  if (doc.vps !== undefined && doc.vps !== null) {
    if (isMap(doc.vps)) read(doc.vps, "vps", "vps.");
    else problems.push("vps: must be a mapping of the server's settings (host:, project:, …)");
  }
  if (problems.length)
    throw new PipelineError(
      "SETTINGS_INVALID",
      `${path}:\n  ${problems.join("\n  ")}`,
      `fix the keys named above in ${path}; nothing was sent anywhere`,
    );
  return out;
}

export interface Settled {
  values: Record<string, Value | undefined>;
  from: Record<string, Origin>;
}

/** A flag given on the command line: the CLI leaves an optional argument it was not given null. */
const given = (v: unknown) => v !== undefined && v !== null;

/**
 * The settings of `scope`: each from its flag when given, else from the file, else its default. A required one
 * found nowhere is INVALID_INPUT, all of them at once.
 */
export function settle(
  scope: Scope,
  flags: Readonly<Record<string, unknown>>,
  file: SettingsFile | undefined,
): Settled {
  const out: Settled = { values: {}, from: {} };
  const missing: string[] = [];
  for (const def of SETTINGS) {
    if (def.scope !== scope) continue;
    const flag = flags[def.name];
    const inFile = file?.[scope][def.name];
    if (given(flag)) {
      out.values[def.name] = flag as Value;
      out.from[def.name] = "flag";
    } else if (inFile !== undefined) {
      out.values[def.name] = inFile;
      out.from[def.name] = "file";
    } else {
      out.values[def.name] = def.default;
      out.from[def.name] = "default";
      if (def.default === undefined && def.name !== "composeFile") missing.push(def.name);
    }
  }
  if (missing.length)
    throw new PipelineError(
      "INVALID_INPUT",
      `${scope}: ${missing.map((m) => `--${kebab(m)}`).join(", ")} ${missing.length === 1 ? "is" : "are"} required and given neither as a flag nor in ${file?.path ?? SETTINGS_FILE}`,
      `pass ${missing.map((m) => `--${kebab(m)}=…`).join(" ")} to ${scope === "vps" ? "vps" : "the module"}, or set ${missing.map((m) => `${scope === "vps" ? "vps." : ""}${kebab(m)}`).join(", ")} in ${file?.path ?? SETTINGS_FILE}`,
    );
  return out;
}

/** Where each setting came from, in one line per origin (defaults counted), for `plan` and `status`. */
export function formatOrigins(from: Readonly<Record<string, Origin>>, file: string | undefined): string {
  const of = (o: Origin) =>
    Object.keys(from)
      .filter((k) => from[k] === o)
      .map(kebab);
  const flags = of("flag");
  const inFile = of("file");
  const defaults = of("default");
  const found = of("found");
  return [
    ...(found.length ? [`settings   found: ${found.join(", ")} (the first of the compose-file search list)`] : []),
    `settings   from flags: ${flags.join(", ") || "none"}`,
    `           from ${file ?? `${SETTINGS_FILE} (none in the source)`}: ${inFile.join(", ") || "none"}`,
    `           defaults: ${defaults.length} (${defaults.join(", ")})`,
  ].join("\n");
}

/** Every setting with its value and origin, then the secrets given (by name only), for `config`. */
export function formatSettings(
  settings: readonly { name: string; value: unknown; from: Origin }[],
  secrets: Readonly<Record<string, boolean>>,
  file: string | undefined,
): string {
  const width = Math.max(...settings.map((x) => kebab(x.name).length));
  const shown = (v: unknown) => (Array.isArray(v) ? v.join(",") : String(v ?? "")) || '""';
  const where = (o: Origin) => (o === "file" ? (file ?? SETTINGS_FILE) : o === "flag" ? "flag" : o);
  return [
    `settings file: ${file ?? `none (${SETTINGS_FILE} is not in the source)`}`,
    ...settings.map((x) => `${kebab(x.name).padEnd(width)}  ${shown(x.value)}  (${where(x.from)})`),
    `secrets given: ${
      Object.keys(secrets)
        .filter((k) => secrets[k])
        .map(kebab)
        .join(", ") || "none"
    }`,
  ].join("\n");
}
