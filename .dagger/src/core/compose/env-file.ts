import { shellQuote } from "../shell.js";

/**
 * The keys of a `.env` file as compose reads it (KEY=value, `export KEY=…`,
 * comments and blank lines skipped). Values are only ever compared, never shown.
 */
export function envEntries(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=(.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!.trim());
  }
  return out;
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

/**
 * The values of a `.env` file as compose reads them for interpolation: `"…"`
 * with `\n`, `\t`, `\\` and `\"` escapes, `'…'` as written, unquoted values
 * trimmed and cut at ` #`. (Compose also expands `${OTHER}` inside values; that
 * is not done here, and the swarm section of the README says so.)
 */
export function envValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, raw] of envEntries(text)) {
    let v = raw;
    if (v.startsWith('"') && v.lastIndexOf('"') > 0) {
      v = v.slice(1, v.lastIndexOf('"')).replace(/\\(.)/g, (_, c: string) => ({ n: "\n", t: "\t", r: "\r" })[c] ?? c);
    } else if (v.startsWith("'") && v.lastIndexOf("'") > 0) v = v.slice(1, v.lastIndexOf("'"));
    else v = v.replace(/\s+#.*$/, "").trim();
    out.set(key, v);
  }
  return out;
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
