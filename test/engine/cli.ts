/**
 * The real Dagger CLI against the bundled engine (test/engine/bundle.sh), called as a user calls it:
 * `dagger -m <this checkout> call …`, each call's exit code, result (stdout), progress (stderr) and time.
 */
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");

export interface CallResult {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Written once a test file started the engine: the engine project's global teardown stops it then. */
export const STARTED = join(tmpdir(), "vps-pipeline-engine-suite.started");
/**
 * One marker per engine file still running: the last one to end stops the engine, so that it does not take the
 * machine's cores and memory from the integration files after it (a file that starts later starts it again).
 */
export const RUNNING = join(tmpdir(), "vps-pipeline-engine-suite.running");

/** Starts (or reuses) the engine for the test bed and returns the CLI's environment. */
export function startEngine(): Record<string, string> {
  const out = execFileSync("bash", [`${ROOT}/test/engine/bundle.sh`], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    timeout: 1_200_000,
  });
  writeFileSync(STARTED, "");
  const env: Record<string, string> = {};
  for (const m of out.matchAll(/^export (.+)$/gm))
    for (const [, k, v] of m[1]!.matchAll(/(\w+)=(\S+)/g)) env[k!] = v!.replace("$PATH", process.env.PATH ?? "");
  return env;
}

export function stopEngine(): void {
  execFileSync("bash", [`${ROOT}/test/engine/bundle.sh`, "stop"], { stdio: "inherit", timeout: 300_000 });
}

/** One `dagger` command; never throws on a non-zero exit (the test reads the code). */
export function dagger(
  engineEnv: Record<string, string>,
  args: readonly string[],
  opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<CallResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn("dagger", ["--progress=plain", ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...engineEnv, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on("data", (d: Buffer) => out.push(d));
    p.stderr.on("data", (d: Buffer) => err.push(d));
    const timer = setTimeout(() => p.kill("SIGKILL"), opts.timeoutMs ?? 600_000);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({
        code: code ?? 137,
        stdout: Buffer.concat(out).toString("utf8"),
        // colours off: the tests read the text
        stderr: Buffer.concat(err)
          .toString("utf8")
          .replace(/\x1b\[[0-9;]*m/g, ""),
        seconds: Math.round((performance.now() - t0) / 100) / 10,
      });
    });
  });
}

/** What a failed call said, for an assertion's message. */
export function said(r: CallResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout.slice(-3000)}\n--- stderr (end)\n${r.stderr.split("\n").slice(-40).join("\n")}`;
}

/** The durations of the module's own steps (`deploy pull ok 1.19s`) in a call's output, summed. */
export function stepSeconds(text: string): number {
  let sum = 0;
  for (const m of text.matchAll(/^\w+ +\w+ +(?:ok|FAILED) +(\d+\.\d+)s/gm)) sum += Number(m[1]);
  return Math.round(sum * 100) / 100;
}
