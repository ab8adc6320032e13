/**
 * `vps … check-backup`: restic's check of the repository, then each chosen
 * snapshot restored into a scratch copy of its service (core/data/backup-check.ts),
 * started, and put to the data's `check` command; a dump is restored twice and
 * must come back as it was dumped (compareLogical). The real service is never
 * touched; the copy is removed whatever happens. A snapshot that passes is
 * marked `verified` in the records (status shows it).
 */
import { scratchCompose, scratchDir, scratchProject } from "../../core/data/backup-check.js";
import {
  checkRepository,
  compareLogical,
  ROUND_TRIP,
  prepareDataServices,
  removeScratch,
  restoreLogical,
  stagePhysical,
  swapPhysical,
  runCheck,
  snapshotRecords,
} from "../../core/data/data-commands.js";
import { findSnapshot, snapshotsFor, type SnapshotRecord } from "../../core/data/data.js";
import { PipelineError, tail } from "../../core/errors.js";
import type { DataSpec } from "../../core/compose/extension.js";
import { releaseDir } from "../../core/server/server-commands.js";
import { operation } from "../flow.js";
import { currentData, dataError, needBackup, readSnapshots, volumeNames, type BackupRequest } from "./data.js";
import { releaseCompose } from "../releases.js";
import { withLock } from "../session.js";
import type { BackupOptions } from "../remote-target.js";
import type { Context } from "../targets/target.js";

const NOT_EXACT =
  "make the restore start from an empty database (docs/data.md: for PostgreSQL dropdb --force --if-exists … && createdb … && psql -v ON_ERROR_STOP=1 …)";

export interface CheckBackupRequest extends BackupRequest {
  /** The snapshot to check (a prefix of its id); default: the newest of each data service. */
  snapshot?: string;
}

export interface SnapshotCheck {
  service: string;
  id: string;
  /** Restore, start and check, in seconds. */
  seconds: number;
  /** The check command's last lines, or what was checked without one. */
  result: string;
  /** A dump: what restoring it twice and dumping the copy again gave (the snapshot's text or not). */
  roundTrip?: string;
}

export async function checkBackup(req: CheckBackupRequest): Promise<SnapshotCheck[]> {
  return operation(req, "check-backup", undefined, {}, async (c) => {
    const b = needBackup(c);
    return withLock(
      c.s,
      c.l,
      c.p,
      req.lockTimeoutSeconds,
      `${req.by} (check-backup, since ${new Date().toISOString()})`,
      async () => {
        const { id, specs } = await currentData(c);
        const records = await readSnapshots(c.s, c.l);
        const chosen = req.snapshot
          ? findSnapshot(records, req.snapshot)
          : snapshotsFor(
              records,
              undefined,
              specs.map((d) => d.service),
            );
        if (chosen.length === 0)
          throw new PipelineError(
            "INVALID_INPUT",
            `no snapshot of ${specs.map((d) => d.service).join(", ")} to check`,
            "`backup` takes one now",
          );
        await c.step(
          "check",
          async () => {
            const r = await c.s.exec(checkRepository(c.l, b.image, c.project), { stdin: `${b.password}\n` });
            if (r.code === 0) return;
            const err = dataError(r, "the repository", "restore");
            if (err.code === "BACKUP_PASSWORD") throw err;
            throw new PipelineError(
              "BACKUP_CHECK_FAILED",
              `restic finds the repository damaged: ${tail(r.stderr, 4)}`,
              "keep the off-site copy safe; `restic repair` (restic ≥ 0.16) on a copy of the repository, then `backup` to take a sound snapshot",
            );
          },
          () => "restic check: no errors",
        );
        const done: SnapshotCheck[] = [];
        for (const snap of chosen) {
          const spec = specs.find((d) => d.service === snap.service);
          if (!spec)
            throw new PipelineError(
              "INVALID_INPUT",
              `snapshot ${snap.id.slice(0, 12)} is of ${snap.service}, which release ${id} does not declare as data`,
              "check it from a release that declares it",
            );
          done.push(
            await c.step(
              "restore-data",
              () => inScratch(c, b, id, spec, snap),
              (x) =>
                `${x.service}:${x.id.slice(0, 12)} restored into a scratch copy and checked in ${x.seconds}s: ${x.result.split("\n").pop()}${x.roundTrip ? `; ${x.roundTrip}` : ""}`,
            ),
          );
        }
        const at = new Date().toISOString();
        const now = await readSnapshots(c.s, c.l);
        await c.s.upload(
          snapshotRecords(c.l),
          now.map((x) => `${JSON.stringify(done.some((d) => d.id === x.id) ? { ...x, verified: at } : x)}\n`).join(""),
          "600",
        );
        return done;
      },
    );
  });
}

/** One snapshot into a scratch copy of its service (release `release`'s definition), started, checked, removed. */
async function inScratch(
  c: Context,
  b: BackupOptions,
  release: string,
  spec: DataSpec,
  snap: SnapshotRecord,
): Promise<SnapshotCheck> {
  const t0 = performance.now();
  const dir = scratchDir(c.l.dir);
  const p = scratchProject(c.project);
  const where = { dir };
  const run = async (argv: string[], doing: string): Promise<string> => {
    const r = await c.s.exec(argv, { stdin: `${b.password}\n` });
    if (r.code === 0) return r.stdout;
    const err = dataError(r, snap.service, "restore");
    if (err.code === "BACKUP_PASSWORD") throw err;
    throw new PipelineError(
      "BACKUP_CHECK_FAILED",
      `snapshot ${snap.id.slice(0, 12)} of ${snap.service}: ${doing} failed: ${tail(r.stderr || r.stdout, 4) || `exit code ${r.code}`}`,
      `the snapshot may not restore: take a new one (\`backup\`) and keep this one until the cause is known${spec.check ? "; run the check command by hand in the service" : ""}`,
    );
  };
  /** The dump of the twice-restored copy against the snapshot's: a difference is a restore that is not exact. */
  const sameAgain = async (dump: readonly string[]): Promise<string> => {
    const [found, was, now] = (
      await run(compareLogical(c.l, b.image, p, where, spec.service, snap.id, dump), "dumping the restored copy")
    )
      .trim()
      .split(" ");
    if (found === ROUND_TRIP.binary) return "a binary dump, restored twice (its text not compared)";
    if (found === ROUND_TRIP.same) return `restored twice, it dumps as the snapshot (${was} bytes)`;
    throw new PipelineError(
      "BACKUP_CHECK_FAILED",
      `snapshot ${snap.id.slice(0, 12)} of ${snap.service}: restored twice, the copy does not dump as the snapshot (${was} bytes, now ${now}; comment lines aside): the restore command keeps or adds what the dump does not hold, and a rollback would keep what a failed migration made`,
      NOT_EXACT,
    );
  };
  let roundTrip: string | undefined;
  await c.s.exec(removeScratch(dir, p, c.project)); // what a killed check left
  try {
    await c.s.upload(
      `${dir}/docker-compose.yml`,
      scratchCompose(await releaseCompose(c.s, c.l, release), spec, c.project),
      "600",
    );
    await c.s.run(
      ["sh", "-c", '[ ! -f "$1/.env" ] || cp "$1/.env" "$2/.env"', "sh", releaseDir(c.l, release), dir],
      "copying the release's .env for the scratch copy",
    );
    if (snap.capture === "physical") {
      const names = await volumeNames(c.s, c.l, c.project, release);
      await run(
        prepareDataServices(c.l, b.image, p, where, "create", c.healthTimeoutSeconds, [spec.service]),
        "making the scratch copy",
      );
      const volumes = spec.volumes.map((v) => `${p}_${v}=${names[v] ?? `${c.project}_${v}`}`);
      await run(stagePhysical(c.l, b.image, p, spec.service, snap.id, volumes), "restoring the snapshot");
      await run(
        swapPhysical(c.l, b.image, p, where, [spec.service], volumes, false),
        "putting the restored data in place",
      );
      await run(
        prepareDataServices(c.l, b.image, p, where, "run", c.healthTimeoutSeconds, [spec.service]),
        "starting the scratch copy on the restored data",
      );
    } else {
      if (!spec.restore)
        throw new PipelineError(
          "BACKUP_CHECK_FAILED",
          `snapshot ${snap.id.slice(0, 12)} of ${snap.service} is a dump, and the release has no restore command for it`,
          "declare `restore:` in the service's data",
        );
      await run(
        prepareDataServices(c.l, b.image, p, where, "run", c.healthTimeoutSeconds, [spec.service]),
        "starting the scratch copy",
      );
      const restore = spec.restore;
      await run(restoreLogical(c.l, b.image, p, where, spec.service, snap.id, restore), "restoring the dump");
      // once more, onto what the first one made: a rollback restores onto a database that has moved on
      await run(
        restoreLogical(c.l, b.image, p, where, spec.service, snap.id, restore),
        "restoring the dump a second time, onto the first",
      ).catch((e: unknown) => {
        throw e instanceof PipelineError && e.code === "BACKUP_CHECK_FAILED"
          ? new PipelineError(e.code, `${e.message}: the restore does not start from an empty database`, NOT_EXACT)
          : e;
      });
      if (spec.dump) roundTrip = await sameAgain(spec.dump);
    }
    const result = spec.check
      ? (await run(runCheck(c.l, b.image, p, where, spec.service, spec.check), "the check command")).trim() ||
        "check passed"
      : "no check command declared: the service came up healthy on the restored data";
    return {
      service: snap.service,
      id: snap.id,
      seconds: Math.round(performance.now() - t0) / 1000,
      result,
      ...(roundTrip ? { roundTrip } : {}),
    };
  } finally {
    await c.s.exec(removeScratch(dir, p, c.project));
  }
}
