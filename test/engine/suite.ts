/**
 * What the engine suite's files share: the secrets as users keep them (files ending in a newline, an env variable),
 * the module's and the VPS's arguments, the calls made (for the secret audit) and the times measured. Each file is
 * its own chain of calls on its own projects; the two files run at once (vitest.config.ts), on one engine, which the
 * last of them to end stops.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { bed, freshProject, hostKeyLine, privateKey, registryPassword, sh } from "../testbed/bed.js";
import { dagger, ROOT, RUNNING, said, startEngine, STARTED, stopEngine, type CallResult } from "./cli.js";

export const skip = process.env.TEST_ENGINE === "0";
export const PREFIX = `${bed.registry.host}/acme/engine-app`;
export const BASE = "BASE_IMAGE=10.230.0.1:5001/busybox:1";
export const PREVIEW_DOMAIN = "preview.vps-testbed.internal";
/** A commit new each run, so that a publish of it builds (a published commit is reused, never rebuilt). */
export const freshSha = () => randomBytes(20).toString("hex");

export interface Suite {
  /** The CLI's environment (the engine's address). */
  env: Record<string, string>;
  /** Where the secrets' files are. */
  dir: string;
  /**
   * This checkout's files without its .git: the example app's releases are made-up commits, which a source with a
   * .git would refuse (what is built is a commit of it).
   */
  example: string;
  calls: { what: string; r: CallResult }[];
  measured: Record<string, number>;
  /** The .env's secret: made now, in no file of the engine or the CLI afterwards. */
  envSecret: string;
  call(what: string, args: string[], opts?: { env?: Record<string, string> }): Promise<CallResult>;
  module(over?: { source?: string; composeFile?: string; prefix?: string }): string[];
  vps(project: string, extra?: string[]): string[];
}

/** The suite's state, made in beforeAll (these projects fresh) and cleaned in afterAll; its times printed. */
export function engineSuite(name: string, projects: readonly string[], webPort: number): Suite {
  const s: Suite = {
    env: {},
    dir: "",
    example: "",
    calls: [],
    measured: {},
    envSecret: `engine-env-${Math.random().toString(36).slice(2)}`,
    async call(what, args, opts = {}) {
      const r = await dagger(s.env, ["-m", ROOT, ...args], {
        ...opts,
        env: { ENGINE_PULL_TOKEN: registryPassword, ...opts.env },
      });
      s.calls.push({ what, r });
      return r;
    },
    module: (over = {}) => [
      "call",
      `--source=${over.source ?? s.example}`,
      // this repository's example app: its own source is refused unless asked for (SOURCE_IS_MODULE)
      ...(over.source ? [] : ["--allow-module-repository"]),
      ...(over.composeFile ? [`--compose-file=${over.composeFile}`] : []),
      `--registry=${bed.registry.host}`,
      "--registry-user=pusher",
      `--registry-token=file:${s.dir}/registry-token`,
      `--image-prefix=${over.prefix ?? PREFIX}`,
    ],
    vps: (project, extra = []) => [
      "vps",
      `--host=${bed.vps.host}`,
      `--user=${bed.vps.user}`,
      `--host-key=${hostKeyLine}`,
      `--ssh-key=file:${s.dir}/ssh-key`,
      `--project=${project}`,
      "--pull-user=pusher",
      "--pull-token=env:ENGINE_PULL_TOKEN",
      `--env-file=file:${s.dir}/env`,
      "--edge-image=vps-testbed/caddy:2",
      "--edge-tls=internal",
      "--health-timeout=60",
      ...extra,
    ],
  };
  const marker = join(RUNNING, `${process.pid}-${name.replace(/\W+/g, "-")}`);
  beforeAll(() => {
    if (skip) return;
    mkdirSync(RUNNING, { recursive: true });
    writeFileSync(marker, "");
    s.env = startEngine();
    s.dir = mkdtempSync(join(tmpdir(), "engine-secrets-"));
    s.example = mkdtempSync(join(tmpdir(), "engine-example-"));
    const skipped = new Set([".git", "node_modules", "sdk"]);
    cpSync(ROOT, s.example, { recursive: true, filter: (p) => !skipped.has(p.split("/").at(-1)!) });
    chmodSync(s.example, 0o755);
    // as users keep them: a file that ends in a newline
    writeFileSync(join(s.dir, "registry-token"), `${registryPassword}\n`, { mode: 0o600 });
    writeFileSync(join(s.dir, "ssh-key"), privateKey, { mode: 0o600 });
    writeFileSync(join(s.dir, "env"), `WEB_PORT=${webPort}\nGOLD_API_KEY=${s.envSecret}\n`, { mode: 0o600 });
    for (const p of projects) freshProject(p);
  }, 1_500_000);
  afterAll(() => {
    if (skip) return;
    for (const p of projects) freshProject(p);
    if (s.dir) rmSync(s.dir, { recursive: true, force: true });
    if (s.example) rmSync(s.example, { recursive: true, force: true });
    const rows = Object.entries(s.measured).map(([k, v]) => `  ${k.padEnd(58)} ${v.toFixed(1)} s`);
    if (rows.length) console.log(`engine (${name}): measured through the real CLI\n${rows.join("\n")}`);
    rmSync(marker, { force: true });
    if (readdirSync(RUNNING).length === 0 && process.env.TEST_ENGINE_KEEP !== "1") {
      rmSync(STARTED, { force: true });
      stopEngine();
    }
  }, 600_000);
  return s;
}

export const current = (project: string) =>
  sh(`cat ${bed.vps.home}/production/${project}/.releases/current 2>/dev/null || true`).trim();

export const released = (r: CallResult) => /release (\S+) is live/.exec(r.stdout)?.[1] ?? "";

/** Files under any of `dirs` holding any of `needles` (one grep for all). */
function filesContainingAny(dirs: string[], needles: string[], scratch: string): string[] {
  const patterns = join(scratch, "needles");
  writeFileSync(patterns, needles.join("\n"), { mode: 0o600 });
  try {
    const out = execFileSync(
      "bash",
      ["-c", 'for d in "$@"; do [ -e "$d" ] && grep -rlF -f "$P" -- "$d"; done 2>/dev/null; true', "bash", ...dirs],
      { env: { ...process.env, P: patterns }, encoding: "utf8", maxBuffer: 1 << 26 },
    );
    return out.trim().split("\n").filter(Boolean);
  } finally {
    rmSync(patterns);
  }
}

/** No secret of the suite (and none of `more`) in the engine's state, the CLI's home, or anything a call printed. */
export function auditEngineSecrets(s: Suite, more: readonly string[] = []): void {
  // a line from the middle of the key: the first lines are the same in every OpenSSH key
  const needles = [registryPassword, privateKey.split("\n")[2]!, s.envSecret, ...more];
  const home = process.env.HOME ?? "/root";
  const places = ["/var/lib/dagger-engine-bundle", `${home}/.cache/dagger`, `${home}/.config/dagger`];
  expect(filesContainingAny(places, needles, s.dir)).toEqual([]);
  for (const needle of needles)
    for (const { what, r } of s.calls) expect(`${r.stdout}\n${r.stderr}`, what).not.toContain(needle);
}

export { said };
