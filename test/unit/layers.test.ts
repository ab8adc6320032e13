/**
 * The layout's rules, checked on the files: core/ is pure (it imports only core/ and an allow-list
 * of packages and names), and no two files of one layer share a name (a newcomer finds one file).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const src = resolve(import.meta.dirname, "../../.dagger/src");
const tsFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : n.endsWith(".ts") ? [p] : [];
  });

/** What core/ may import from outside itself: whole packages, or only the named pure functions. */
const CORE_MAY_IMPORT: Record<string, "*" | string[]> = {
  zod: "*",
  yaml: "*",
  "node:crypto": ["createHash"],
  "node:net": ["isIP"],
};

/** Every import of a file: its specifier and the names it takes (`*` for a default or namespace import). */
export function importsOf(text: string): { spec: string; names: string[] }[] {
  const found: { spec: string; names: string[] }[] = [];
  const re = /(?:import|export)\s+(type\s+)?([^'"]*?)\s*from\s*"([^"]+)"|import\(\s*"([^"]+)"\s*\)/g;
  for (const m of text.matchAll(re)) {
    if (m[4]) {
      found.push({ spec: m[4], names: ["*"] });
      continue;
    }
    const clause = m[2] ?? "";
    const braces = /\{([^}]*)\}/.exec(clause);
    const names = braces
      ? braces[1]!
          .split(",")
          .map(
            (n) =>
              n
                .trim()
                .replace(/^type\s+/, "")
                .split(/\s+as\s+/)[0]!,
          )
          .filter(Boolean)
      : [];
    if (clause.replace(/\{[^}]*\}/, "").replace(/[\s,]/g, "")) names.push("*");
    found.push({ spec: m[3]!, names });
  }
  return found;
}

describe("layers: core/ is pure", () => {
  const core = join(src, "core");
  const files = tsFiles(core);

  it("imports only core/ itself and the allowed packages and names", () => {
    const problems: string[] = [];
    for (const f of files) {
      const where = relative(src, f);
      for (const { spec, names } of importsOf(readFileSync(f, "utf8"))) {
        if (spec.startsWith(".")) {
          const target = resolve(dirname(f), spec);
          if (relative(core, target).startsWith("..")) problems.push(`${where}: imports ${spec}, outside core/`);
          continue;
        }
        const allowed = CORE_MAY_IMPORT[spec];
        if (allowed === undefined) problems.push(`${where}: imports ${spec}`);
        else if (allowed !== "*") {
          for (const n of names) if (!allowed.includes(n)) problems.push(`${where}: imports ${n} from ${spec}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("the check catches what it is for", () => {
    expect(importsOf('import { readFileSync } from "node:fs";')).toEqual([
      { spec: "node:fs", names: ["readFileSync"] },
    ]);
    expect(importsOf('import * as net from "node:net";\nconst x = await import("ssh2");')).toEqual([
      { spec: "node:net", names: ["*"] },
      { spec: "ssh2", names: ["*"] },
    ]);
    expect(importsOf('import type { A, type B as C } from "../x.js";')).toEqual([
      { spec: "../x.js", names: ["A", "B"] },
    ]);
  });
});

describe("layers: one name, one file", () => {
  for (const layer of ["core", "remote"]) {
    it(`no two files of ${layer}/ share a name`, () => {
      const seen = new Map<string, string[]>();
      for (const f of tsFiles(join(src, layer))) {
        const n = basename(f);
        seen.set(n, [...(seen.get(n) ?? []), relative(src, f)]);
      }
      expect([...seen.values()].filter((fs) => fs.length > 1)).toEqual([]);
    });
  }
});
