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
 *
 * These three run the example stack in place (web without `x-vps-pipeline.http`),
 * so they do the same work. Then the same stack with web behind the edge
 * (zero-downtime) against in place: deploy time, and failed requests and p99
 * latency during upgrades and automatic rollbacks at 50 and 200 requests/s.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { shellJoin } from "../../.dagger/src/core/shell.js";
import { here, median, root, startTestbed } from "./common.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
startTestbed();
const { deploy } = await import("../../.dagger/src/remote/deploy.js");
const { bed, deployRequest, freshProject, registryPassword, releaseCompose: edgeCompose, sh } = await import("../testbed/bed.js");
/** The example stack in place: web publishes its own port and is replaced stop-first. */
const releaseCompose = (v: "v1" | "v2" | "v3") => edgeCompose(v, v, (t) => t.replace(/\n\s+x-vps-pipeline:\n\s+http: \{[^}]*\}/, ""));

const HOME = "/home/deploy";
const versions = ["v1", "v2"] as const;
const seconds = (t0: number) => (performance.now() - t0) / 1000;
const accepted = () => (readFileSync(bed.vps.sshdLog, "utf8").match(/Accepted publickey/g) ?? []).length;
const asDeploy = (script: string) => sh(shellJoin(["ip", "netns", "exec", bed.vps.namespace, "su", "-", "deploy", "-c", script]));

function clean(project: string): void {
  freshProject(project);
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
  // written, not `docker login`: the test bed's deploy user has a credential helper, which would take the password
  writeFileSync(`${HOME}/production/bench-floor/.bench-auth/config.json`, authConfig());
}
function floor(version: "v1" | "v2"): void {
  writeFileSync(`${HOME}/production/bench-floor/docker-compose.yml`, releaseCompose(version));
  // the same work as ours: pull, the release-phase job, up
  asDeploy("cd production/bench-floor && export DOCKER_CONFIG=.bench-auth && docker compose -p bench-floor --profile vps-pipeline-jobs pull -q && docker compose -p bench-floor --profile vps-pipeline-jobs run --rm -T migrate >/dev/null 2>&1 && docker compose -p bench-floor up -d --wait --remove-orphans >/dev/null 2>&1");
}

const authConfig = () => JSON.stringify({ auths: { [bed.registry.host]: { auth: Buffer.from(`${bed.registry.user}:${registryPassword}`).toString("base64") } } });
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
  // the login step: a config written over ssh (`docker login` would hand the password to the test bed's credential
  // helper)
  ssh("mkdir -p .bench-docker && ln -sfn ~/.docker/cli-plugins .bench-docker/cli-plugins && umask 077 && cat > .bench-docker/config.json", authConfig());
  execFileSync("scp", ["-q", ...sshArgs, file, `deploy@${bed.vps.host}:production/bench-ssh/docker-compose.yml`]);
  ssh("cd production/bench-ssh && DOCKER_CONFIG=~/.bench-docker docker compose -p bench-ssh --profile vps-pipeline-jobs pull -q");
  ssh("cd production/bench-ssh && docker compose -p bench-ssh --profile vps-pipeline-jobs run --rm -T migrate >/dev/null 2>&1");
  ssh("cd production/bench-ssh && docker compose -p bench-ssh up -d --wait --remove-orphans >/dev/null 2>&1");
  ssh("rm -f .bench-docker/config.json"); // the logout
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

// --- 3: zero-downtime (web behind the edge) against in place, under load ---------
type Probe = { sent: number; failed: number; retried: number; longestGapMs: number; p50Ms: number; p99Ms: number };
async function probeDuring(port: number, rate: number, f: () => Promise<unknown>, mode = ""): Promise<Probe> {
  const p = spawn("node", [`${here}prober.mjs`, `http://${bed.vps.hostIp}:${port}/`, String(rate), "90", mode], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  p.stdout.on("data", (d: Buffer) => (out += d.toString()));
  await new Promise((r) => setTimeout(r, 500));
  await f().catch(() => undefined);
  await new Promise((r) => setTimeout(r, 500));
  p.kill("SIGTERM");
  await new Promise((r) => p.once("exit", r));
  return JSON.parse(out) as Probe;
}
clean("bench-edge");
let edgeRunning: "v1" | "v2" = "v1";
const edgeTimes: number[] = [];
/** The edge deploy's steps and the switch's parts (`switch.ready`…), run by run. */
const edgeSteps: Record<string, number[]> = {};
async function viaEdge(version: "v1" | "v2"): Promise<void> {
  const t = performance.now();
  const r = await deploy(deployRequest("bench-edge", 18104, { compose: edgeCompose(version), by: "bench" }));
  edgeTimes.push(seconds(t));
  for (const [k, v] of Object.entries({ ...r.durations, ...r.parts })) (edgeSteps[k] ??= []).push(v);
  edgeRunning = version;
}
await viaEdge("v1");
edgeTimes.length = 0;
for (const k of Object.keys(edgeSteps)) delete edgeSteps[k];
const UPGRADES = Number(process.env.BENCH_UPGRADES ?? 5);
const load: Record<string, Probe[]> = {};
const inPlaceTimes: number[] = [];
for (const rate of [50, 200]) {
  for (let i = 0; i < UPGRADES; i++) {
    (load[`in place, upgrade, ${rate}/s`] ??= []).push(await probeDuring(18101, rate, async () => {
      const t = performance.now();
      await ours(other(oursRunning));
      inPlaceTimes.push(seconds(t));
    }));
    (load[`edge, upgrade, ${rate}/s`] ??= []).push(await probeDuring(18104, rate, () => viaEdge(other(edgeRunning))));
  }
  // the broken v3 (api never healthy) rolls back automatically
  for (let i = 0; i < Math.max(2, Math.floor(UPGRADES / 2)); i++) {
    (load[`in place, automatic rollback, ${rate}/s`] ??= []).push(await probeDuring(18101, rate, () => deploy(deployRequest("bench-ours", 18101, { compose: releaseCompose("v3"), by: "bench", healthTimeoutSeconds: 30 }))));
    (load[`edge, automatic rollback, ${rate}/s`] ??= []).push(await probeDuring(18104, rate, () => deploy(deployRequest("bench-edge", 18104, { compose: edgeCompose("v3"), by: "bench", healthTimeoutSeconds: 30 }))));
  }
}
// the same upgrades with clients that keep connections alive (a config change closes Caddy's idle ones; resent once, as
// browsers do)
for (let i = 0; i < UPGRADES; i++) (load["edge, upgrade, 200/s, keep-alive"] ??= []).push(await probeDuring(18104, 200, () => viaEdge(other(edgeRunning)), "keepalive"));

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
  `| deploy of a new version, in place (the upgrades under load below) | ${f2(median(inPlaceTimes))} s | ${inPlaceTimes.map(f2).join(", ")} |`,
  `| deploy of a new version, web behind the edge (same upgrades) | ${f2(median(edgeTimes))} s | ${edgeTimes.map(f2).join(", ")} |`,
  `| edge deploy − in-place deploy (medians) | ${f2(median(edgeTimes) - median(inPlaceTimes))} s | |`,
  ...Object.entries(edgeSteps)
    .filter(([k]) => k.startsWith("switch") || k === "edge")
    .map(([k, xs]) => `| edge deploy, ${k.startsWith("switch.") ? `switch part ${k.slice(7)}` : `step ${k}`} | ${f2(median(xs))} s | ${xs.map(f2).join(", ")} |`),
  ...Object.entries(load).flatMap(([k, xs]) => [
    `| ${k}: failed requests (sent again after a reset) | ${median(xs.map((d) => d.failed))} of ~${median(xs.map((d) => d.sent))} (${median(xs.map((d) => d.retried))}) | ${xs.map((d) => `${d.failed}/${d.sent} (${d.retried})`).join(", ")} |`,
    `| ${k}: longest gap between successes, p99 latency | ${median(xs.map((d) => d.longestGapMs))} ms, ${median(xs.map((d) => d.p99Ms))} ms | ${xs.map((d) => `${d.longestGapMs}/${d.p99Ms}`).join(", ")} |`,
  ]),
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
for (const p of ["bench-ours", "bench-floor", "bench-ssh", "bench-edge"]) clean(p);
