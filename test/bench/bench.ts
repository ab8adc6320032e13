/**
 * `npm run bench`: what a deploy costs, side by side with the alternatives, in
 * one run on the test bed. Not part of the test suite; prints medians and
 * pair-wise ratios and writes them, with the machine's facts, to bench/<date>.md.
 *
 *   ours    deploy() over one SSH connection (pull, switch, health)
 *   floor   `docker compose pull`, the migration job (`compose run`), `docker compose up -d --wait` as the deploy user
 *           inside the VPS namespace: no SSH, no lock, no history
 *   ssh-per-step  what ssh-action based workflows do: a new `ssh`/`scp` per step
 *           (login, copy the compose file, pull, the migration job, up --wait, logout)
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { shellJoin } from "../../.dagger/src/core/shell.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const here = fileURLToPath(new URL(".", import.meta.url));
const root = fileURLToPath(new URL("../..", import.meta.url));

execFileSync("bash", [`${root}test/testbed/up.sh`], { stdio: ["ignore", "ignore", "inherit"] });
process.env.NODE_EXTRA_CA_CERTS ??= `${process.env.TESTBED_DIR ?? "/tmp/vps-testbed"}/ca.crt`;
const { deploy } = await import("../../.dagger/src/remote/deploy.js");
const { bed, deployRequest, registryPassword, releaseCompose, sh } = await import("../testbed/bed.js");

const HOME = "/home/deploy";
const versions = ["v1", "v2"] as const;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const seconds = (t0: number) => (performance.now() - t0) / 1000;
const accepted = () => (readFileSync(bed.vps.sshdLog, "utf8").match(/Accepted publickey/g) ?? []).length;
const asDeploy = (script: string) => sh(shellJoin(["ip", "netns", "exec", bed.vps.namespace, "su", "-", "deploy", "-c", script]));

function clean(project: string): void {
  sh(`ids=$(docker ps -aq --filter label=com.docker.compose.project=${project}); [ -z "$ids" ] || docker rm -f $ids >/dev/null; rm -rf ${HOME}/production/${project}`);
}

// --- the three ways, one deploy each -----------------------------------------
let oursRunning: "v1" | "v2" = "v1";
async function ours(version: "v1" | "v2"): Promise<void> {
  await deploy(deployRequest("bench-ours", 18101, { compose: releaseCompose(version), by: "bench" }));
  oursRunning = version;
}
const other = (v: "v1" | "v2") => (v === "v1" ? "v2" : "v1");

function floorSetup(): void {
  clean("bench-floor");
  asDeploy(`mkdir -p production/bench-floor/.bench-auth && printf 'WEB_PORT=18102\\n' > production/bench-floor/.env`);
  sh(`ln -sfn ${HOME}/.docker/cli-plugins ${HOME}/production/bench-floor/.bench-auth/cli-plugins`);
  const login = shellJoin(["env", "DOCKER_CONFIG=production/bench-floor/.bench-auth", "docker", "login", "-u", bed.registry.user, "--password-stdin", bed.registry.host]);
  execFileSync("ip", ["netns", "exec", bed.vps.namespace, "su", "-", "deploy", "-c", login], { input: registryPassword, stdio: ["pipe", "ignore", "ignore"] });
}
function floor(version: "v1" | "v2"): void {
  writeFileSync(`${HOME}/production/bench-floor/docker-compose.yml`, releaseCompose(version));
  // the same work as ours: pull, the release-phase job, up
  asDeploy("cd production/bench-floor && export DOCKER_CONFIG=.bench-auth && docker compose -p bench-floor --profile vps-pipeline-jobs pull -q && docker compose -p bench-floor --profile vps-pipeline-jobs run --rm -T migrate >/dev/null 2>&1 && docker compose -p bench-floor up -d --wait --remove-orphans >/dev/null 2>&1");
}

const sshArgs = ["-i", bed.vps.keys.ed25519, "-o", `UserKnownHostsFile=${bed.stateDir}/bench_known_hosts`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"];
function altSetup(): void {
  clean("bench-ssh");
  writeFileSync(`${bed.stateDir}/bench_known_hosts`, `${bed.vps.host} ${readFileSync(bed.vps.hostKeyFile, "utf8")}`);
  asDeploy("mkdir -p production/bench-ssh && printf 'WEB_PORT=18103\\n' > production/bench-ssh/.env");
}
function alt(version: "v1" | "v2"): void {
  const file = `${bed.stateDir}/bench-ssh-compose.yml`;
  writeFileSync(file, releaseCompose(version));
  const ssh = (cmd: string, input?: string) => execFileSync("ssh", [...sshArgs, `deploy@${bed.vps.host}`, cmd], { input: input ?? "", stdio: ["pipe", "ignore", "pipe"] });
  ssh(`docker login -u ${bed.registry.user} --password-stdin ${bed.registry.host} >/dev/null 2>&1`, registryPassword);
  execFileSync("scp", ["-q", ...sshArgs, file, `deploy@${bed.vps.host}:production/bench-ssh/docker-compose.yml`]);
  ssh("cd production/bench-ssh && docker compose -p bench-ssh --profile vps-pipeline-jobs pull -q");
  ssh("cd production/bench-ssh && docker compose -p bench-ssh --profile vps-pipeline-jobs run --rm -T migrate >/dev/null 2>&1");
  ssh("cd production/bench-ssh && docker compose -p bench-ssh up -d --wait --remove-orphans >/dev/null 2>&1");
  ssh(`docker logout ${bed.registry.host} >/dev/null`);
}

// --- 1 and 2: deploy time and connections, interleaved so noise hits all alike ---
clean("bench-ours");
floorSetup();
altSetup();
// first deploys bring the stacks up; they are not what we measure
await ours("v1");
floor("v1");
alt("v1");
const times: Record<"ours" | "floor" | "alt", number[]> = { ours: [], floor: [], alt: [] };
const conns: Record<"ours" | "alt", number[]> = { ours: [], alt: [] };
/** Where our time goes: each step's duration, from the history record of each timed deploy. */
const steps: Record<string, number[]> = {};
for (let i = 0; i < RUNS; i++) {
  const v = versions[(i + 1) % 2]!;
  let c = accepted(), t = performance.now();
  await ours(v);
  times.ours.push(seconds(t));
  conns.ours.push(accepted() - c);
  const d = (JSON.parse(sh(`tail -n 1 ${HOME}/production/bench-ours/.releases/history.jsonl`)) as { durations: Record<string, number> }).durations;
  for (const [k, x] of Object.entries(d)) (steps[k] ??= []).push(x);
  t = performance.now();
  floor(v);
  times.floor.push(seconds(t));
  c = accepted();
  t = performance.now();
  alt(v);
  times.alt.push(seconds(t));
  conns.alt.push(accepted() - c);
  process.stderr.write(`run ${i + 1}/${RUNS}: ours ${times.ours.at(-1)!.toFixed(2)}s, floor ${times.floor.at(-1)!.toFixed(2)}s, ssh-per-step ${times.alt.at(-1)!.toFixed(2)}s\n`);
}
const ratios = { oursFloor: times.ours.map((t, i) => t / times.floor[i]!), altOurs: times.alt.map((t, i) => t / times.ours[i]!) };
const overhead = times.ours.map((t, i) => t - times.floor[i]!);

// --- 3: downtime during an upgrade, prober at 50 requests/s -----------------------
async function probeDuring(f: () => Promise<void>): Promise<{ sent: number; failed: number; longestGapMs: number }> {
  const p = spawn("node", [`${here}prober.mjs`, `http://${bed.vps.hostIp}:18101/`, "50", "60"], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  p.stdout.on("data", (d: Buffer) => (out += d.toString()));
  await new Promise((r) => setTimeout(r, 500));
  await f();
  await new Promise((r) => setTimeout(r, 500));
  p.kill("SIGTERM");
  await new Promise((r) => p.once("exit", r));
  return JSON.parse(out) as { sent: number; failed: number; longestGapMs: number };
}
const downtime: { sent: number; failed: number; longestGapMs: number }[] = [];
// each one a real upgrade: containers are replaced
for (let i = 0; i < 5; i++) downtime.push(await probeDuring(() => ours(other(oursRunning))));

// --- 4: rollback: from the failed health wait to the previous release serving ----
await ours("v2");
const rollbacks: number[] = [];
for (let i = 0; i < 5; i++) {
  await deploy(deployRequest("bench-ours", 18101, { compose: releaseCompose("v3"), by: "bench", healthTimeoutSeconds: 60 })).catch(() => undefined);
  const last = JSON.parse(sh(`tail -n 1 ${HOME}/production/bench-ours/.releases/history.jsonl`)) as { result: string; durations: Record<string, number> };
  if (last.result === "rolled-back") rollbacks.push(last.durations.rollback!);
}

// --- 5: peak memory of the deploying process --------------------------------------
const rss = (args: string[]) => (JSON.parse(execFileSync("npx", ["tsx", `${here}deploy-once.ts`, ...args], { encoding: "utf8", env: process.env }).trim().split("\n").pop()!) as { maxRssKiB: number }).maxRssKiB;
const memBase: number[] = [];
const memDeploy: number[] = [];
for (let i = 0; i < 5; i++) {
  memBase.push(rss(["bench-ours", "18101", "v1", "--load-only"]));
  memDeploy.push(rss(["bench-ours", "18101", versions[i % 2]!]));
}

// --- report ------------------------------------------------------------------
const f2 = (x: number) => x.toFixed(2);
const facts = [
  `date: ${new Date().toISOString()}`,
  `machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, kernel ${sh("uname -r").trim()}`,
  `docker engine ${sh("docker version --format '{{.Server.Version}}'").trim()}, compose ${sh(`${HOME}/.docker/cli-plugins/docker-compose version --short`).trim()}, OpenSSH ${sh("ssh -V 2>&1").trim()}, node ${process.version}`,
  `runs: ${RUNS} per method, interleaved (ours, floor, ssh-per-step) in one run; the example app (2 services, healthcheck interval 1 s, and a release-phase migration job that all three run)`,
];
const rows = [
  "| measure | median | runs |",
  "|---|---|---|",
  `| deploy, ours (one SSH connection) | ${f2(median(times.ours))} s | ${times.ours.map(f2).join(", ")} |`,
  `| deploy, floor (compose on the VPS, no SSH) | ${f2(median(times.floor))} s | ${times.floor.map(f2).join(", ")} |`,
  `| deploy, ssh-per-step script | ${f2(median(times.alt))} s | ${times.alt.map(f2).join(", ")} |`,
  `| ours − floor (overhead, pair by pair) | ${f2(median(overhead))} s | ${overhead.map(f2).join(", ")} |`,
  `| ours / floor (pair by pair) | ${f2(median(ratios.oursFloor))}× | ${ratios.oursFloor.map(f2).join(", ")} |`,
  `| ssh-per-step / ours (pair by pair) | ${f2(median(ratios.altOurs))}× | ${ratios.altOurs.map(f2).join(", ")} |`,
  ...Object.entries(steps).map(([k, xs]) => `| ours, step ${k} | ${f2(median(xs))} s | ${xs.map(f2).join(", ")} |`),
  `| SSH connections per deploy, ours | ${median(conns.ours)} | ${conns.ours.join(", ")} |`,
  `| SSH connections per deploy, ssh-per-step | ${median(conns.alt)} | ${conns.alt.join(", ")} |`,
  `| upgrade under 50 req/s: failed requests | ${median(downtime.map((d) => d.failed))} of ~${median(downtime.map((d) => d.sent))} | ${downtime.map((d) => `${d.failed}/${d.sent}`).join(", ")} |`,
  `| upgrade under 50 req/s: longest gap between successes | ${median(downtime.map((d) => d.longestGapMs))} ms | ${downtime.map((d) => d.longestGapMs).join(", ")} |`,
  `| rollback: failed health → previous release healthy | ${f2(median(rollbacks))} s | ${rollbacks.map(f2).join(", ")} |`,
  `| peak RSS, node process running one deploy | ${(median(memDeploy) / 1024).toFixed(1)} MiB | ${memDeploy.map((k) => (k / 1024).toFixed(1)).join(", ")} |`,
  `| peak RSS, same process loading the modules only | ${(median(memBase) / 1024).toFixed(1)} MiB | ${memBase.map((k) => (k / 1024).toFixed(1)).join(", ")} |`,
];
const text = `# vps-pipeline benchmark\n\n${facts.map((f) => `- ${f}`).join("\n")}\n\n${rows.join("\n")}\n`;
console.log(text);
mkdirSync(`${root}bench`, { recursive: true });
const file = `${root}bench/${new Date().toISOString().slice(0, 10)}.md`;
writeFileSync(file, text);
console.error(`written to ${file}`);
for (const p of ["bench-ours", "bench-floor", "bench-ssh"]) clean(p);
