/**
 * What carrying files and many services costs a deploy, on the test bed.
 *
 *   files     the example stack deployed with 0 files from the repository and with 50 (every one
 *             changed each time, the worst case: all are sent), interleaved; the difference is the cost
 *   services  stacks of 1, 10 and 30 services, ours (deploy over SSH) next to the floor
 *             (`docker compose up -d --wait` as the deploy user on the VPS itself), interleaved
 *
 * Prints medians and writes them to bench/<date>-release-files.md.
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { shellJoin } from "../../.dagger/src/core/shell.js";
import { parseComposeStack, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import { fileRefs, releaseFiles, type Found } from "../../.dagger/src/core/release/release-files.js";
import { median, root, startTestbed } from "./common.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
startTestbed();
const { deploy } = await import("../../.dagger/src/remote/deploy.js");
const { bed, deployRequest, freshProject, sh } = await import("../testbed/bed.js");
const { readFileSync } = await import("node:fs");

const FILE = "compose/docker-compose.prod.yml";
const seconds = (t0: number) => (performance.now() - t0) / 1000;
const inPlace = (t: string) => t.replace(/\n\s+x-vps-pipeline:\n\s+http: \{[^}]*\}/, "");
const digests = (v: "v1" | "v2") => ({ migrate: bed.images[`migrate:${v}`]!, api: bed.images[`api:${v}`]!, web: bed.images[`web:${v}`]! });

// --- files: 0 against 50 ------------------------------------------------------
function filesRelease(v: "v1" | "v2", n: number, run: number) {
  const base = inPlace(readFileSync(`${root}${FILE}`, "utf8"));
  const text = n === 0 ? base : base.replace("    init: true\n    restart: unless-stopped\n    depends_on:", "    init: true\n    restart: unless-stopped\n    volumes: [\"./pages:/www/pages:ro\"]\n    depends_on:");
  const stack = parseComposeStack(text, FILE, bed.registry.prefix);
  const found = new Map<string, Found>(n === 0 ? [] : [["compose/pages", { type: "dir", files: Array.from({ length: n }, (_, i) => ({ path: `page-${i}.html`, content: `<p>page ${i} of run ${run}</p>\n`.repeat(20) })) }]]);
  const rf = releaseFiles(fileRefs(stack.doc.toJS(), FILE), found);
  return { compose: renderRelease(stack, digests(v), rf.rewrites), files: rf.files };
}

const projects = { 0: "bench-files0", 50: "bench-files50" } as const;
const ports = { 0: 18106, 50: 18107 } as const;
for (const n of [0, 50] as const) freshProject(projects[n]);
const fileTimes: Record<0 | 50, number[]> = { 0: [], 50: [] };
const uploadTimes: Record<0 | 50, number[]> = { 0: [], 50: [] };
for (let i = 0; i <= RUNS; i++) {
  for (const n of [0, 50] as const) {
    const v = i % 2 === 0 ? "v1" : "v2";
    const t0 = performance.now();
    const r = await deploy(deployRequest(projects[n], ports[n], { ...filesRelease(v, n, i), env: `WEB_PORT=${ports[n]}\n`, by: "bench", keepReleases: 3 }));
    if (i === 0) continue; // the first deploy brings the stack up
    fileTimes[n].push(seconds(t0));
    uploadTimes[n].push(r.durations.upload ?? 0);
  }
  if (i > 0) process.stderr.write(`files run ${i}/${RUNS}: 0 files ${fileTimes[0].at(-1)!.toFixed(2)}s, 50 files ${fileTimes[50].at(-1)!.toFixed(2)}s\n`);
}
for (const n of [0, 50] as const) freshProject(projects[n]);

// --- services: 1, 10, 30, ours next to the floor ---------------------------------
function manyServices(n: number, v: "v1" | "v2"): string {
  const svc = (i: number) => [
    `  s${i}:`, `    image: ${bed.registry.prefix}/api@${bed.images[`api:${v}`]}`, "    init: true",
    "    healthcheck: { test: [\"CMD\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8000/health\"], interval: 1s, timeout: 2s, retries: 3 }",
  ].join("\n");
  return `services:\n${Array.from({ length: n }, (_, i) => svc(i)).join("\n")}\n`;
}
const asDeploy = (script: string) => sh(shellJoin(["ip", "netns", "exec", bed.vps.namespace, "su", "-", "deploy", "-c", script]));
const svcTimes: Record<string, number[]> = {};
for (const n of [1, 10, 30]) {
  const ours = `bench-svc${n}`;
  const floor = `bench-svcfloor${n}`;
  freshProject(ours);
  freshProject(floor);
  asDeploy(`mkdir -p production/${floor}`);
  for (let i = 0; i <= RUNS; i++) {
    const v = i % 2 === 0 ? "v1" : "v2";
    let t0 = performance.now();
    await deploy(deployRequest(ours, 18108, { compose: manyServices(n, v), by: "bench", keepReleases: 3, healthTimeoutSeconds: 120 }));
    const oursS = seconds(t0);
    writeFileSync(`/home/deploy/production/${floor}/docker-compose.yml`, manyServices(n, v));
    t0 = performance.now();
    asDeploy(`cd production/${floor} && docker compose -p ${floor} up -d --wait --remove-orphans --pull never >/dev/null 2>&1`);
    const floorS = seconds(t0);
    if (i === 0) continue;
    (svcTimes[`ours ${n}`] ??= []).push(oursS);
    (svcTimes[`floor ${n}`] ??= []).push(floorS);
    process.stderr.write(`services ${n} run ${i}/${RUNS}: ours ${oursS.toFixed(2)}s, floor ${floorS.toFixed(2)}s\n`);
  }
  freshProject(ours);
  freshProject(floor);
}

const fmt = (xs: number[]) => `${median(xs).toFixed(2)} s`;
const pairs = (a: number[], b: number[]) => a.map((x, i) => x - b[i]!);
const rows = [
  `| deploy with 0 files from the repository | ${fmt(fileTimes[0])} | ${fileTimes[0].map((x) => x.toFixed(2)).join(", ")} |`,
  `| deploy with 50 files (all changed, all sent) | ${fmt(fileTimes[50])} | ${fileTimes[50].map((x) => x.toFixed(2)).join(", ")} |`,
  `| 50 files − 0 files (pair by pair) | ${fmt(pairs(fileTimes[50], fileTimes[0]))} | ${pairs(fileTimes[50], fileTimes[0]).map((x) => x.toFixed(2)).join(", ")} |`,
  `| upload step, 0 / 50 files | ${median(uploadTimes[0]).toFixed(2)} s / ${median(uploadTimes[50]).toFixed(2)} s | |`,
  ...[1, 10, 30].map((n) => `| ${n} service(s): ours / floor (ratio, pair by pair) | ${fmt(svcTimes[`ours ${n}`]!)} / ${fmt(svcTimes[`floor ${n}`]!)} (${median(svcTimes[`ours ${n}`]!.map((x, i) => x / svcTimes[`floor ${n}`]![i]!)).toFixed(2)}×) | ${svcTimes[`ours ${n}`]!.map((x) => x.toFixed(2)).join(", ")} / ${svcTimes[`floor ${n}`]!.map((x) => x.toFixed(2)).join(", ")} |`),
];
const text = [
  "# vps-pipeline benchmark: files from the repository, and many services",
  "",
  `- date: ${new Date().toISOString()}`,
  `- machine: ${cpus().length} cores; runs: ${RUNS} per case, interleaved`,
  "",
  "| measure | median | runs |",
  "|---|---|---|",
  ...rows,
  "",
].join("\n");
console.log(text);
const out = `${root}bench/${new Date().toISOString().slice(0, 10)}-release-files.md`;
writeFileSync(out, text);
console.log(`written to ${out}`);
