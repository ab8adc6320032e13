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
