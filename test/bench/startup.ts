/**
 * The module's cold start under the runtimes the TypeScript SDK can use: a new process each time,
 * until index.ts (with the SDK) is loaded — under tsx (TypeScript compiled on the fly, what the
 * engine's node runtime does), under plain Node from JavaScript compiled ahead, and under Bun (npm's
 * @oven/bun-linux-x64), both from TypeScript and from the compiled JavaScript. Then whether ssh2 works
 * under Bun: our SshSession against the test bed's VPS (connect, exec, upload, read back).
 * Medians of interleaved runs; `npm run bench:startup`. Needs the test bed for the ssh2 part.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { median, root, startTestbed } from "./common.js";

const RUNS = Number(process.env.STARTUP_RUNS ?? 9);
const BUN_VERSION = "1.3.0"; // the version the engine's own TypeScript SDK uses for its introspector
const dir = mkdtempSync(join(tmpdir(), "startup-"));
try {
  execFileSync(
    "npx",
    ["tsc", "-p", ".dagger/tsconfig.json", "--outDir", join(dir, "out"), "--noEmit", "false", "--paths", "null"]
      .concat(["--module", "nodenext", "--moduleResolution", "nodenext", "--rootDir", ".dagger/src"]),
    { cwd: root, stdio: "inherit" },
  );
  mkdirSync(join(dir, "node_modules"));
  for (const m of readdirSync(join(root, ".dagger/node_modules")))
    if (!m.startsWith(".")) symlinkSync(join(root, ".dagger/node_modules", m), join(dir, "node_modules", m));
  symlinkSync(join(root, "node_modules/@dagger.io"), join(dir, "node_modules/@dagger.io"));
  writeFileSync(join(dir, "package.json"), '{"type":"module"}\n');
  const bunDir = join(dir, "bun");
  execFileSync("npm", ["install", "--prefix", bunDir, "--no-save", "--no-audit", "--no-fund", `@oven/bun-linux-x64@${BUN_VERSION}`], {
    stdio: "ignore",
  });
  const bun = join(bunDir, "node_modules/@oven/bun-linux-x64/bin/bun");
  const tsx = join(root, "node_modules/.bin/tsx");
  const loadTs = `await import(${JSON.stringify(join(root, ".dagger/src/index.ts"))});`;
  const loadJs = `await import(${JSON.stringify(join(dir, "out/index.js"))});`;

  const runtimes: [string, string, string[]][] = [
    ["tsx (TypeScript on the fly)", tsx, ["--tsconfig", join(root, ".dagger/tsconfig.json"), "--input-type=module", "-e", loadTs]],
    ["node, JavaScript compiled ahead", "node", ["--input-type=module", "-e", loadJs]],
    ...(existsSync(bun)
      ? ([
          [`bun ${BUN_VERSION}, TypeScript`, bun, ["-e", loadTs]],
          [`bun ${BUN_VERSION}, JavaScript compiled ahead`, bun, ["-e", loadJs]],
        ] as [string, string, string[]][])
      : []),
  ];
  const times = new Map<string, number[]>(runtimes.map(([l]) => [l, []]));
  for (let i = 0; i < RUNS; i++)
    for (const [label, cmd, args] of runtimes) {
      const t0 = performance.now();
      const r = spawnSync(cmd, args, { cwd: dir, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`${label}: ${r.stderr}`);
      times.get(label)!.push(performance.now() - t0);
    }
  const base = median(times.get(runtimes[0]![0])!);
  const rows = runtimes.map(([label]) => {
    const xs = times.get(label)!;
    return `| ${label} | ${median(xs).toFixed(0)} ms | ${(median(xs) / base).toFixed(2)}× | ${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)} ms |`;
  });
  console.log(
    `cold start to index.ts loaded (with the SDK), median of ${RUNS} interleaved processes\n\n| runtime | median | vs tsx | range |\n|---|---|---|---|\n${rows.join("\n")}`,
  );

  // ssh2 under Bun: the session the deploy uses, on the test bed's VPS
  if (existsSync(bun)) {
    startTestbed();
    const script = join(dir, "ssh-under-bun.mjs");
    writeFileSync(
      script,
      `import { readFileSync } from "node:fs";
const { connect } = await import(${JSON.stringify(join(dir, "out/remote/ssh.js"))});
const { parseHostKeyPin } = await import(${JSON.stringify(join(dir, "out/core/config.js"))});
const bed = JSON.parse(readFileSync("${process.env.TESTBED_DIR ?? "/tmp/vps-testbed"}/testbed.json", "utf8"));
const t0 = performance.now();
const s = await connect({ host: bed.vps.host, port: bed.vps.port, user: bed.vps.user, hostKey: parseHostKeyPin(readFileSync(bed.vps.hostKeyFile, "utf8").trim()), privateKey: readFileSync(bed.vps.keys.ed25519, "utf8"), connectTimeoutMs: 5000, retries: 1, retryDelayMs: 200 });
const echo = await s.exec(["sh", "-c", "echo ok; echo err >&2; exit 3"]);
await s.upload("/tmp/bun-ssh-probe", "payload\\n", "600");
const back = await s.exec(["cat", "/tmp/bun-ssh-probe"]);
await s.exec(["rm", "-f", "/tmp/bun-ssh-probe"]);
s.close();
console.log(JSON.stringify({ echo, back: back.stdout, ms: Math.round(performance.now() - t0) }));
`,
    );
    const r = spawnSync(bun, [script], { cwd: dir, encoding: "utf8" });
    console.log(`\nssh2 under bun ${BUN_VERSION}: exit ${r.status}; ${r.stdout.trim() || r.stderr.trim().split("\n").slice(-3).join(" / ")}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
