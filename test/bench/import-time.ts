/**
 * What loading the module costs before the first line of a function runs: the
 * module compiled as Dagger's runtime runs it (.dagger/src → JavaScript), then,
 * in a new Node process each time (cold), the SDK imported, then index.js.
 * "ours" is index.js on top of the SDK, which every call pays and which only
 * our code and our dependencies make. Also what one function's own modules add
 * (loaded lazily, when it runs). Prints medians; `npm run bench:import`.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { median, root } from "./common.js";

const RUNS = Number(process.env.IMPORT_RUNS ?? 15);
const dir = mkdtempSync(join(tmpdir(), "import-time-"));
try {
  execFileSync("npx", ["tsc", "-p", ".dagger/tsconfig.json", "--outDir", join(dir, "out"), "--noEmit", "false", "--paths", "null", "--module", "nodenext", "--moduleResolution", "nodenext", "--rootDir", ".dagger/src"], { cwd: root, stdio: "inherit" });
  mkdirSync(join(dir, "node_modules"));
  for (const m of readdirSync(join(root, ".dagger/node_modules"))) if (!m.startsWith(".")) symlinkSync(join(root, ".dagger/node_modules", m), join(dir, "node_modules", m));
  symlinkSync(join(root, "node_modules/@dagger.io"), join(dir, "node_modules/@dagger.io"));
  writeFileSync(join(dir, "package.json"), '{"type":"module"}\n');

  /** ms to import `after` once `before` is loaded, in a fresh process. */
  const time = (before: string[], after: string[]): number => {
    const code = `for (const m of ${JSON.stringify(before)}) await import(m); const t = performance.now(); for (const m of ${JSON.stringify(after)}) await import(m); process.stdout.write(String(performance.now() - t));`;
    return Number(execFileSync("node", ["--input-type=module", "-e", code], { cwd: dir, encoding: "utf8" }));
  };
  const rows: [string, string[], string[]][] = [
    ["the Dagger SDK alone", [], ["@dagger.io/dagger"]],
    ["ours: index.js on top of the SDK (every call)", ["@dagger.io/dagger"], ["./out/index.js"]],
    ["deploy's own modules, when it runs (SSH, YAML, the flow)", ["@dagger.io/dagger", "./out/index.js"], ["./out/remote/deploy.js", "./out/build/stack.js", "./out/registry/resolve.js"]],
  ];
  const results = rows.map(([label, before, after]) => {
    const xs: number[] = [];
    // interleaved would not help here: each sample is its own process, so the runs of a row are already apart in time
    for (let i = 0; i < RUNS; i++) xs.push(time(before, after));
    return `| ${label} | ${median(xs).toFixed(0)} ms | ${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)} ms |`;
  });
  console.log(`import time, cold, median of ${RUNS} processes\n\n| what | median | range |\n|---|---|---|\n${results.join("\n")}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
