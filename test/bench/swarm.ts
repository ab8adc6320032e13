/**
 * `npm run bench` (second part): the same stack on one VPS and on the test bed's
 * three-node swarm, side by side in one run: upgrade deploy time, failed requests
 * during the upgrade (on the VPS: to web through the edge, 50 requests/s from
 * outside; on the swarm: to api through swarm's DNS round robin, ~40/s from a
 * client on the overlay — this kernel has no IPVS, so no routing mesh), and the
 * fewest api replicas running during a swarm upgrade. Appends its table to
 * bench/<date>.md.
 */
import { spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import { here, median, root, startTestbed } from "./common.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
startTestbed();
const { deploy } = await import("../../.dagger/src/remote/deploy.js");
const { apiReplicated, bed, deployRequest, freshProject, freshStack, onSwarm, overlayProbe, releaseCompose, swarmRequest, viaDnsrr } = await import("../testbed/bed.js");

/** The example with api at three replicas: the same file for both targets (on the swarm, api by DNS round robin). */
const vps = (v: "v1" | "v2") => deployRequest("bench-one", 18111, { compose: releaseCompose(v, v, apiReplicated), by: "bench" });
const swarm = (v: "v1" | "v2") => swarmRequest("bench-swarm", 18112, v, { by: "bench" }, (t) => viaDnsrr(apiReplicated(t)));

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return (performance.now() - t) / 1000;
}

/** Failed requests to the VPS's web while `f` runs (prober.mjs, a new connection per request). */
async function failedDuring(rate: number, f: () => Promise<number>): Promise<{ seconds: number; sent: number; failed: number }> {
  const p = spawn("node", [`${here}prober.mjs`, `http://${bed.vps.hostIp}:18111/`, String(rate), "120", ""], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  p.stdout.on("data", (d: Buffer) => (out += d.toString()));
  await new Promise((r) => setTimeout(r, 500));
  const seconds = await f();
  await new Promise((r) => setTimeout(r, 500));
  p.kill("SIGTERM");
  await new Promise((r) => p.once("exit", r));
  const probe = JSON.parse(out) as { sent: number; failed: number };
  return { seconds, ...probe };
}

/** The fewest api tasks running (on any node) while `f` runs. */
async function capacityDuring(f: () => Promise<number>): Promise<{ seconds: number; min: number }> {
  let min = Infinity;
  let done = false;
  const watch = (async () => {
    while (!done) {
      const n = onSwarm("service ps bench-swarm_api --filter desired-state=running --format '{{.CurrentState}}'").split("\n").filter((l) => l.startsWith("Running")).length;
      min = Math.min(min, n);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const seconds = await f();
  done = true;
  await watch;
  return { seconds, min };
}

freshProject("bench-one");
await freshStack("bench-swarm");
await deploy(vps("v1"));
await deploy(swarm("v1"));
const probe = overlayProbe("bench-swarm_default", "http://api:8000/health");
const one: { seconds: number; sent: number; failed: number }[] = [];
const many: { seconds: number; min: number; sent: number; failed: number }[] = [];
for (let i = 0; i < RUNS; i++) {
  const v = i % 2 === 0 ? "v2" : "v1";
  one.push(await failedDuring(50, () => timed(() => deploy(vps(v)))));
  const a = probe.counts();
  const m = await capacityDuring(() => timed(() => deploy(swarm(v))));
  const b = probe.counts();
  many.push({ ...m, sent: b.ok + b.failed - a.ok - a.failed, failed: b.failed - a.failed });
}
probe.stop();
freshProject("bench-one");
await freshStack("bench-swarm");

const f2 = (x: number) => x.toFixed(2);
const ratio = many.map((m, i) => m.seconds / one[i]!.seconds);
const rows = [
  `## One VPS against a three-node swarm (${RUNS} upgrades each, interleaved; api at 3 replicas, web behind the edge on the VPS)`,
  "",
  "| | one VPS (compose, edge) | three-node swarm (stack deploy) |",
  "|---|---|---|",
  `| upgrade deploy time, median | ${f2(median(one.map((x) => x.seconds)))} s | ${f2(median(many.map((x) => x.seconds)))} s (${f2(median(ratio))}× the VPS) |`,
  `| failed requests during the upgrades (a new connection each) | ${one.reduce((a, x) => a + x.failed, 0)} of ${one.reduce((a, x) => a + x.sent, 0)} (50/s to web through the edge) | ${many.reduce((a, x) => a + x.failed, 0)} of ${many.reduce((a, x) => a + x.sent, 0)} (~40/s to api by swarm's DNS round robin, from a client on the overlay; no IPVS here, so not through the routing mesh) |`,
  `| fewest api replicas running during an upgrade (of 3) | — | ${Math.min(...many.map((x) => x.min))} |`,
  "",
  "The swarm's time is swarm's own rolling update: one task at a time, start-first, each waiting for its healthcheck, then the `monitor` window.",
  "",
];
const text = rows.join("\n");
console.log(text);
appendFileSync(`${root}bench/${new Date().toISOString().slice(0, 10)}.md`, `\n${text}`);
