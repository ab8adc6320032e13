/**
 * Time to restore a lost server, on the test bed: a project with a PostgreSQL database of ~1 GiB and a
 * volume of 1 GiB (random bytes), backed up off-site (SFTP, then S3); then the server wiped of it (no
 * container, no volume, no folder, its images removed: `restore --rebuild` pulls them) and rebuilt from the
 * off-site copy until the database answers with the rows of the backup and the volume holds the same bytes.
 * Prints the time and the bytes moved, and writes them to bench/<date>-restore.md. Not a user's network:
 * the off-site host is on this machine (its disk and CPU are the limit, not a link).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { root, startTestbed } from "./common.js";

startTestbed();
const { deploy } = await import("../../.dagger/src/remote/deploy.js");
const { backup } = await import("../../.dagger/src/remote/data/data.js");
const { rebuild } = await import("../../.dagger/src/remote/data/rebuild.js");
const { bed, deployRequest, freshProject, registryPassword, sh, sshOptions, testEdge } =
  await import("../testbed/bed.js");

const P = "bench-ttr";
const PASSWORD = `bench-${Date.now()}-${Math.random().toString(36).slice(2)}`;
const MIB = 1024;
const PG = `${bed.registry.prefix}/postgres@${bed.images["postgres:15"]}`;
const API = `${bed.registry.prefix}/api@${bed.images["api:v1"]}`;
const seconds = (t0: number) => (performance.now() - t0) / 1000;
const log = (l: string) => process.stderr.write(`${l}\n`);

const offsites = {
  sftp: {
    kind: "sftp" as const,
    repository: `sftp:${bed.offsite.user}@${bed.offsite.host}:/home/${bed.offsite.user}/restic/${P}`,
    sshKey: readFileSync(bed.offsite.keyFile, "utf8"),
    knownHosts: `${bed.offsite.host} ${readFileSync(bed.offsite.hostKeyFile, "utf8").trim().split(/\s+/).slice(0, 2).join(" ")}`,
  },
  s3: {
    kind: "s3" as const,
    repository: `s3:${bed.offsite.s3.endpoint}/bench-ttr-${Date.now()}/gold`,
    credentials: {
      accessKeyId: readFileSync(bed.offsite.s3.accessFile, "utf8").trim(),
      secretAccessKey: readFileSync(bed.offsite.s3.secretFile, "utf8").trim(),
    },
    ca: readFileSync(bed.offsite.s3.caFile, "utf8"),
  },
};
const where = {
  sftp: `/home/${bed.offsite.user}/restic/${P}`,
  s3: `${bed.offsite.s3.dataDir}/${offsites.s3.repository.split("/").at(-2)}`,
};

const compose = `services:
  db:
    image: ${PG}
    volumes: ["dbdata:/var/lib/postgresql/data"]
    healthcheck: { test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-d", "gold"], interval: 1s, retries: 120 }
    x-vps-pipeline:
      data: { volumes: [dbdata] }
  store:
    image: ${API}
    init: true
    entrypoint: ["sleep", "1000000"]
    volumes: ["blob:/blob"]
    x-vps-pipeline:
      data: { volumes: [blob] }
volumes:
  dbdata: {}
  blob: {}
`;

const rows = () =>
  sh(`docker exec ${P}-db-1 psql -U postgres -d gold -tAc "select count(*) || ' ' || sum(length(body)) from t"`).trim();
const blobSum = () => sh(`docker exec ${P}-store-1 sha256sum /blob/data`).split(" ")[0];
const du = (dir: string) => Number(sh(`du -sb ${dir} | cut -f1`));
const volumeBytes = (v: string) => du(sh(`docker volume inspect --format '{{.Mountpoint}}' ${v}`).trim());

const results: { kind: string; seconds: number; repoBytes: number; dataMiB: number; backupSeconds: number }[] = [];
for (const kind of ["sftp", "s3"] as const) {
  const b = { password: PASSWORD, image: "vps-testbed/restic:0.14", keep: 3, keepDays: 0, offsite: offsites[kind] };
  const target = {
    ssh: sshOptions(),
    dir: `production/${P}`,
    project: P,
    lockTimeoutSeconds: 60,
    healthTimeoutSeconds: 300,
    edge: testEdge,
    backup: b,
    by: "bench",
    log: () => {},
  };
  freshProject(P);
  sh(`rm -rf ${where.sftp}`);
  await deploy(deployRequest(P, 0, { compose, env: "X=1\n", backup: b, healthTimeoutSeconds: 300, by: "bench" }));
  // ~1 KB rows of md5 text (little to compress), ~1 GiB of table; 1 GiB of random bytes in the volume
  sh(
    `docker exec ${P}-db-1 psql -q -U postgres -d gold -c "create table t as select g as id, (select string_agg(md5((g * 31 + k)::text), '') from generate_series(1, 32) k) as body from generate_series(1, ${MIB * 1000}) g"`,
  );
  sh(`docker exec ${P}-store-1 sh -c 'dd if=/dev/urandom of=/blob/data bs=1M count=${MIB} 2>/dev/null'`);
  const dataMiB = Math.round(
    (volumeBytes(`${P}_dbdata`) + volumeBytes(`${P}_blob`)) / 1048576,
  );
  const want = { rows: rows(), blob: blobSum() };
  let t0 = performance.now();
  await backup(target);
  const backupSeconds = seconds(t0);
  const repoBytes = du(where[kind]);
  log(`${kind}: ${dataMiB} MiB of data backed up and copied off-site in ${backupSeconds.toFixed(1)} s`);

  // the server is lost: nothing of the project is left, its images neither
  freshProject(P);
  sh(`docker rmi ${PG} ${API} > /dev/null 2>&1 || true`);
  t0 = performance.now();
  await rebuild({
    ...target,
    registry: { host: bed.registry.host, user: bed.registry.user, token: registryPassword },
  });
  const answered = rows();
  const took = seconds(t0);
  const got = { rows: answered, blob: blobSum() };
  if (got.rows !== want.rows || got.blob !== want.blob)
    throw new Error(`${kind}: rebuilt, but the data differs: ${JSON.stringify({ want, got })}`);
  log(`${kind}: rebuilt and answering with the backup's rows in ${took.toFixed(1)} s (${(repoBytes / 1048576).toFixed(0)} MiB off-site)`);
  results.push({ kind, seconds: took, repoBytes, dataMiB, backupSeconds });
}
freshProject(P);
sh(`rm -rf ${where.sftp} ${where.s3}`);

const text = `# Bench ${new Date().toISOString().slice(0, 10)}: time to restore a lost server

Machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), the test bed (restic 0.14 and PostgreSQL 15 from
Debian; the off-site host on this machine). A project with a PostgreSQL table of ~1 GiB and a volume of 1 GiB of
random bytes, backed up off-site; then its containers, volumes, folder and images removed, and \`restore --rebuild\`
until the database answers with the backup's rows and the volume holds the same bytes. One run each.

| off-site | data | backup and copy | bytes off-site | rebuild until it answers |
|---|---|---|---|---|
${results.map((r) => `| ${r.kind} | ${r.dataMiB} MiB | ${r.backupSeconds.toFixed(1)} s | ${(r.repoBytes / 1048576).toFixed(0)} MiB | ${r.seconds.toFixed(1)} s |`).join("\n")}
`;
console.log(text);
const out = `${root}bench/${new Date().toISOString().slice(0, 10)}-restore.md`;
writeFileSync(out, text);
console.log(`written to ${out}`);
