/**
 * What sharing one edge costs, on the test bed (the real Caddy):
 *
 *   together   three projects behind one edge upgraded at the same moment, each under 100 requests/s
 *              (a new connection per request): failed requests per project, and each deploy's time
 *   routes     one route change (the edge lock, the edge's state read, the config loaded: what a
 *              rollover does) with 1, 10 and 100 routes on the edge
 *   replace    `vps … edge --image`: how long nothing listens, measured on the server, and the requests
 *              that fail meanwhile under 100 requests/s
 *
 * Prints medians and writes them to bench/<date>-edge.md.
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { median, root, startTestbed } from "./common.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
startTestbed();
const { deploy } = await import("../../.dagger/src/remote/deploy.js");
const { replaceEdgeImage } = await import("../../.dagger/src/remote/edge/edge-admin.js");
const { loadRoutes, readEdge, withEdgeLock } = await import("../../.dagger/src/remote/edge/edge.js");
const { withSession } = await import("../../.dagger/src/remote/session.js");
const { Progress } = await import("../../.dagger/src/remote/progress.js");
const { defaultTracing } = await import("../../.dagger/src/remote/trace.js");
const { bed, deployRequest, edgeRoutes, freshProject, loadEdge, releaseCompose, sh, sshOptions, steadyLoad, testEdge } = await import("../testbed/bed.js");

const seconds = (t0: number) => (performance.now() - t0) / 1000;
const url = (port: number) => `http://${bed.vps.hostIp}:${port}/`;
const PROJECTS = [["bench-edge1", 18111], ["bench-edge2", 18112], ["bench-edge3", 18113]] as const;
const target = (project: string) => ({ ssh: sshOptions(), dir: `production/${project}`, project, lockTimeoutSeconds: 60, edge: testEdge });

// --- together: three projects upgraded at once under load ----------------------
PROJECTS.forEach(([p]) => freshProject(p));
await Promise.all(PROJECTS.map(([p, port]) => deploy(deployRequest(p, port, { by: "bench" }))));
const together: { failed: number; sent: number }[] = [];
const deployTimes: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const v = i % 2 === 0 ? "v2" : "v1";
  const loads = PROJECTS.map(([, port]) => steadyLoad(url(port), 100));
  await new Promise((r) => setTimeout(r, 500));
  await Promise.all(PROJECTS.map(async ([p, port]) => {
    const t0 = performance.now();
    await deploy(deployRequest(p, port, { compose: releaseCompose(v), by: "bench" }));
    deployTimes.push(seconds(t0));
  }));
  await new Promise((r) => setTimeout(r, 500));
  const res = await Promise.all(loads.map((l) => l.stop()));
  together.push(...res.map((r) => ({ failed: r.failed, sent: r.sent })));
  process.stderr.write(`together run ${i + 1}/${RUNS}: failed ${res.map((r) => `${r.failed}/${r.sent}`).join(", ")}\n`);
}

// --- streams: two live-prices projects (100 req/s, 100 WebSockets, 20 event streams each) while a third changes --
const { openStreams } = await import("../testbed/streams.js");
const { parseComposeStack, renderRelease } = await import("../../.dagger/src/core/compose/compose.js");
const { rollback } = await import("../../.dagger/src/remote/rollback.js");
const { setMaintenance } = await import("../../.dagger/src/remote/edge/edge-admin.js");
const LIVE = [["bench-live1", 18121], ["bench-live2", 18122]] as const;
const liveCompose = renderRelease(
  parseComposeStack(
    `services:\n  live:\n    image: ${bed.registry.prefix}/streams@${bed.images["streams:v1"]}\n    ports: ["\${LIVE_PORT}:8000"]\n    x-vps-pipeline:\n      http: { port: 8000, health: /healthz, drain: 2 }\n`,
    "docker-compose.prod.yml",
    bed.registry.prefix,
  ),
  {},
);
LIVE.forEach(([p]) => freshProject(p));
for (const [p, port] of LIVE) await deploy(deployRequest(p, port, { compose: liveCompose, env: `LIVE_PORT=${port}\n`, by: "bench" }));
const changer = PROJECTS[0];
const changes: [string, () => Promise<unknown>][] = [
  ["upgrade", () => deploy(deployRequest(changer[0], changer[1], { compose: releaseCompose("v2"), by: "bench" }))],
  ["rollback", () => rollback({ ...target(changer[0]), healthTimeoutSeconds: 30, log: () => {}, by: "bench" })],
  ["maintenance on and off", async () => { await setMaintenance(target(changer[0]), true); await setMaintenance(target(changer[0]), false); }],
  ["a new port (the edge is replaced)", () => deploy(deployRequest(changer[0], 18124, { by: "bench" }))],
];
const streamRows: { what: string; lost: number[]; failed: number[]; unanswered: number[]; sent: number[] }[] = [];
for (const [what, change] of changes) {
  const row = { what, lost: [] as number[], failed: [] as number[], unanswered: [] as number[], sent: [] as number[] };
  const streams = await Promise.all(LIVE.map(([, port]) => openStreams(bed.vps.hostIp, port, 100, 20)));
  const loads = LIVE.map(([, port]) => steadyLoad(url(port), 100));
  await new Promise((r) => setTimeout(r, 500));
  await change();
  await new Promise((r) => setTimeout(r, 1000));
  const res = await Promise.all(loads.map((l) => l.stop()));
  for (const [i, st] of streams.entries()) {
    row.lost.push(st.lost().length);
    row.failed.push(res[i]!.failed);
    row.unanswered.push(res[i]!.unanswered);
    row.sent.push(res[i]!.sent);
    st.close();
  }
  streamRows.push(row);
  process.stderr.write(`streams, ${what}: lost ${row.lost.join(", ")} of 120; failed ${row.failed.join(", ")}; unanswered ${row.unanswered.join(", ")}\n`);
}
LIVE.forEach(([p]) => freshProject(p));
await deploy(deployRequest(changer[0], changer[1], { by: "bench" }));

// --- routes: one route change with 1, 10 and 100 routes on the edge -------------
const own = edgeRoutes();
const routeTimes: Record<number, number[]> = {};
await withSession(sshOptions(), new Progress(() => {}, "bench", defaultTracing()), async (s) => {
  for (const n of [1, 10, 100]) {
    // n - 1 others (port routes listening inside the edge only: nothing is published), plus ours
    const filler = Array.from({ length: n - 1 }, (_, i) => ({ project: "bench-fill", service: `s${i}`, listen: [{ port: 19000 + i }], upstreams: [`bench-fill-${i}:8000`] }));
    loadEdge([...own, ...filler]);
    for (let i = 0; i <= RUNS; i++) {
      const t0 = performance.now();
      await withEdgeLock(s, async () => {
        const edge = await readEdge(s, testEdge.image);
        await loadRoutes(s, edge.routes.map((r) => (r.project === "bench-fill" && r.service === "s0" ? { ...r, upstreams: [`bench-fill-${i}:8000`] } : r)));
      });
      if (i > 0) (routeTimes[n] ??= []).push(seconds(t0));
    }
    process.stderr.write(`routes ${n}: ${median(routeTimes[n]!).toFixed(3)} s\n`);
  }
});
loadEdge(own);

// --- replace: the gap of an explicit edge replacement -------------------------
sh("docker tag vps-testbed/caddy:2 vps-testbed/caddy:2-bench");
const gaps: number[] = [];
const gapFailed: { failed: number; sent: number }[] = [];
for (let i = 0; i < RUNS; i++) {
  const load = steadyLoad(url(PROJECTS[0][1]), 100);
  await new Promise((r) => setTimeout(r, 500));
  const r = await replaceEdgeImage(target(PROJECTS[0][0]), i % 2 === 0 ? "vps-testbed/caddy:2-bench" : testEdge.image);
  await new Promise((r) => setTimeout(r, 500));
  const res = await load.stop();
  gaps.push(r.gapMs);
  gapFailed.push({ failed: res.failed, sent: res.sent });
  process.stderr.write(`replace run ${i + 1}/${RUNS}: gap ${r.gapMs} ms, failed ${res.failed}/${res.sent}\n`);
}
const networks = Number(sh("docker inspect --format '{{len .NetworkSettings.Networks}}' vps-pipeline-edge").trim());
if (sh(`docker inspect --format '{{.Config.Image}}' vps-pipeline-edge`).trim() !== testEdge.image) await replaceEdgeImage(target(PROJECTS[0][0]), testEdge.image);
PROJECTS.forEach(([p]) => freshProject(p));
sh("docker rmi vps-testbed/caddy:2-bench >/dev/null 2>&1 || true");

const sum = (xs: { failed: number; sent: number }[]) => `${xs.reduce((a, x) => a + x.failed, 0)} of ${xs.reduce((a, x) => a + x.sent, 0)}`;
const text = `# Bench ${new Date().toISOString().slice(0, 10)}: one edge, many projects

Machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), the test bed (real Caddy, OpenSSH, registry). ${RUNS} runs each; medians.

| | result |
|---|---|
| three projects upgraded at the same moment, 100 requests/s each (new connection per request): failed | ${sum(together)} |
| one of those deploys (three at once on 2 cores) | ${median(deployTimes).toFixed(2)} s |
| one route change with 1 route on the edge | ${(median(routeTimes[1]!) * 1000).toFixed(0)} ms |
| one route change with 10 routes | ${(median(routeTimes[10]!) * 1000).toFixed(0)} ms |
| one route change with 100 routes | ${(median(routeTimes[100]!) * 1000).toFixed(0)} ms |
| \`vps … edge --image\` (the edge on ${networks} networks: its own and one per project): nothing listens for (measured on the server) | ${median(gaps).toFixed(0)} ms (min ${Math.min(...gaps)}, max ${Math.max(...gaps)}) |
| requests failed during those replacements, 100 requests/s | ${sum(gapFailed)} |

While another project changes, in each of two live-prices projects (100 requests/s on new connections, 100
WebSockets and 20 event streams open): streams lost (closed or silent for 2 s) of 120, requests failed, and requests
on fresh connections the edge closed unanswered at a config change (sent again; see steadyLoad):

| what the other project does | streams lost | requests failed | closed unanswered | requests sent |
|---|---|---|---|---|
${streamRows.map((r) => `| ${r.what} | ${r.lost.join(", ")} | ${r.failed.join(", ")} | ${r.unanswered.join(", ")} | ${r.sent.join(", ")} |`).join("\n")}

A route change is what each rollover does once: take the edge lock, read the edge's state and config,
load the new config (Caddy swaps it in gracefully). The replacement's gap is from the old edge's stop
to the new one's admin API answering: Caddy itself stops at once; the time is Docker tearing down the
old container's ports and networks and setting up the new one's (it grows with the number of
networks). Requests sent meanwhile are refused (connection refused), so
\`edge --image\` belongs in a quiet moment. It happens on a deploy only when the set of published ports
changes (a new host port, or the first hostname).
`;
console.log(text);
const out = `${root}bench/${new Date().toISOString().slice(0, 10)}-edge.md`;
writeFileSync(out, text);
console.log(`written to ${out}`);
