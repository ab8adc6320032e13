/**
 * What data snapshots cost, on the test bed (Debian's restic and PostgreSQL):
 *
 *   physical   a volume of 100 MB and of 1 GB (random bytes: nothing to deduplicate or compress),
 *              captured with `backup` (the service stopped meanwhile) and put back with `restore`
 *   logical    a PostgreSQL table of ~100 MB and ~1 GB, `pg_dump` into restic and `psql` back
 *   deploy     the same release with a job, with and without a data declaration (100 MB volume):
 *              what the snapshot before the job adds, and what a release without data pays (no step)
 *
 * Prints medians and writes them to bench/<date>-data.md.
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { median, root, startTestbed } from "./common.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
startTestbed();
const { deploy } = await import("../../.dagger/src/remote/deploy.js");
const { backup, restoreSnapshot } = await import("../../.dagger/src/remote/data/data.js");
const { bed, deployRequest, freshProject, sh, sshOptions, testEdge } = await import("../testbed/bed.js");

const seconds = (t0: number) => (performance.now() - t0) / 1000;
const PASSWORD = `bench-${Date.now()}-${Math.random().toString(36).slice(2)}`;
const b = { password: PASSWORD, image: "vps-testbed/restic:0.14", keep: 3, keepDays: 0 };
sh(`docker image inspect ${b.image} >/dev/null 2>&1 || docker load -q -i ${bed.stateDir}/restic-image.tar >/dev/null`);
const target = (project: string) => ({ ssh: sshOptions(), dir: `production/${project}`, project, lockTimeoutSeconds: 60, healthTimeoutSeconds: 120, edge: testEdge, backup: b, by: "bench", log: () => {} });
const PG = `${bed.registry.prefix}/postgres@${bed.images["postgres:15"]}`;
const API = `${bed.registry.prefix}/api@${bed.images["api:v1"]}`;

/** A store (a process holding a volume) or PostgreSQL, declared physical or logical, with a job when `job`. */
function stack(kind: "store" | "pg", data: string | undefined, job = false): string {
  const decl = data ? `\n    x-vps-pipeline:\n      data: ${data}` : "";
  const svc = kind === "store"
    ? `  store:\n    image: ${API}\n    init: true\n    entrypoint: ["sleep", "1000000"]\n    volumes: ["blob:/blob"]${decl}\n`
    : `  db:\n    image: ${PG}\n    volumes: ["blob:/var/lib/postgresql/data"]\n    healthcheck: { test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres"], interval: 1s, retries: 60 }${decl}\n`;
  const migrate = job ? `  migrate:\n    image: ${API}\n    entrypoint: ["true"]\n    profiles: [vps-pipeline-jobs]\n    x-vps-pipeline: { job: true }\n` : "";
  return `services:\n${svc}${migrate}volumes:\n  blob: {}\n`;
}
const deployIt = (project: string, compose: string) => deploy(deployRequest(project, 0, { compose, env: "X=1\n", backup: b, healthTimeoutSeconds: 180, by: "bench" }));

const results: Record<string, number[]> = {};
const put = (k: string, v: number) => (results[k] ??= []).push(v);

// --- physical: 100 MB and 1 GB of random bytes ---------------------------------
for (const mb of [100, 1024]) {
  const p = `bench-phys${mb}`;
  freshProject(p);
  await deployIt(p, stack("store", "{ volumes: [blob] }"));
  for (let i = 0; i < RUNS; i++) {
    // new bytes each run: restic has nothing to deduplicate
    sh(`docker exec ${p}-store-1 sh -c 'rm -f /blob/*; dd if=/dev/urandom of=/blob/data bs=1M count=${mb} 2>/dev/null'`);
    const [snap] = await backup(target(p));
    put(`physical ${mb} capture`, snap!.seconds);
    put(`physical ${mb} stopped`, snap!.stoppedSeconds ?? 0);
    const t0 = performance.now();
    await restoreSnapshot({ ...target(p), snapshot: snap!.id });
    put(`physical ${mb} restore`, seconds(t0));
    process.stderr.write(`physical ${mb} MB run ${i + 1}/${RUNS}: capture ${snap!.seconds}s (stopped ${snap!.stoppedSeconds}s), restore ${seconds(t0).toFixed(2)}s\n`);
  }
  freshProject(p);
}

// --- logical: a PostgreSQL table of ~100 MB and ~1 GB ---------------------------
const LOGICAL = '{ capture: logical, dump: "pg_dump --clean --if-exists -U postgres gold", restore: "psql -q -U postgres -d gold", volumes: [blob] }';
for (const mb of [100, 1024]) {
  const p = `bench-dump${mb}`;
  freshProject(p);
  await deployIt(p, stack("pg", LOGICAL));
  // rows of ~1 KB of text that does not compress much (md5s), `mb` MB in all
  sh(`docker exec ${p}-db-1 psql -q -U postgres -d gold -c "create table t as select g as id, (select string_agg(md5((g * 31 + k)::text), '') from generate_series(1, 32) k) as body from generate_series(1, ${mb * 1000}) g"`);
  const size = sh(`docker exec ${p}-db-1 psql -U postgres -d gold -tAc "select pg_total_relation_size('t') / 1048576"`).trim();
  for (let i = 0; i < RUNS; i++) {
    sh(`docker exec ${p}-db-1 psql -q -U postgres -d gold -c "update t set id = id where id % 97 = ${i}"`);
    const [snap] = await backup(target(p));
    put(`logical ${mb} capture`, snap!.seconds);
    const t0 = performance.now();
    await restoreSnapshot({ ...target(p), snapshot: snap!.id });
    put(`logical ${mb} restore`, seconds(t0));
    process.stderr.write(`logical ~${mb} MB (table ${size} MiB) run ${i + 1}/${RUNS}: capture ${snap!.seconds}s, restore ${seconds(t0).toFixed(2)}s\n`);
  }
  put(`logical ${mb} table MiB`, Number(size));
  freshProject(p);
}

// --- deploy: with and without a data declaration, same release with a job --------
for (const [label, data] of [["with data", "{ volumes: [blob] }"], ["without data", undefined]] as const) {
  const p = label === "with data" ? "bench-dwith" : "bench-dwithout";
  freshProject(p);
  await deployIt(p, stack("store", data, true));
  sh(`docker exec ${p}-store-1 sh -c 'dd if=/dev/urandom of=/blob/data bs=1M count=100 2>/dev/null'`);
  for (let i = 0; i <= RUNS; i++) {
    const t0 = performance.now();
    const r = await deployIt(p, stack("store", data, true));
    if (i === 0) continue;
    put(`deploy ${label}`, seconds(t0));
    put(`deploy ${label} snapshot step`, r.durations.snapshot ?? 0);
  }
  freshProject(p);
}

const m = (k: string) => median(results[k] ?? [NaN]);
const f = (k: string) => `${m(k).toFixed(2)} s`;
const text = `# Bench ${new Date().toISOString().slice(0, 10)}: data snapshots

Machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), the test bed (restic 0.14 and PostgreSQL 15 from Debian, the repository on the VPS's disk). Medians of ${RUNS}.

| | capture | restore | the service stopped for |
|---|---|---|---|
| physical, 100 MB volume (random bytes) | ${f("physical 100 capture")} | ${f("physical 100 restore")} | ${f("physical 100 stopped")} |
| physical, 1 GB volume | ${f("physical 1024 capture")} | ${f("physical 1024 restore")} | ${f("physical 1024 stopped")} |
| logical (pg_dump / psql), table of ${m("logical 100 table MiB")} MiB | ${f("logical 100 capture")} | ${f("logical 100 restore")} | 0 (runs throughout) |
| logical, table of ${m("logical 1024 table MiB")} MiB | ${f("logical 1024 capture")} | ${f("logical 1024 restore")} | 0 |

| deploy of a release with a job (100 MB of data) | median | its snapshot step |
|---|---|---|
| with \`data\` declared | ${f("deploy with data")} | ${f("deploy with data snapshot step")} |
| without | ${f("deploy without data")} | ${f("deploy without data snapshot step")} (no step runs) |

Physical captures stop the service for the copy (and restic's start in a container); restores empty
the volume first. A logical dump of a table of a given size writes text larger than the table.
`;
console.log(text);
const out = `${root}bench/${new Date().toISOString().slice(0, 10)}-data.md`;
writeFileSync(out, text);
console.log(`written to ${out}`);
