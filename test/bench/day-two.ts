/**
 * What `logs --tail=1000` and `run` (a no-op) cost next to doing the same by hand
 * with plain `ssh` and `docker` (OpenSSH's client, one connection each, the same key),
 * interleaved, on the test bed. Prints medians and writes bench/<date>-day-two.md.
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { median, root, startTestbed } from "./common.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 9);
startTestbed();
const { deploy } = await import("../../.dagger/src/remote/deploy.js");
const { logs } = await import("../../.dagger/src/remote/day-two/logs.js");
const { runOnce } = await import("../../.dagger/src/remote/day-two/one-off.js");
const { bed, deployRequest, freshProject, sh, sshOptions } = await import("../testbed/bed.js");

const P = "bench-d2";
const target = { ssh: sshOptions(), dir: `production/${P}`, project: P, lockTimeoutSeconds: 30 };
freshProject(P);
await deploy(deployRequest(P, 19221, { log: () => {}, by: "bench" }));
const api = sh(`docker ps --filter label=com.docker.compose.project=${P} --filter label=com.docker.compose.service=api --format '{{.Names}}'`).trim();
// 2000 lines in api's log, so that --tail=1000 has something to cut
sh(`docker exec ${api} sh -c 'i=0; while [ $i -lt 2000 ]; do echo "line $i of the bench log with some words in it"; i=$((i+1)); done > /proc/1/fd/1'`);

const knownHosts = `${bed.stateDir}/bench-known_hosts`;
writeFileSync(knownHosts, `${bed.vps.host} ${sh(`cut -d' ' -f1,2 ${bed.vps.hostKeyFile}`).trim()}\n`);
const ssh = `ssh -o BatchMode=yes -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -i ${bed.vps.keys.ed25519} -p ${bed.vps.port} ${bed.vps.user}@${bed.vps.host}`;
const results: Record<string, number[]> = {};
const time = async (k: string, f: () => unknown) => {
  const t0 = performance.now();
  await f();
  (results[k] ??= []).push((performance.now() - t0) / 1000);
};
for (let i = 0; i < RUNS; i++) {
  await time("logs --tail=1000 (all services)", () => logs(target, { services: [], tail: 1000, maxBytes: 1 << 20 }));
  await time("ssh + docker compose logs --tail=1000", () => sh(`${ssh} 'cd production/${P} && docker compose -p ${P} logs --timestamps --tail=1000' > /dev/null`));
  await time("run --cmd=true", () => runOnce(target, { service: "api", command: ["true"], timeoutSeconds: 60, maxBytes: 1048576, by: "bench", log: () => {} }));
  await time("ssh + docker compose run --rm true", () => sh(`${ssh} 'cd production/${P} && docker compose -p ${P} run --rm -T --no-deps api true' > /dev/null`));
}
freshProject(P);

const lines = [
  `# Day two, ${new Date().toISOString().slice(0, 10)} (${cpus().length} cores, medians of ${RUNS}, seconds)`,
  "",
  "| measure | median |",
  "|---|---|",
  ...Object.entries(results).map(([k, v]) => `| ${k} | ${median(v).toFixed(2)} |`),
  "",
];
console.log(lines.join("\n"));
writeFileSync(`${root}bench/${new Date().toISOString().slice(0, 10)}-day-two.md`, lines.join("\n"));
