/**
 * Data you can roll back, on the test bed's real PostgreSQL (Debian's package)
 * and restic (Debian's): a snapshot before every release's jobs, the automatic
 * rollback of a failed deploy with and without putting the data back, a manual
 * `rollback --restore-data` across two releases, logical dumps, `backup` and
 * `restore`, a capture that fails, a wrong repository password.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseComposeStack, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import { deploy, type DeployRequest } from "../../.dagger/src/remote/deploy.js";
import { backup, restoreSnapshot } from "../../.dagger/src/remote/data/data.js";
import { rebuild } from "../../.dagger/src/remote/data/rebuild.js";
import { checkBackup } from "../../.dagger/src/remote/data/backup-check.js";
import { rollback } from "../../.dagger/src/remote/rollback.js";
import { status } from "../../.dagger/src/remote/verify.js";
import { auditSecrets } from "../testbed/audit.js";
import {
  bed,
  captureLog,
  deployRequest,
  freshProject,
  history,
  registryPassword,
  sh,
  sshOptions,
  testEdge,
  webStatus,
} from "../testbed/bed.js";
import { dataStack } from "../testbed/data-stack.js";

/** Made here, at test time: no real credential anywhere. */
const BACKUP_PASSWORD = `restic-${Math.random().toString(36).slice(2)}-${Date.now()}`;
const backupOptions = { password: BACKUP_PASSWORD, image: "vps-testbed/restic:0.14", keep: 10, keepDays: 0 };
const offsiteKey = readFileSync(bed.offsite.keyFile, "utf8");
/** The deploy user's home on the VPS these scenarios use (the second one: vitest.config.ts). */
const HOME = bed.vps.home;
/** A line from the middle of the off-site SSH key: in no file, process or output either. */
const offsiteKeyBody = offsiteKey.split("\n")[2]!;
/** The S3 storage's secret key: made by up.sh at test time, in no output, process or file left behind either. */
const s3Secret = () => readFileSync(bed.offsite.s3.secretFile, "utf8").trim();
// once around the file: its scenarios run concurrently, each on a project of its own
auditSecrets(() => [registryPassword, BACKUP_PASSWORD, offsiteKeyBody, s3Secret()], "file");

const PROJECTS = [
  "data-phys",
  "data-keep",
  "data-two",
  "data-dump",
  "data-fail",
  "data-off",
  "data-new",
  "data-check",
  "data-safe",
  "data-pair",
  "data-drop",
  "data-keep1",
  "data-exact",
  "data-dirs",
  "data-s3",
];
// restic's image exists only on this machine; up.sh keeps it from `docker image prune -a` with a stopped container
beforeAll(() => expect(sh(`docker image inspect --format ok ${backupOptions.image}`).trim()).toBe("ok"));
afterAll(() => PROJECTS.forEach(freshProject));

/**
 * The scenarios of a group run at once, each on its own project (and off-site repository): most of a scenario is
 * waiting on PostgreSQL, restic and health checks. Their time limit is for all of them sharing two cores.
 */
const CONCURRENT = { timeout: 480_000 };

const PHYSICAL_RESTORE = "{ volumes: [dbdata], on-failed-deploy: restore }";
const PHYSICAL = "{ volumes: [dbdata] }";
// the README's exact pair: the restore starts from an empty database, so nothing the dump lacks survives it
const EXACT = {
  dump: "pg_dump -U postgres gold",
  restore:
    "dropdb -U postgres --force --if-exists gold && createdb -U postgres gold && psql -q -v ON_ERROR_STOP=1 -U postgres -d gold",
};
const LOGICAL = `{ capture: logical, dump: "${EXACT.dump}", restore: "${EXACT.restore}", volumes: [dbdata] }`;
const LOGICAL_RESTORE = `{ capture: logical, dump: "${EXACT.dump}", restore: "${EXACT.restore}", volumes: [dbdata], on-failed-deploy: restore }`;

const request = (project: string, compose: string, over: Partial<DeployRequest> = {}): DeployRequest =>
  deployRequest(project, 0, {
    compose,
    env: "GOLD_API_KEY=not-a-real-key\n",
    healthTimeoutSeconds: 20,
    backup: backupOptions,
    ...over,
  });
const target = (project: string) => ({
  ssh: sshOptions(),
  dir: `production/${project}`,
  project,
  lockTimeoutSeconds: 30,
  healthTimeoutSeconds: 30,
  edge: testEdge,
  backup: backupOptions,
  by: "vitest",
  log: captureLog().log,
});
/** `rows|has eur` of the prices table. */
const prices = (project: string) =>
  sh(
    `docker exec ${project}-db-1 psql -U postgres -d gold -tAc "select (select count(*) from prices) || '|' || (select count(*) from information_schema.columns where table_name = 'prices' and column_name = 'eur')"`,
  ).trim();

describe.concurrent("a snapshot before every release's jobs", CONCURRENT, () => {
  it("a failed deploy whose migration changed the schema rolls back with the data when the declaration asks for it", async () => {
    freshProject("data-phys");
    await deploy(request("data-phys", dataStack("v1", PHYSICAL_RESTORE)));
    expect(prices("data-phys")).toBe("1|0");
    const log = captureLog();
    const err = await deploy(request("data-phys", dataStack("v2", PHYSICAL_RESTORE, "v3"), { log: log.log })).catch(
      (e: unknown) => e,
    );
    expect(err, log.lines.join("\n")).toMatchObject({ code: "DEPLOY_ROLLED_BACK" });
    expect(prices("data-phys"), log.lines.join("\n")).toBe("1|0");
    const last = history("data-phys").at(-1)!;
    expect(last).toMatchObject({
      result: "rolled-back",
      rollbackHealthy: true,
      snapshots: [expect.stringMatching(/^db:[0-9a-f]{12}$/)],
      restored: [expect.stringMatching(/^db:[0-9a-f]{12}$/)],
    });
    expect(last.restored).toEqual(last.snapshots);
    expect(log.lines.join("\n")).toMatch(/keep-snapshots .*db:[0-9a-f]{12}/);
    const st = await status(target("data-phys"));
    expect(st.snapshots).toEqual([
      expect.objectContaining({
        service: "db",
        capture: "physical",
        before: last.release,
        bytes: expect.any(Number),
        stoppedSeconds: expect.any(Number),
      }),
    ]);
  });

  it("without it, the rollback says plainly that the data moved on", async () => {
    freshProject("data-keep");
    await deploy(request("data-keep", dataStack("v1", PHYSICAL)));
    const log = captureLog();
    const err = await deploy(request("data-keep", dataStack("v2", PHYSICAL, "v3"), { log: log.log })).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "DEPLOY_ROLLED_BACK" });
    expect(prices("data-keep")).toBe("2|1");
    expect(log.lines.join("\n")).toMatch(
      /the data of db keeps what \S+'s jobs \(migrate\) did to it; `restore --snapshot=[0-9a-f]{8,12}` puts back/,
    );
    expect(history("data-keep").at(-1)!.restored).toBeUndefined();
  });

  it("rollback --restore-data across two releases puts the code and the data back as they were; without the flag only the code", async () => {
    freshProject("data-two");
    const r1 = await deploy(request("data-two", dataStack("v1", PHYSICAL)));
    const r2 = await deploy(request("data-two", dataStack("v2", PHYSICAL)));
    await deploy(request("data-two", dataStack("v3", PHYSICAL)));
    expect(prices("data-two")).toBe("3|1");
    // without the flag: the code of r2, the data as it is, said plainly
    const codeOnly = captureLog();
    await rollback({ ...target("data-two"), to: r2.release, log: codeOnly.log });
    expect(prices("data-two")).toBe("3|1");
    expect(codeOnly.lines.join("\n")).toMatch(
      new RegExp(`the data has moved on since ${r2.release}: .*this rollback returns the code only`),
    );
    const log = captureLog();
    const back = await rollback({ ...target("data-two"), to: r1.release, restoreData: true, log: log.log });
    expect(back.release).toBe(r1.release);
    expect(prices("data-two")).toBe("1|0");
    expect(log.lines.join("\n")).toMatch(/db:[0-9a-f]{12} restored \(as while \S+ was current\)/);
    expect(history("data-two").at(-1)).toMatchObject({
      action: "rollback",
      release: r1.release,
      restored: [expect.stringMatching(/^db:/)],
    });
  });
});

describe.concurrent("logical dumps, backup and restore", CONCURRENT, () => {
  it("a logical rollback after a migration that created a table: the table is gone, rows and schema as before", async () => {
    freshProject("data-exact");
    await deploy(request("data-exact", dataStack("v1", LOGICAL_RESTORE)));
    const err = await deploy(request("data-exact", dataStack("v2t", LOGICAL_RESTORE, "v3"))).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "DEPLOY_ROLLED_BACK" });
    expect(prices("data-exact")).toBe("1|0");
    expect(
      sh(
        `docker exec data-exact-db-1 psql -U postgres -d gold -tAc "select count(*) from information_schema.tables where table_name = 'audit'"`,
      ).trim(),
    ).toBe("0");
  });

  it("a dump taken with backup is put back with restore, the service running throughout", async () => {
    freshProject("data-dump");
    await deploy(request("data-dump", dataStack("v1", LOGICAL)));
    const [snap] = await backup({ ...target("data-dump") });
    expect(snap).toMatchObject({ service: "db", capture: "logical", before: "manual" });
    expect(snap!.stoppedSeconds).toBeUndefined();
    sh(
      `docker exec data-dump-db-1 psql -U postgres -d gold -qc "delete from prices; alter table prices add column junk int"`,
    );
    expect(prices("data-dump")).toBe("0|0");
    const done = await restoreSnapshot({ ...target("data-dump"), snapshot: snap!.id.slice(0, 8) });
    expect(snap!.id).toMatch(/^[0-9a-f]{64}$/);
    expect(done).toEqual([`db:${snap!.id.slice(0, 12)}`]);
    expect(prices("data-dump")).toBe("1|0");
    // a dump is checked by feeding it to a scratch copy's restore command (no check declared: a restore that works is
    // the check)
    expect(await checkBackup({ ...target("data-dump") })).toEqual([
      expect.objectContaining({
        id: snap!.id,
        result: expect.stringMatching(/no check command declared/),
        roundTrip: expect.stringMatching(/^restored twice, it dumps as the snapshot \(\d+ bytes\)$/),
      }),
    ]);
    expect(
      sh(
        `docker exec data-dump-db-1 psql -U postgres -d gold -tAc "select count(*) from information_schema.columns where column_name = 'junk'"`,
      ).trim(),
    ).toBe("0");

    // a restore that feeds the dump into the database as it is: check-backup says it is not exact
    const merging = `{ capture: logical, dump: "${EXACT.dump}", restore: "psql -q -v ON_ERROR_STOP=1 -U postgres -d gold", volumes: [dbdata] }`;
    await deploy(request("data-dump", dataStack("v2", merging)));
    const inexact = await checkBackup({ ...target("data-dump") }).catch((e: unknown) => e);
    expect(inexact).toMatchObject({
      code: "BACKUP_CHECK_FAILED",
      message: expect.stringMatching(/a second time, onto the first failed: .*does not start from an empty database/s),
      hint: expect.stringMatching(/dropdb --force/),
    });
    expect(prices("data-dump")).toBe("2|1");
  });

  it("check-backup restores the newest snapshot into a scratch copy beside the service, with no way out, and runs the data's check there; the service is not touched", async () => {
    freshProject("data-check");
    // the check also tries another machine (the off-site host's S3 port): a scratch copy that can reach out says so
    // instead of the count (the server's own addresses stay reachable: Docker's internal networks stop forwarding)
    const [outHost, outPort] = new URL(bed.offsite.s3.endpoint).host.split(":");
    const count = `check: "timeout 3 bash -c 'exec 3<>/dev/tcp/${outHost}/${outPort}' 2> /dev/null && echo reached-out || psql -U postgres -d gold -tAc 'select count(*) from prices'"`;
    // the database also writes a host folder (a bind) each time it starts: the scratch copy must not write it
    const shared = (t: string) =>
      t.replace(
        '    volumes: ["dbdata:/var/lib/postgresql/data"]',
        '    volumes: ["dbdata:/var/lib/postgresql/data", "./shared:/shared"]\n    entrypoint: ["sh", "-c", "date >> /shared/starts && exec /usr/local/bin/entrypoint.sh"]',
      );
    await deploy(request("data-check", shared(dataStack("v1", `{ volumes: [dbdata], ${count} }`))));
    await deploy(request("data-check", shared(dataStack("v2", `{ volumes: [dbdata], ${count} }`))));
    const starts = () => sh(`cat ${HOME}/production/data-check/shared/starts`);
    const hostFolder = starts();
    expect(hostFolder).not.toBe("");
    const db = sh("docker inspect --format '{{.Id}} {{.State.StartedAt}}' data-check-db-1");
    const left = () =>
      sh(
        `docker ps -aq --filter label=com.docker.compose.project=data-check-backup-check; docker volume ls -q --filter label=com.docker.compose.project=data-check-backup-check; ls ${HOME}/production/data-check/.backups/check 2>/dev/null || true`,
      ).trim();
    // the snapshot taken before v2's migration: v1's one row
    const [checked] = await checkBackup({ ...target("data-check") });
    expect(checked).toMatchObject({ service: "db", result: "1" });
    expect(left()).toBe("");
    expect(starts()).toBe(hostFolder);
    expect(sh("docker inspect --format '{{.Id}} {{.State.StartedAt}}' data-check-db-1")).toBe(db);
    expect(prices("data-check")).toBe("2|1");
    expect((await status(target("data-check"))).snapshots?.find((x) => x.id === checked!.id)?.verified).toMatch(
      /^2\d{3}-/,
    );

    // a check that fails names the snapshot and what the check said; the scratch copy is gone all the same
    await deploy(
      request(
        "data-check",
        dataStack("v3", `{ volumes: [dbdata], check: "psql -U postgres -d gold -tAc 'select * from prices_archive'" }`),
      ),
    );
    const err = await checkBackup({ ...target("data-check") }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "BACKUP_CHECK_FAILED",
      message: expect.stringMatching(/the check command failed: .*prices_archive/s),
    });
    expect(left()).toBe("");
    expect(prices("data-check")).toBe("3|1");
  });

  it("a capture that fails stops the deploy before its jobs run; so do a wrong repository password and a full disk", async () => {
    freshProject("data-fail");
    // the running release's declaration is the one a capture follows: its containers hold the data
    const broken = '{ capture: logical, dump: "echo partial; exit 1", restore: "psql -q -U postgres -d gold" }';
    const first = await deploy(request("data-fail", dataStack("v1", broken)));
    const err = await deploy(request("data-fail", dataStack("v2", LOGICAL))).catch((e: unknown) => e);
    expect(err, String(err)).toMatchObject({ code: "BACKUP_FAILED" });
    expect(String((err as Error).message)).toMatch(/the dump command exited with 1/);
    expect(prices("data-fail")).toBe("1|0");
    expect(sh(`cat ${HOME}/production/data-fail/.releases/current`).trim()).toBe(first.release);

    const wrong = await deploy(
      request("data-fail", dataStack("v2", LOGICAL), { backup: { ...backupOptions, password: "not-the-password" } }),
    ).catch((e: unknown) => e);
    expect(wrong).toMatchObject({ code: "BACKUP_PASSWORD" });
    expect(prices("data-fail")).toBe("1|0");
    expect(sh(`cat ${HOME}/production/data-fail/.releases/current`).trim()).toBe(first.release);

    // a disk with no room: an 8 MiB file system over the repository's folder
    const backups = `${HOME}/production/data-fail/.backups`;
    // mounted where the VPS's sshd sees it: `ip netns exec` gave it a mount namespace of its own
    const inVps = `nsenter --target $(cat ${bed.vps.sshdPidFile}) --mount --`;
    sh(
      `mkdir -p ${backups} && ${inVps} mount -t tmpfs -o size=8m,uid=$(id -u ${bed.vps.user}),gid=$(id -g ${bed.vps.user}),mode=0700 vps-testbed-full ${backups}`,
    );
    try {
      const full = await deploy(request("data-fail", dataStack("v2", LOGICAL))).catch((e: unknown) => e);
      expect(full, String((full as Error).message)).toMatchObject({
        code: "BACKUP_NO_SPACE",
        message: expect.stringMatching(/has \d+ MiB free; nothing was changed/),
      });
    } finally {
      sh(`${inVps} umount ${backups}`);
    }
    expect(prices("data-fail")).toBe("1|0");
    expect(
      history("data-fail")
        .slice(-3)
        .map((h) => h.code),
    ).toEqual(["BACKUP_FAILED", "BACKUP_PASSWORD", "BACKUP_NO_SPACE"]);
  });
});

describe.concurrent("restores that cannot empty a database", CONCURRENT, () => {
  const repo = (project: string) => `${HOME}/production/${project}/.backups/restic`;
  const running = (container: string) =>
    sh(`docker inspect --format '{{.State.Running}}' ${container} 2>/dev/null || echo gone`).trim();
  /** What a volume holds at its root, as the service sees it. */
  const volumeRoot = (volume: string) =>
    sh(`docker run --rm --network none -v ${volume}:/v --entrypoint ls ${backupOptions.image} -a /v`).split("\n");

  /** The data stack with a second physical data service: a folder of files. */
  const files = (t: string) =>
    t.replace(
      "volumes:\n  dbdata: {}",
      `  files:
    image: ${bed.registry.prefix}/api@${bed.images["api:v1"]}
    command: ["sh", "-c", "exec sleep 100000"]
    init: true
    volumes: ["files:/files"]
    x-vps-pipeline:
      data: { volumes: [files] }
volumes:
  dbdata: {}
  files: {}`,
    );

  it("a snapshot the repository lost, or a repository broken mid-way: refused before the service stops, its data as it was", async () => {
    freshProject("data-safe");
    await deploy(request("data-safe", dataStack("v1", PHYSICAL)));
    const [a] = await backup({ ...target("data-safe") });
    sh(`docker exec data-safe-db-1 psql -U postgres -d gold -qc "insert into prices values ('2026-02-01', 1)"`);
    expect(prices("data-safe")).toBe("2|0");
    // what retention forgot: gone from the repository, still in the records
    sh(`rm ${repo("data-safe")}/snapshots/${a!.id}`);
    const lost = await restoreSnapshot({ ...target("data-safe"), snapshot: a!.id.slice(0, 8) }).catch(
      (e: unknown) => e,
    );
    expect(lost).toMatchObject({ code: "RESTORE_FAILED" });
    expect((lost as Error).message).toMatch(
      /is not in the repository.*every service holds the data it held, and runs/s,
    );
    expect([prices("data-safe"), running("data-safe-db-1")]).toEqual(["2|0", "true"]);
    // the snapshot reads, the rest does not (its index and packs zeroes, as a failing disk returns them): restic
    // fails once it has started, into the stage only
    const [b] = await backup({ ...target("data-safe") });
    sh(
      `for f in ${repo("data-safe")}/index/* ${repo("data-safe")}/data/*/*; do n=$(stat -c %s "$f"); truncate -s 0 "$f"; truncate -s "$n" "$f"; done`,
    );
    const broken = await restoreSnapshot({ ...target("data-safe"), snapshot: b!.id.slice(0, 8) }).catch(
      (e: unknown) => e,
    );
    expect(broken).toMatchObject({ code: "RESTORE_FAILED" });
    expect([prices("data-safe"), running("data-safe-db-1")]).toEqual(["2|0", "true"]);
    expect(volumeRoot("data-safe_dbdata")).not.toContain(".vps-pipeline-restore");
    expect(volumeRoot("data-safe_dbdata")).toContain("PG_VERSION");
  });

  it("rollback --restore-data of two services where the second's snapshot is gone: both on the data they had, running", async () => {
    freshProject("data-pair");
    const r1 = await deploy(request("data-pair", files(dataStack("v1", PHYSICAL))));
    sh("docker exec data-pair-files-1 sh -c 'echo one > /files/a'");
    await deploy(request("data-pair", files(dataStack("v2", PHYSICAL))));
    sh("docker exec data-pair-files-1 sh -c 'echo two > /files/a'");
    expect(prices("data-pair")).toBe("2|1");
    const snaps = (await status(target("data-pair"))).snapshots ?? [];
    const ofFiles = snaps.find((x) => x.service === "files" && x.release === r1.release)!;
    sh(`rm ${repo("data-pair")}/snapshots/${ofFiles.id}`);
    const err = await rollback({ ...target("data-pair"), to: r1.release, restoreData: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "RESTORE_FAILED" });
    expect(prices("data-pair")).toBe("2|1");
    expect(sh("docker exec data-pair-files-1 cat /files/a").trim()).toBe("two");
    expect([running("data-pair-db-1"), running("data-pair-files-1")]).toEqual(["true", "true"]);
  });

  // (two backups at --keep-snapshots=1 push out what ten do at the default 10: the rule is the same, CI is not)
  it("retention: --keep-snapshots=1 keeps one of each of two services; backups later rollback --restore-data still has its data", async () => {
    freshProject("data-keep1");
    const keepOne = { ...backupOptions, keep: 1 };
    const r1 = await deploy(request("data-keep1", files(dataStack("v1", PHYSICAL)), { backup: keepOne }));
    await deploy(request("data-keep1", files(dataStack("v2", PHYSICAL)), { backup: keepOne }));
    for (let i = 0; i < 2; i++) await backup({ ...target("data-keep1"), backup: keepOne });
    const snaps = (await status(target("data-keep1"))).snapshots ?? [];
    const of = (service: string) => snaps.filter((x) => x.service === service).map((x) => x.release);
    // each service: its newest, and the one taken while r1 was current (r1 is still on the server)
    expect([of("db").length, of("files").length]).toEqual([2, 2]);
    expect([of("db").includes(r1.release), of("files").includes(r1.release)]).toEqual([true, true]);
    await rollback({ ...target("data-keep1"), backup: keepOne, to: r1.release, restoreData: true });
    expect(prices("data-keep1")).toBe("1|0");
  });

  it("a rebuild beside the project deployed with another --dir: refused by what runs, nothing touched", async () => {
    freshProject("data-dirs");
    await deploy(request("data-dirs", dataStack("v1", PHYSICAL)));
    await backup({ ...target("data-dirs") });
    const err = await rebuild({ ...target("data-dirs"), dir: "production/data-dirs-elsewhere" }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: "INVALID_INPUT",
      message: expect.stringMatching(/container\(s\) or volume\(s\) on this server/),
    });
    expect([prices("data-dirs"), running("data-dirs-db-1")]).toEqual(["1|0", "true"]);
    expect(sh(`test -e ${HOME}/production/data-dirs-elsewhere && echo made || true`).trim()).toBe("");
  });

  it("the SSH connection dropped while the data is swapped in: the service runs again afterwards, on the restored data", async () => {
    freshProject("data-drop");
    await deploy(request("data-drop", dataStack("v1", PHYSICAL)));
    const [a] = await backup({ ...target("data-drop") });
    sh(`docker exec data-drop-db-1 psql -U postgres -d gold -qc "insert into prices values ('2026-02-01', 1)"`);
    const restoring = restoreSnapshot({ ...target("data-drop"), snapshot: a!.id.slice(0, 8) }).catch((e: unknown) => e);
    // the swap's script on the server: once it has stopped the service, its SSH session (sshd's process) is killed
    let killed = "";
    for (let i = 0; i < 600 && !killed; i++) {
      const pid = sh("pgrep -o -f 'swap_in=.* data-drop_dbdata' || true").trim();
      if (pid && running("data-drop-db-1") === "false") {
        // up from the script to the sshd process serving its session (a login shell may sit between)
        let session = sh(`ps -o ppid= -p ${pid}`).trim();
        while (!/^sshd/.test(sh(`ps -o comm= -p ${session}`).trim()) && Number(session) > 1)
          session = sh(`ps -o ppid= -p ${session}`).trim();
        killed = sh(`ps -o comm= -p ${session}`).trim();
        sh(`kill -KILL ${session}`);
      } else await new Promise((r) => setTimeout(r, 50));
    }
    expect(killed).toMatch(/^sshd/);
    expect(await restoring).toBeInstanceOf(Error);
    let state = running("data-drop-db-1");
    for (let i = 0; i < 120 && state !== "true"; i++) {
      await new Promise((r) => setTimeout(r, 250));
      state = running("data-drop-db-1");
    }
    expect(state).toBe("true");
    let rows = "";
    for (let i = 0; i < 60 && rows !== "1|0"; i++) {
      rows = sh(
        `docker exec data-drop-db-1 psql -U postgres -d gold -tAc "select count(*) || '|0' from prices" 2>/dev/null || true`,
      ).trim();
      if (rows !== "1|0") await new Promise((r) => setTimeout(r, 250));
    }
    expect(rows).toBe("1|0");
  });
});

describe.concurrent("off the VPS", CONCURRENT, () => {
  const offsite = (over: Partial<{ hostKey: string; project: string }> = {}) => ({
    kind: "sftp" as const,
    repository: `sftp:${bed.offsite.user}@${bed.offsite.host}:/home/${bed.offsite.user}/restic/${over.project ?? "data-off"}`,
    sshKey: offsiteKey,
    knownHosts: `${bed.offsite.host} ${over.hostKey ?? readFileSync(bed.offsite.hostKeyFile, "utf8").trim().split(/\s+/).slice(0, 2).join(" ")}`,
  });
  /** Snapshots in the off-site repository: two per capture (the data, and the record of its release). */
  const snapshotsOffsite = () =>
    sh(`ls /home/${bed.offsite.user}/restic/data-off/snapshots 2>/dev/null | wc -l`).trim();

  it("S3: every snapshot copied to S3 storage over TLS and kept there by its own retention; a wrong secret is a coded error that makes nothing; a new server rebuilt from there", async () => {
    freshProject("data-s3");
    const s3 = bed.offsite.s3;
    const bucket = `data-s3-${Date.now()}`;
    // off-site retention of its own: the newest per service, and what a kept release needs
    const inS3 = (secret = s3Secret()) => ({
      ...backupOptions,
      offsiteKeep: 1,
      offsite: {
        kind: "s3" as const,
        repository: `s3:${s3.endpoint}/${bucket}/gold`,
        credentials: { accessKeyId: readFileSync(s3.accessFile, "utf8").trim(), secretAccessKey: secret },
        ca: readFileSync(s3.caFile, "utf8"),
      },
    });
    const objects = () => sh(`ls ${s3.dataDir}/${bucket}/gold/snapshots 2>/dev/null | wc -l`).trim();
    await deploy(request("data-s3", dataStack("v1", PHYSICAL), { backup: inS3() }));
    const log = captureLog();
    await deploy(request("data-s3", dataStack("v2", PHYSICAL), { backup: inS3(), log: log.log }));
    expect(log.lines.join("\n")).toMatch(/keep-snapshots .* kept here and off-site/);
    expect(objects()).toBe("2");
    sh(`docker exec data-s3-db-1 psql -U postgres -d gold -qc "insert into prices values ('2026-02-01', 2500, 2300)"`);
    await backup({ ...target("data-s3"), backup: inS3() });
    expect(objects()).toBe("4");
    // a second manual backup: the VPS keeps its three of db (--keep-snapshots 10) and a record per release; off-site
    // (1), the first manual one goes too (r2's newest is the new one), the one taken while r1 was current stays (r1
    // is still on the server)
    const localSnapshots = () => sh(`ls ${HOME}/production/data-s3/.backups/restic/snapshots | wc -l`).trim();
    const [newest] = await backup({ ...target("data-s3"), backup: inS3() });
    expect(newest).toMatchObject({ offsite: true });
    expect([localSnapshots(), objects()]).toEqual(["5", "4"]);
    const rows = sh(`docker exec data-s3-db-1 psql -U postgres -d gold -tAc "select * from prices order by day"`);
    // a wrong secret: the storage refuses it, the copy fails with the reason, nothing more is there
    const wrong = await backup({ ...target("data-s3"), backup: inS3("not-the-secret") }).catch((e: unknown) => e);
    expect(wrong).toMatchObject({
      code: "BACKUP_FAILED",
      message: expect.stringMatching(/copying it off-site failed: /),
    });
    expect(objects()).toBe("4");

    // the VPS is gone; a rebuild with a wrong secret makes nothing, with the right one brings the rows back
    freshProject("data-s3");
    const registry = { host: bed.registry.host, user: bed.registry.user, token: registryPassword };
    const refused = await rebuild({ ...target("data-s3"), backup: inS3("not-the-secret"), registry }).catch(
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({ code: "RESTORE_FAILED", message: expect.stringMatching(/nothing was changed/) });
    expect(sh("docker ps -aq --filter label=com.docker.compose.project=data-s3").trim()).toBe("");
    expect(sh(`ls -A ${HOME}/production/data-s3/.backups/restic 2>/dev/null || true`).trim()).toBe("");
    const back = await rebuild({ ...target("data-s3"), backup: inS3(), registry });
    expect(back.restored).toEqual([expect.stringMatching(/^db:/)]);
    expect(sh(`docker exec data-s3-db-1 psql -U postgres -d gold -tAc "select * from prices order by day"`)).toBe(rows);
  });

  it("every snapshot is copied to the off-site host over SFTP; a host whose key is not the pinned one gets nothing", async () => {
    freshProject("data-off");
    sh(`rm -rf /home/${bed.offsite.user}/restic/data-off`);
    const withOffsite = { ...backupOptions, offsite: offsite() };
    await deploy(request("data-off", dataStack("v1", LOGICAL), { backup: withOffsite }));
    const log = captureLog();
    await deploy(request("data-off", dataStack("v2", LOGICAL), { backup: withOffsite, log: log.log }));
    expect(snapshotsOffsite(), log.lines.join("\n")).toBe("2");
    const [manual] = await backup({ ...target("data-off"), backup: withOffsite });
    expect(manual).toMatchObject({ offsite: true });
    expect(snapshotsOffsite()).toBe("4");
    expect((await status(target("data-off"))).snapshots?.every((x) => x.offsite)).toBe(true);

    // another host answering at that address: refused before any data leaves
    const stranger = readFileSync(bed.vps.hostKeyFile, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
    const err = await backup({
      ...target("data-off"),
      backup: { ...backupOptions, offsite: offsite({ hostKey: stranger }) },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "BACKUP_FAILED",
      message: expect.stringMatching(/^the snapshot is on the VPS, but copying it off-site failed: /),
    });
    expect(snapshotsOffsite()).toBe("4");
    // in a deploy, the same failure is a note: the snapshot is on the VPS, the deploy goes on
    const noted = captureLog();
    await deploy(
      request("data-off", dataStack("v3", LOGICAL), {
        backup: { ...backupOptions, offsite: offsite({ hostKey: stranger }) },
        log: noted.log,
      }),
    );
    expect(noted.lines.join("\n")).toMatch(/the snapshot is on the VPS only: copying it off-site failed/);
    expect(prices("data-off")).toBe("3|1");
  });

  it("a new server: the project rebuilt from the off-site backup serves the rows of the last backup; a wrong password changes nothing", async () => {
    freshProject("data-new");
    sh(`rm -rf /home/${bed.offsite.user}/restic/data-new`);
    const withOffsite = { ...backupOptions, offsite: offsite({ project: "data-new" }) };
    // the api behind the shared edge: the rebuild must bring its route back too
    const edged = (t: string) =>
      renderRelease(
        parseComposeStack(
          t.replace(
            "  api:\n",
            '  api:\n    ports: ["18245:8000"]\n    x-vps-pipeline: { http: { port: 8000, health: /health } }\n',
          ),
          "compose.yml",
        ),
        {},
      );
    await deploy(request("data-new", edged(dataStack("v1", PHYSICAL)), { backup: withOffsite }));
    const v2 = await deploy(request("data-new", edged(dataStack("v2", PHYSICAL)), { backup: withOffsite }));
    expect((await webStatus(18245, "/health")).status).toBe(200);
    sh(`docker exec data-new-db-1 psql -U postgres -d gold -qc "insert into prices values ('2026-02-01', 2500, 2300)"`);
    await backup({ ...target("data-new"), backup: withOffsite });
    expect(prices("data-new")).toBe("3|1");
    const before = sh(`docker exec data-new-db-1 psql -U postgres -d gold -tAc "select * from prices order by day"`);

    // the VPS is gone: its containers, volumes and the project's folder with the local repository
    freshProject("data-new");
    const nothing = () =>
      sh(
        `docker ps -aq --filter label=com.docker.compose.project=data-new; docker volume ls -q --filter label=com.docker.compose.project=data-new; ls ${HOME}/production/data-new/.releases 2>/dev/null | grep -v '^\\.lock' || true`,
      ).trim();
    const registry = { host: bed.registry.host, user: bed.registry.user, token: registryPassword };
    expect((await webStatus(18245, "/health")).status).toBe(0);
    const wrong = await rebuild({
      ...target("data-new"),
      backup: { ...withOffsite, password: "not-the-password" },
      registry,
    }).catch((e: unknown) => e);
    expect(wrong).toMatchObject({ code: "BACKUP_PASSWORD" });
    expect(nothing()).toBe("");
    expect(sh(`ls -A ${HOME}/production/data-new/.backups/restic 2>/dev/null || true`).trim()).toBe("");

    const log = captureLog();
    const r = await rebuild({ ...target("data-new"), backup: withOffsite, registry, log: log.log });
    expect(r.release, log.lines.join("\n")).toBe(v2.release);
    expect(r.restored).toEqual([expect.stringMatching(/^db:[0-9a-f]{12}$/)]);
    expect(sh(`docker exec data-new-db-1 psql -U postgres -d gold -tAc "select * from prices order by day"`)).toBe(
      before,
    );
    expect((await webStatus(18245, "/health")).status).toBe(200);
    const st = await status(target("data-new"));
    expect(st.release).toBe(v2.release);
    // the history came with the record: the two deploys, then the rebuild
    expect(history("data-new").map((h) => `${h.action} ${h.result}`)).toEqual(["deploy ok", "deploy ok", "restore ok"]);
    expect(st.snapshots?.length).toBe(2);
    // the repository now on the server is whole, and the next backup goes on from it
    const check = execFileSync(
      "docker",
      [
        "run",
        "--rm",
        "-i",
        "-v",
        `${HOME}/production/data-new/.backups/restic:/repo`,
        "--entrypoint",
        "sh",
        backupOptions.image,
        "-c",
        "IFS= read -r RESTIC_PASSWORD; export RESTIC_PASSWORD; restic --repo /repo --no-cache check > /dev/null && echo checked",
      ],
      { input: `${BACKUP_PASSWORD}\n`, encoding: "utf8" },
    );
    expect(check.trim()).toBe("checked");
    await backup({ ...target("data-new"), backup: withOffsite });

    const again = await rebuild({ ...target("data-new"), backup: withOffsite, registry }).catch((e: unknown) => e);
    expect(again).toMatchObject({
      code: "INVALID_INPUT",
      message: expect.stringContaining(`runs release ${v2.release}`),
    });
  });
});
