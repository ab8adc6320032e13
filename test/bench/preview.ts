/**
 * What a pull request preview costs, on the test bed (real Caddy with its own CA):
 *
 *   preview      `preview` of a new pull request until https://pr-<n>.<domain> answers with it
 *                (the deploy, the edge route, the certificate), beside an ordinary deploy of the
 *                same release as a new project at a hostname until it answers there: the floor
 *   push         a second push to the same preview until the new version answers
 *   down         `preview-down` (routes, containers, volumes, networks, images, folder)
 *
 * Prints medians and writes them to bench/<date>-preview.md.
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { median, root, startTestbed } from "./common.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
startTestbed();
const { deploy } = await import("../../.dagger/src/remote/deploy.js");
const { deployPreview, previewDown } = await import("../../.dagger/src/remote/preview/preview.js");
const { previewRelease } = await import("../../.dagger/src/core/preview/preview-release.js");
const { previewDir, previewEnv, previewProject } = await import("../../.dagger/src/core/preview/preview.js");
const { bed, deployRequest, freshProject, releaseCompose, sh, sshOptions, testEdge } = await import("../testbed/bed.js");

const PROD = "bench-pv";
const DOMAIN = "bench.vps-testbed.internal";
const CA = `${bed.stateDir}/edge-root.crt`;
const settings = { domain: DOMAIN, limit: 100, whenFull: "evict" as const, ttlHours: 0, memory: "256m", cpus: "1", seed: "" };
const production = { ssh: sshOptions(), dir: `production/${PROD}`, project: PROD, lockTimeoutSeconds: 60, edge: testEdge };
const seconds = (t0: number) => (performance.now() - t0) / 1000;
const quiet = () => {};

function request(pr: number, version: "v1" | "v2") {
  const p = previewRelease(releaseCompose(version), pr, { ...settings, project: PROD });
  const env = previewEnv("GOLD_API_KEY=bench\n", { VPS_PREVIEW_PR: String(pr), VPS_PREVIEW_URL: p.url!, VPS_PREVIEW_HOST: new URL(p.url!).host });
  return { ...deployRequest(previewProject(PROD, pr), 0, { dir: previewDir(production.dir, pr), compose: p.compose, env, log: quiet, by: "bench" }), confined: p.hostPaths };
}

/** Poll until `curl` gets the page of `version` (HTTPS by hostname, or a plain port). */
function until(url: string, version: string, resolve = ""): void {
  for (let i = 0; i < 600; i++) {
    const body = sh(`curl -s -m 2 ${resolve ? `--cacert ${CA} --resolve ${resolve}` : ""} ${url} || true`);
    if (body.includes(`Version ${version}.`)) return;
    sh("sleep 0.05");
  }
  throw new Error(`${url} never served ${version}`);
}
const previewUrl = (pr: number) => [`https://pr-${pr}.${DOMAIN}/`, `pr-${pr}.${DOMAIN}:443:${bed.vps.hostIp}`] as const;

const results: Record<string, number[]> = {};
const put = (k: string, v: number) => (results[k] ??= []).push(v);

const projects = [PROD, ...Array.from({ length: RUNS + 1 }, (_, i) => `bench-floor${i}`), ...Array.from({ length: RUNS + 1 }, (_, i) => previewProject(PROD, i + 1))];
projects.forEach(freshProject);
await deploy(deployRequest(PROD, 19201, { log: quiet, by: "bench" }));
// The first hostname on the VPS makes the edge publish 80/443 (a one-time replacement): measured apart.
let t0 = performance.now();
await deployPreview(production, 1, settings, request(1, "v1"));
sh(`docker exec vps-pipeline-edge cat /vps-pipeline/data/caddy/pki/authorities/local/root.crt > ${CA}`);
until(previewUrl(1)[0], "v1", previewUrl(1)[1]);
const firstEver = seconds(t0);

for (let i = 0; i < RUNS; i++) {
  const pr = i + 2;
  t0 = performance.now();
  const floorHost = `floor-${i}.${DOMAIN}`;
  const atHost = releaseCompose("v1", "v1", (t) => t.replace(/\n\s+ports:\n\s+- "\$\{WEB_PORT:-8080\}:8000"/, "").replace("http: { port: 8000, health: /, drain: 5 }", `http: { port: 8000, health: /, drain: 5, host: ${floorHost} }`));
  await deploy(deployRequest(`bench-floor${i}`, 0, { compose: atHost, log: quiet, by: "bench" }));
  until(`https://${floorHost}/`, "v1", `${floorHost}:443:${bed.vps.hostIp}`);
  put("deploy of a new project until https://host answers (floor)", seconds(t0));

  t0 = performance.now();
  await deployPreview(production, pr, settings, request(pr, "v1"));
  until(previewUrl(pr)[0], "v1", previewUrl(pr)[1]);
  put("preview until https://pr-N answers", seconds(t0));

  t0 = performance.now();
  await deployPreview(production, pr, settings, request(pr, "v2"));
  until(previewUrl(pr)[0], "v2", previewUrl(pr)[1]);
  put("push to a preview until the new version answers", seconds(t0));

  t0 = performance.now();
  await previewDown({ ...production, log: quiet, by: "bench" }, { prs: [pr] });
  put("preview-down", seconds(t0));
  // preview-down removed images only previews used (v2): the next push pulls them again, as on a VPS
}

projects.forEach(freshProject);
// the test bed's images by digest, as its tests expect them
const { releaseShape } = await import("../../.dagger/src/core/compose/compose.js");
for (const ref of new Set(Object.values(releaseShape(releaseCompose("v2")).images).filter(Boolean))) sh(`docker pull -q ${ref} >/dev/null 2>&1 || true`);

const floor = median(results["deploy of a new project until https://host answers (floor)"]!);
const lines = [
  `# Preview stacks, ${new Date().toISOString().slice(0, 10)} (${cpus().length} cores, medians of ${RUNS}, seconds)`,
  "",
  "| measure | median | × floor |",
  "|---|---|---|",
  ...Object.entries(results).map(([k, v]) => `| ${k} | ${median(v).toFixed(2)} | ${(median(v) / floor).toFixed(2)} |`),
  `| first preview on the VPS (the edge made again with 80/443), once | ${firstEver.toFixed(2)} | ${(firstEver / floor).toFixed(2)} |`,
  "",
];
console.log(lines.join("\n"));
writeFileSync(`${root}bench/${new Date().toISOString().slice(0, 10)}-preview.md`, lines.join("\n"));
