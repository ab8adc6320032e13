/**
 * The module through the real Dagger CLI and engine (../shared/dagger-engine, started by bundle.sh), the
 * way a user runs it: `dagger -m <this checkout> call …` against the test bed's registry and VPS, secrets
 * as `file:` (ending in a newline) and `env:`. Each call is judged by what a user would check: its exit
 * code, the release it names, the server's state. The calls build on each other, in order.
 * TEST_ENGINE=0 skips the file (locally only: .ci/run sets TEST_ENGINE=1).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { introspect } from "../module/introspection.js";
import { bed, freshProject, hostKeyLine, privateKey, registryPassword, sh } from "../testbed/bed.js";
import { dataStack } from "../testbed/data-stack.js";
import { dagger, ROOT, said, startEngine, stepSeconds, stopEngine, type CallResult } from "./cli.js";

const skip = process.env.TEST_ENGINE === "0";
const P = "engapp";
const OTHER = "engother";
const PORT = 18990;
const SHA = ["1", "2", "3"].map((c) => c.repeat(40));
/** The other app's commit: new each run, so that its publish builds (a published commit is reused, never rebuilt). */
const OTHER_SHA = randomBytes(20).toString("hex");
const COMMIT_TIME = "2026-12-01T08:00:00Z";
const PREFIX = `${bed.registry.host}/acme/engine-app`;
const BASE = "BASE_IMAGE=10.230.0.1:5001/busybox:1";
/** Made now: in no file of the engine or the CLI afterwards. */
const ENV_SECRET = `engine-env-${Math.random().toString(36).slice(2)}`;
const PREVIEW_DOMAIN = "preview.vps-testbed.internal";
const DATA = "engdata";
const BACKUP_PASSWORD = `restic-${randomBytes(12).toString("hex")}`;

let env: Record<string, string> = {};
let dir = "";
const calls: { what: string; r: CallResult }[] = [];
const measured: Record<string, number> = {};

async function call(what: string, args: string[], opts: { env?: Record<string, string> } = {}): Promise<CallResult> {
  const r = await dagger(env, ["-m", ROOT, ...args], {
    ...opts,
    env: { ENGINE_PULL_TOKEN: registryPassword, ...opts.env },
  });
  calls.push({ what, r });
  return r;
}

/**
 * This checkout's files without its .git: the example app's releases are made-up commits (SHA), which a source with a
 * .git would refuse (what is built is a commit of it).
 */
let example = "";
const module = (over: { source?: string; composeFile?: string; prefix?: string } = {}) => [
  "call",
  `--source=${over.source ?? example}`,
  // this repository's example app: its own source is refused unless asked for (SOURCE_IS_MODULE)
  ...(over.source ? [] : ["--allow-module-repository"]),
  ...(over.composeFile ? [`--compose-file=${over.composeFile}`] : []),
  `--registry=${bed.registry.host}`,
  "--registry-user=pusher",
  `--registry-token=file:${dir}/registry-token`,
  `--image-prefix=${over.prefix ?? PREFIX}`,
];
const vps = (project: string, extra: string[] = []) => [
  "vps",
  `--host=${bed.vps.host}`,
  `--host-key=${hostKeyLine}`,
  `--ssh-key=file:${dir}/ssh-key`,
  `--project=${project}`,
  "--pull-user=pusher",
  "--pull-token=env:ENGINE_PULL_TOKEN",
  `--env-file=file:${dir}/env`,
  "--edge-image=vps-testbed/caddy:2",
  "--edge-tls=internal",
  "--health-timeout=60",
  ...extra,
];
const current = (project: string) =>
  sh(`cat /home/deploy/production/${project}/.releases/current 2>/dev/null || true`).trim();
/** Files under any of `dirs` holding any of `needles` (one grep for all). */
function filesContainingAny(dirs: string[], needles: string[]): string[] {
  const patterns = join(dir, "needles");
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

/** An image's config, read from the test bed's registry (index or manifest). */
async function imageConfig(ref: string): Promise<{ config: { Labels: Record<string, string> }; created: string }> {
  const [, host, repo, digest] = /^([^/]+)\/(.+)@(sha256:[0-9a-f]{64})$/.exec(ref)!;
  const auth = { Authorization: `Basic ${Buffer.from(`pusher:${registryPassword}`).toString("base64")}` };
  const get = async (path: string, accept: string) => {
    const r = await fetch(`https://${host}/v2/${repo}/${path}`, { headers: { ...auth, Accept: accept } });
    expect(r.status, path).toBe(200);
    return r.json() as Promise<Record<string, unknown>>;
  };
  const types = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
  ].join(", ");
  let m = await get(`manifests/${digest}`, types);
  if (Array.isArray(m.manifests)) m = await get(`manifests/${(m.manifests as { digest: string }[])[0]!.digest}`, types);
  return get(`blobs/${(m.config as { digest: string }).digest}`, "*/*") as never;
}

const released = (r: CallResult) => /release (\S+) is live/.exec(r.stdout)?.[1] ?? "";

describe.skipIf(skip)("the module through the real Dagger CLI and engine", () => {
  let published: string[] = [];
  let broken: string[] = [];
  const releases: string[] = [];

  beforeAll(() => {
    env = startEngine();
    dir = mkdtempSync(join(tmpdir(), "engine-secrets-"));
    example = mkdtempSync(join(tmpdir(), "engine-example-"));
    const skipped = new Set([".git", "node_modules", "sdk"]);
    cpSync(ROOT, example, { recursive: true, filter: (p) => !skipped.has(p.split("/").at(-1)!) });
    chmodSync(example, 0o755);
    // as users keep them: a file that ends in a newline
    writeFileSync(join(dir, "registry-token"), `${registryPassword}\n`, { mode: 0o600 });
    writeFileSync(join(dir, "ssh-key"), privateKey, { mode: 0o600 });
    writeFileSync(join(dir, "env"), `WEB_PORT=${PORT}\nGOLD_API_KEY=${ENV_SECRET}\n`, { mode: 0o600 });
    for (const p of [P, OTHER, DATA, `${P}-pr-7`]) freshProject(p);
  }, 1_500_000);

  afterAll(() => {
    for (const p of [P, OTHER, DATA, `${P}-pr-7`]) freshProject(p);
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (example) rmSync(example, { recursive: true, force: true });
    const rows = Object.entries(measured).map(([k, v]) => `  ${k.padEnd(58)} ${v.toFixed(1)} s`);
    console.log(`engine: measured through the real CLI\n${rows.join("\n")}`);
    if (process.env.TEST_ENGINE_KEEP !== "1") stopEngine();
  }, 600_000);

  it("lists every function, and every function's --help works", async () => {
    const first = await call("functions", ["functions"]);
    measured["dagger -m . functions (first: loads the module)"] = first.seconds;
    expect(first.code, said(first)).toBe(0);
    const api = introspect();
    const top = Object.keys(api.objects.VpsPipeline!.methods);
    const onVps = Object.keys(api.objects.Vps!.methods);
    const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    for (const f of top) expect(first.stdout).toContain(kebab(f));
    const helps = [
      ...top.map((f) => ["call", kebab(f), "--help"]),
      ...onVps.map((f) => ["call", "vps", kebab(f), "--help"]),
    ];
    const results: CallResult[] = [];
    // four at a time: each is a CLI process and one engine query
    for (let i = 0; i < helps.length; i += 4)
      results.push(...(await Promise.all(helps.slice(i, i + 4).map((h) => call(h.join(" "), h)))));
    results.forEach((r, i) => {
      expect(r.code, `${helps[i]!.join(" ")}\n${said(r)}`).toBe(0);
      expect(r.stdout, helps[i]!.join(" ")).toMatch(/USAGE/);
    });
    measured["call … --help (median)"] = results.map((r) => r.seconds).sort((a, b) => a - b)[results.length >> 1]!;
    // a default the engine once read as 1
    const logsHelp = results[helps.findIndex((h) => h[2] === "logs")]!;
    expect(logsHelp.stdout).toMatch(/--max-bytes int\s[^-]*\(default 1048576\)/);
    // closed choices are enums: --help lists their values (the CLI shows them upper case, takes them as written)
    const statusHelp = results[helps.findIndex((h) => h[1] === "vps" && h[2] === "status")]!.stdout;
    expect(statusHelp).toMatch(/--format JSON,MARKDOWN,TEXT\s/);
    // vps --help lists its arguments, and no setting among its functions (least of all a secret)
    const vpsHelp = results[helps.findIndex((h) => h[1] === "vps" && h[2] === "--help")]!.stdout;
    const functions = vpsHelp.slice(vpsHelp.indexOf("FUNCTIONS"), vpsHelp.indexOf("ARGUMENTS"));
    expect(functions, vpsHelp).toMatch(/\bship\b/);
    expect(functions).not.toMatch(/ssh-key|keep-releases|host-key|env-file/);
    expect(vpsHelp.slice(vpsHelp.indexOf("ARGUMENTS"))).toMatch(/--keep-releases int\s[^-]*Default: 5\./);
  }, 900_000);

  it("dagger check passes", async () => {
    const r = await call("check", ["check"]);
    expect(r.code, said(r)).toBe(0);
  }, 600_000);

  it("publishes the example app (token from a file ending in a newline): one digest per service, the commit's time in the label", async () => {
    const r = await call("publish", [
      ...module(),
      "publish",
      `--git-sha=${SHA[0]}`,
      `--commit-time=${COMMIT_TIME}`,
      `--build-args=${BASE}`,
    ]);
    expect(r.code, said(r)).toBe(0);
    published = r.stdout.trim().split("\n");
    expect(published).toEqual([
      expect.stringMatching(new RegExp(`^${PREFIX}/migrate@sha256:[0-9a-f]{64}$`)),
      expect.stringMatching(new RegExp(`^${PREFIX}/api@sha256:[0-9a-f]{64}$`)),
      expect.stringMatching(new RegExp(`^${PREFIX}/web@sha256:[0-9a-f]{64}$`)),
    ]);
    const labels = (await imageConfig(published[1]!)).config.Labels;
    expect(labels).toMatchObject({
      "org.opencontainers.image.created": new Date(COMMIT_TIME).toISOString(),
      "org.opencontainers.image.revision": SHA[0],
    });
    // published again: the same commit is found and reused, nothing rebuilt
    const again = await call("publish again", [...module(), "publish", `--git-sha=${SHA[0]}`, `--build-args=${BASE}`]);
    expect(again.code, said(again)).toBe(0);
    expect(again.stdout.trim().split("\n")).toEqual(published);
  }, 900_000);

  it("publishes a broken release (its api never gets healthy) for the rollback below", async () => {
    const r = await call("publish (broken)", [
      ...module(),
      "publish",
      `--git-sha=${SHA[2]}`,
      `--build-args=${BASE}`,
      "--build-args=HEALTHY=false",
    ]);
    expect(r.code, said(r)).toBe(0);
    broken = r.stdout.trim().split("\n");
    expect(broken[1]).not.toBe(published[1]);
  }, 900_000);

  it("plans the first deploy (nothing changes), with the port the .env gives", async () => {
    const r = await call("plan", [...module(), ...vps(P), "plan", `--images=${published.join(",")}`]);
    expect(r.code, said(r)).toBe(0);
    expect(r.stdout).toContain(`${PORT}:8000`);
    expect(r.stdout).not.toContain("${WEB_PORT");
    expect(current(P)).toBe("");
  }, 600_000);

  it("deploys (first, then an upgrade), and a broken release is rolled back", async () => {
    const first = await call("deploy (first)", [
      ...module(),
      ...vps(P),
      "deploy",
      `--git-sha=${SHA[0]}`,
      `--images=${published.join(",")}`,
    ]);
    expect(first.code, said(first)).toBe(0);
    releases.push(released(first));
    expect(current(P)).toBe(releases[0]);
    expect(first.stdout).toMatch(/^job migrate \| applying migrations$/m);

    const upgrade = await call("deploy (upgrade)", [
      ...module(),
      ...vps(P),
      "deploy",
      `--git-sha=${SHA[1]}`,
      `--images=${published.join(",")}`,
    ]);
    expect(upgrade.code, said(upgrade)).toBe(0);
    releases.push(released(upgrade));
    expect(current(P)).toBe(releases[1]);
    measured["deploy through dagger call (upgrade)"] = upgrade.seconds;
    measured["· of which the module's own steps"] = stepSeconds(upgrade.stdout);

    const r = await call("deploy (broken)", [
      ...module(),
      ...vps(P),
      "--health-timeout=15",
      "deploy",
      `--git-sha=${SHA[2]}`,
      `--images=${broken.join(",")}`,
      "--format=json",
    ]);
    // the class's exit code, and the failure as one JSON object with the history line it wrote
    expect(r.code, said(r)).toBe(8);
    const line = /^Error: (\{.*\})(?: \[traceparent:\S+\])?$/m.exec(r.stderr)?.[1];
    expect(line, said(r)).toBeDefined();
    const failure = JSON.parse(line!) as {
      error: { code: string; exitCode: number; history?: { rolledBackTo?: string } };
    };
    expect(failure.error).toMatchObject({
      code: "DEPLOY_ROLLED_BACK",
      exitCode: 8,
      history: { rolledBackTo: releases[1] },
    });
    expect(current(P)).toBe(releases[1]);
    expect(sh(`curl -s -o /dev/null -w '%{http_code}' http://${bed.vps.hostIp}:${PORT}/`)).toBe("200");
  }, 900_000);

  it("verifies, and says the status as JSON", async () => {
    const v = await call("verify", [...module(), ...vps(P), "verify"]);
    expect(v.code, said(v)).toBe(0);
    const s = await call("status", [...module(), ...vps(P), "status", "--format=json"]);
    expect(s.code, said(s)).toBe(0);
    const status = JSON.parse(s.stdout) as { current?: { release?: string }; history: { result: string }[] };
    expect(JSON.stringify(status)).toContain(releases[1]!);
    expect(status.history.map((h) => h.result)).toContain("rolled-back");
  }, 600_000);

  it("rolls back to the release before, and to a named one", async () => {
    const r = await call("rollback", [...module(), ...vps(P), "rollback"]);
    expect(r.code, said(r)).toBe(0);
    expect(current(P)).toBe(releases[0]);
    const to = await call("rollback --to", [...module(), ...vps(P), "rollback", `--to=${releases[1]}`]);
    expect(to.code, said(to)).toBe(0);
    expect(current(P)).toBe(releases[1]);
  }, 600_000);

  it("logs with its defaults; run keeps a comma inside its command, and --argv its words", async () => {
    const l = await call("logs", [...module(), ...vps(P), "logs"]);
    expect(l.code, said(l)).toBe(0);
    // the example's services log nothing: what the user sees is this line, not an INVALID_INPUT on maxBytes
    expect(l.stdout.trim()).toBe(`(no log lines from project ${P})`);
    const r = await call("run", [
      ...module(),
      ...vps(P),
      "run",
      "--service=api",
      `--cmd=printf '%s|' 'select a, b' x,y`,
    ]);
    expect(r.code, said(r)).toBe(0);
    expect(r.stdout).toMatch(/^select a, b\|x,y\|/);
    const a = await call("run --argv", [
      ...module(),
      ...vps(P),
      "run",
      "--service=api",
      `--argv=["printf","%s|","a, b","c"]`,
    ]);
    expect(a.code, said(a)).toBe(0);
    expect(a.stdout).toMatch(/^a, b\|c\|/);
    const failed = await call("run (exit 3)", [...module(), ...vps(P), "run", "--service=api", "--cmd=exit 3"]);
    expect(failed.code, said(failed)).toBe(10);
    expect(failed.stderr).toMatch(/RUN_FAILED: api: the command exited with 3/);
  }, 600_000);

  it("a preview of a pull request comes up beside production and goes without a trace", async () => {
    const extra = [`--preview-domain=${PREVIEW_DOMAIN}`];
    const r = await call("preview", [
      ...module(),
      ...vps(P, extra),
      "preview",
      "--pr=7",
      `--git-sha=${SHA[1]}`,
      `--images=${published.join(",")}`,
    ]);
    expect(r.code, said(r)).toBe(0);
    expect(r.stdout).toMatch(/preview #7 release \S+ is live/);
    expect(sh(`docker ps --filter label=com.docker.compose.project=${P}-pr-7 -q | wc -l`).trim()).not.toBe("0");
    const down = await call("preview-down", [...module(), ...vps(P, extra), "preview-down", "--pr=7"]);
    expect(down.code, said(down)).toBe(0);
    expect(sh(`docker ps -a --filter label=com.docker.compose.project=${P}-pr-7 -q | wc -l`).trim()).toBe("0");
    expect(current(P)).toBe(releases[1]);
  }, 600_000);

  it("ships a repository laid out as users lay theirs out: compose files at the root, settings in vps-pipeline.yml, a short line", async () => {
    const app = mkdtempSync(join(tmpdir(), "engine-other-app-"));
    cpSync(join(ROOT, "test/fixtures/app/api"), join(app, "backend"), { recursive: true });
    mkdirSync(join(app, "conf"));
    writeFileSync(join(app, "conf/app.conf"), "greeting = from another repository\n");
    writeFileSync(join(app, "backend/www/static.txt"), "copied, never changed by a RUN step\n");
    const service = (greeting: string) => `services:
  api:
    build: { context: ./backend, args: { BASE_IMAGE: busybox:1.36 } }
    init: true
    environment: { GREETING: ${greeting} }
    volumes: ["./conf/app.conf:/etc/app.conf:ro"]
    healthcheck: { test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/health"], interval: 1s, retries: 3 }
`;
    // production's file is found before the development one beside it; its optional env file is kept out of Git
    writeFileSync(
      join(app, "docker-compose.prod.yml"),
      `${service("production")}    env_file: [{ path: .env.production, required: false }]\n`,
    );
    writeFileSync(join(app, ".env.production"), "LEAK=only-on-the-laptop\n");
    writeFileSync(join(app, "docker-compose.yml"), `${service("development")}    ports: ["8000:8000"]\n`);
    // the team's development .env: many variables, none of them the module's business
    writeFileSync(
      join(app, ".env"),
      Array.from({ length: 40 }, (_, i) => `DEV_VAR_${i}=dev-${i}`).join("\n") +
        "\nPROJECT=wrong\nHOST=wrong\nKEEP_RELEASES=1\n",
    );
    writeFileSync(
      join(app, "vps-pipeline.yml"),
      `# settings of the whole team, committed; secrets stay on the command line
image-prefix: ${bed.registry.host}/acme/engine-other
registry: ${bed.registry.host}
registry-user: pusher
vps:
  host: ${bed.vps.host}
  host-key: "${hostKeyLine}"
  project: ${OTHER}
  pull-user: pusher
  keep-releases: 3
  health-timeout: 60
  edge-image: vps-testbed/caddy:2
  edge-tls: internal
`,
    );
    writeFileSync(join(app, ".gitignore"), ".env\n.env.production\n");
    chmodSync(app, 0o755);
    const git = (...a: string[]) =>
      execFileSync("git", ["-C", app, "-c", "user.name=dev", "-c", "user.email=dev@example.com", ...a], {
        encoding: "utf8",
      }).trim();
    git("init", "-q");
    git("add", "-A");
    git("commit", "-q", "-m", "the app");
    const sha = git("rev-parse", "HEAD");
    // a change on the laptop, never committed: it must reach neither the image nor the server
    writeFileSync(join(app, "conf/app.conf"), "greeting = uncommitted\n");
    try {
      // the CI line: secrets, the function and the commit
      const line = [
        "call",
        `--source=${app}`,
        `--registry-token=file:${dir}/registry-token`,
        "vps",
        `--ssh-key=file:${dir}/ssh-key`,
        "--pull-token=env:ENGINE_PULL_TOKEN",
        "ship",
        `--git-sha=${sha}`,
        `--commit-time=${COMMIT_TIME}`,
        `--build-args=${BASE}`,
      ];
      const r = await call("ship (another repository)", line);
      expect(r.code, said(r)).toBe(0);
      expect(`${r.stdout}\n${r.stderr}`).toMatch(
        /uncommitted changes are not used \(only commit [0-9a-f]{7} is\): conf\/app\.conf/,
      );
      expect(current(OTHER)).not.toBe("");
      // run from the repository's folder as a user would (--source=.): the same settings
      const short = ["call", "--source=.", "vps", `--ssh-key=file:${dir}/ssh-key`];
      const cat = await dagger(
        env,
        [
          "-m",
          ROOT,
          ...short,
          "run",
          "--service=api",
          "--cmd=cat /etc/app.conf; echo $GREETING; echo leak=$LEAK; stat -c 'static %Y' /www/static.txt",
        ],
        { cwd: app },
      );
      calls.push({ what: "run (another repository)", r: cat });
      expect(cat.code, said(cat)).toBe(0);
      expect(cat.stdout).toContain("greeting = from another repository");
      expect(cat.stdout).not.toContain("uncommitted");
      // Git does not track it: it is not in the repository, whatever the laptop has
      expect(cat.stdout).toContain("leak=\n");
      expect(`${r.stdout}\n${r.stderr}`).toMatch(/\.env\.production is not in the repository and optional/);
      expect(cat.stdout).toContain("production");
      // a file COPY brings from the build context carries the commit's time, not the checkout's or the build's
      expect(cat.stdout).toContain(`static ${Date.parse(COMMIT_TIME) / 1000}`);
      const s = await dagger(env, ["-m", ROOT, ...short, "status"], { cwd: app });
      expect(s.code, said(s)).toBe(0);
      expect(s.stdout).toMatch(
        /from vps-pipeline\.yml: image-prefix, registry, registry-user, host, host-key, project/,
      );
      expect(s.stdout).toMatch(/compose +docker-compose\.prod\.yml/);
      // a flag wins over the file; the development .env changed nothing (keep-releases is the file's 3)
      const c = await dagger(env, ["-m", ROOT, ...short, "--keep-releases=4", "config", "--format=json"], { cwd: app });
      expect(c.code, said(c)).toBe(0);
      const settings = (JSON.parse(c.stdout) as { settings: { name: string; value: unknown; from: string }[] })
        .settings;
      const of = (n: string) => settings.find((x) => x.name === n);
      expect(of("keepReleases")).toEqual({ name: "keepReleases", value: 4, from: "flag" });
      expect(of("project")).toEqual({ name: "project", value: OTHER, from: "file" });
      expect(of("composeFile")).toEqual({ name: "composeFile", value: "docker-compose.prod.yml", from: "found" });
      // the line as a user's CI has it: secrets by env:, no test-bed base image or pull token of its own
      const ci = line
        .filter((w) => !/^--(build-args|pull-token|commit-time)=/.test(w))
        .map((w) => w.replace(`file:${dir}/`, "env:").replace(app, "."))
        .join(" ");
      expect(ci.length, ci).toBeLessThan(150);
      // a sha the repository does not have is refused before anything is built or sent
      const unknown = await dagger(env, ["-m", ROOT, ...short, "deploy", `--git-sha=${OTHER_SHA}`], { cwd: app });
      calls.push({ what: "deploy (unknown commit)", r: unknown });
      expect(unknown.code, said(unknown)).toBe(2);
      expect(unknown.stderr).toMatch(/gitSha: [0-9a-f]{40} is not a commit of the source's repository/);
      // a preview's source is a pull request: its own vps-pipeline.yml never decides where the preview goes
      const pr = await dagger(env, ["-m", ROOT, ...short, "preview", "--pr=1", `--git-sha=${sha}`], { cwd: app });
      calls.push({ what: "preview (settings from the pull request)", r: pr });
      expect(pr.code, said(pr)).toBe(2);
      expect(pr.stderr).toMatch(
        /SETTINGS_INVALID: preview: the settings would be read from vps-pipeline\.yml in --source/,
      );
      const given = await dagger(
        env,
        [
          "-m",
          ROOT,
          "call",
          "--source=.",
          "--settings=./vps-pipeline.yml",
          "vps",
          `--ssh-key=file:${dir}/ssh-key`,
          "--keep-releases=4",
          "config",
        ],
        { cwd: app },
      );
      expect(given.code, said(given)).toBe(0);
      expect(given.stdout).toMatch(/^settings file: --settings \(vps-pipeline\.yml\)$/m);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  }, 900_000);

  it("init writes the settings file and the workflows into a repository, keeping a workflow it already has", async () => {
    const app = mkdtempSync(join(tmpdir(), "engine-init-"));
    const out = mkdtempSync(join(tmpdir(), "engine-init-out-"));
    try {
      writeFileSync(join(app, "docker-compose.yml"), "name: shop\nservices:\n  web:\n    image: busybox:1\n");
      mkdirSync(join(app, ".github/workflows"), { recursive: true });
      writeFileSync(join(app, ".github/workflows/deploy.yml"), "name: ours\n");
      chmodSync(app, 0o755);
      const r = await call("init", [
        "call",
        `--source=${app}`,
        "--image-prefix=ghcr.io/acme/shop",
        "init",
        "--host=203.0.113.7",
        "--preview",
        "--preview-domain=preview.example.com",
        "export",
        `--path=${out}`,
      ]);
      expect(r.code, said(r)).toBe(0);
      expect(`${r.stdout}\n${r.stderr}`).toContain("init: kept .github/workflows/deploy.yml: it exists");
      const settings = readFileSync(join(out, "vps-pipeline.yml"), "utf8");
      expect(settings).toMatch(/^compose-file: docker-compose\.yml$/m);
      expect(settings).toMatch(/^image-prefix: ghcr\.io\/acme\/shop$/m);
      expect(settings).toMatch(/^ {2}project: shop$/m); // the compose file's own name
      expect(settings).toMatch(/^ {2}preview-domain: preview\.example\.com$/m);
      expect(settings).toMatch(/^ {2}# host-key: …   # required: fill in$/m);
      expect(readFileSync(join(out, ".github/workflows/preview.yml"), "utf8")).toMatch(
        /--settings=\.\/vps-pipeline\.yml/,
      );
      expect(existsSync(join(out, ".github/workflows/deploy.yml"))).toBe(false);
    } finally {
      rmSync(app, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    }
  }, 600_000);

  it("refuses its own repository as the source unless asked (a module loaded by version, no --source): SOURCE_IS_MODULE, exit 2", async () => {
    const r = await call("no --source", ["call", "vps", `--ssh-key=file:${dir}/ssh-key`, "config"]);
    expect(r.code, said(r)).toBe(2);
    expect(r.stderr).toMatch(/SOURCE_IS_MODULE: source: is vps-pipeline's own repository/);
    expect(r.stderr).toMatch(/--source=\./);
  }, 600_000);

  it("backs up the data stack and restores a snapshot: the row written after it is gone", async () => {
    const app = mkdtempSync(join(tmpdir(), "engine-data-app-"));
    writeFileSync(join(app, "compose.yaml"), dataStack("v1", "{ volumes: [dbdata] }"));
    chmodSync(app, 0o755);
    const data = [
      ...module({ source: app, composeFile: "compose.yaml" }),
      ...vps(DATA, ["--backup-password=env:ENGINE_BACKUP_PASSWORD", "--restic-image=vps-testbed/restic:0.14"]),
    ];
    const opts = { env: { ENGINE_BACKUP_PASSWORD: BACKUP_PASSWORD } };
    // what the user would look at on the server: the rows the database holds
    const psql = (sql: string) =>
      sh(`docker exec ${DATA}-db-1 psql -U postgres -d gold -tAc ${JSON.stringify(sql)}`).trim();
    const count = () => psql("select count(*) from prices");
    try {
      const d = await call("deploy (data)", [...data, "deploy", `--git-sha=${OTHER_SHA}`], opts);
      expect(d.code, said(d)).toBe(0);
      expect(count()).toBe("1");
      const b = await call("backup", [...data, "backup"], opts);
      expect(b.code, said(b)).toBe(0);
      const id = /^snapshot ([0-9a-f]{12}) of db/m.exec(b.stdout)?.[1];
      expect(id, said(b)).toBeDefined();
      psql("insert into prices values ('2026-02-01', 1)");
      expect(count()).toBe("2");
      const r = await call("restore", [...data, "restore", `--snapshot=${id}`], opts);
      expect(r.code, said(r)).toBe(0);
      expect(count()).toBe("1");
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  }, 900_000);

  it("measures a call that only settles its settings (config), and a cached one", async () => {
    const fresh = await call("config only", [...module(), ...vps(P), "config"]);
    expect(fresh.code, said(fresh)).toBe(0);
    expect(fresh.stdout).toMatch(new RegExp(`^image-prefix +${PREFIX.replace(/[.]/g, "\\.")} +\\(flag\\)$`, "m"));
    const cached = await call("config only (cached)", [...module(), ...vps(P), "config"]);
    expect(cached.code, said(cached)).toBe(0);
    measured["a call that only settles its settings (config)"] = fresh.seconds;
    measured["the same call again (cached)"] = cached.seconds;
  }, 600_000);

  it("leaves no secret in the engine's state, the CLI's home, or anything it printed", () => {
    // a line from the middle of the key: the first lines are the same in every OpenSSH key
    const needles = [registryPassword, privateKey.split("\n")[2]!, ENV_SECRET, BACKUP_PASSWORD];
    const home = process.env.HOME ?? "/root";
    const places = ["/var/lib/dagger-engine-bundle", `${home}/.cache/dagger`, `${home}/.config/dagger`];
    expect(filesContainingAny(places, needles)).toEqual([]);
    for (const needle of needles)
      for (const { what, r } of calls) expect(`${r.stdout}\n${r.stderr}`, what).not.toContain(needle);
  }, 600_000);
});
