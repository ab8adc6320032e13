/**
 * Data snapshots on the server (core/data/data.ts, core/data/data-commands.ts): captured
 * before a release's jobs, restored with a rollback or on demand, kept in
 * order. Each capture is recorded in `.releases/snapshots.jsonl` (no secret).
 */
import {
  backupRepo,
  snapshotRecords,
  capturePhysical,
  captureLogical,
  captureRecord,
  copyOffsite,
  RESTORE_REPLACED,
  dropRestoreLeftovers,
  prepareDataServices,
  restoreLogical,
  snapshotsReadable,
  stagePhysical,
  swapPhysical,
  forgetOffsite,
  forgetSnapshots,
  listOffsite,
  listSnapshots,
  DATA_EXIT,
} from "../../core/data/data-commands.js";
import { findSnapshot, parseSnapshots, type SnapshotRecord } from "../../core/data/data.js";
import { snapshotsToForget, type ResticSnapshot } from "../../core/data/retention.js";
import { listReleases } from "../../core/release/release-commands.js";
import { offsiteSecretLine, offsiteTarget } from "../../core/data/offsite.js";
import { DEFAULTS } from "../../core/defaults.js";
import { PipelineError, parseJson, tail } from "../../core/errors.js";
import type { DataSpec } from "../../core/compose/extension.js";
import { appendLine, readOptionalFile, type Layout } from "../../core/server/server-commands.js";
import { releaseConfig } from "../../core/edge/edge-commands.js";
import { keptRelease, operation, type OperationRequest } from "../flow.js";
import { readCurrent } from "../releases.js";
import { withLock } from "../session.js";
import type { ExecResult, SshSession } from "../ssh.js";
import type { BackupOptions, OffsiteRepository } from "../remote-target.js";
import type { Context } from "../targets/target.js";

/** The compose volume names of a release as docker knows them (`gold_dbdata`, or the name it sets). */
export async function volumeNames(
  s: SshSession,
  l: Layout,
  project: string,
  release: string,
): Promise<Record<string, string>> {
  const out = await s.run(releaseConfig(l, project, release), `resolving release ${release}'s volumes`, {
    code: "COMPOSE_INVALID",
    hint: "the release's compose file or .env is not valid for the compose on the VPS",
  });
  const config = out.split(/^=== config$/m)[1] ?? "{}";
  const conf = parseJson<{ volumes?: Record<string, { name?: string }> }>(
    config,
    "docker compose config --format json",
  );
  return Object.fromEntries(Object.entries(conf.volumes ?? {}).map(([k, v]) => [k, v.name ?? `${project}_${k}`]));
}

/** A failed data script as a coded error, naming the service. */
export function dataError(r: ExecResult, service: string, doing: "capture" | "restore"): PipelineError {
  const why = tail(r.stderr, 3) || `exit code ${r.code}`;
  if (r.code === DATA_EXIT.wrongPassword)
    return new PipelineError(
      "BACKUP_PASSWORD",
      `the backup repository refuses the password (${why}); nothing was changed`,
      "give the --backup-password this server's repository was made with (it cannot be recovered)",
    );
  if (r.code === DATA_EXIT.noRepository)
    return new PipelineError(
      "RESTORE_FAILED",
      `${why}; nothing was changed`,
      "on a new server, give the off-site repository (--backup-offsite, --backup-offsite-key, --backup-offsite-host-key): restore copies the project's snapshots from there",
    );
  if (r.code === DATA_EXIT.noSpace)
    return new PipelineError(
      "BACKUP_NO_SPACE",
      `no room to ${doing} ${service}'s data: ${why}; nothing was changed`,
      "free disk space on the VPS (`docker system df` shows what takes it); old snapshots are forgotten only after a capture succeeds, so fewer --keep-snapshots frees nothing now",
    );
  if (doing === "restore")
    return new PipelineError(
      "RESTORE_FAILED",
      `restoring ${service}'s data failed: ${why}`,
      `the service may hold partial data: \`restore --snapshot=<id>\` again, or look at \`docker compose logs ${service}\` on the VPS`,
    );
  return new PipelineError(
    "BACKUP_FAILED",
    `capturing ${service}'s data failed: ${why}; nothing was changed`,
    `check the data declaration of ${service} (dump command, volumes) and \`docker compose logs ${service}\` on the VPS`,
  );
}

interface Summary {
  snapshot_id?: string;
  total_bytes_processed?: number;
  data_added?: number;
}

/**
 * Capture every service in `specs` as it is now (`current` is the release
 * running), each recorded with why (`before`: the release whose jobs come next,
 * or `manual`), and the release's record beside them. The ids may be restic's
 * short ones until keepSnapshots.
 */
export async function capture(
  s: SshSession,
  l: Layout,
  project: string,
  b: BackupOptions,
  specs: readonly DataSpec[],
  current: string,
  before: string,
): Promise<SnapshotRecord[]> {
  const names = specs.some((d) => d.capture === "physical") ? await volumeNames(s, l, project, current) : {};
  // what a new server needs besides the data: the release it belongs to (restore --rebuild). restic takes
  // two backups at once; a repository the data's first capture has yet to make is left to it first.
  const record = () => keepRecord(s, l, project, b, current);
  const recorded = (await s.exec(["test", "-f", `${backupRepo(l)}/config`])).code === 0 ? record() : undefined;
  recorded?.catch(() => undefined); // awaited below; a data capture that fails first must not leave it unhandled
  const taken: SnapshotRecord[] = [];
  for (const d of specs) {
    const tags = [
      "vps-pipeline",
      `project=${project}`,
      `service=${d.service}`,
      `capture=${d.capture}`,
      `release=${current}`,
      `before=${before}`,
    ];
    const t0 = performance.now();
    const cmd =
      d.capture === "physical"
        ? capturePhysical(
            l,
            b.image,
            project,
            current,
            d.service,
            tags,
            d.volumes.map((v) => names[v] ?? `${project}_${v}`),
          )
        : captureLogical(l, b.image, project, current, d.service, tags, d.dump ?? []);
    const r = await s.exec(cmd, { stdin: `${b.password}\n` });
    if (r.code !== 0) throw dataError(r, d.service, "capture");
    const stopped = /^stopped_ms (\d+)$/m.exec(r.stdout)?.[1];
    const summary = parseJson<Summary>(
      r.stdout.split("\n").find((x) => x.includes('"message_type":"summary"')) ?? "{}",
      "restic backup --json",
    );
    if (!summary.snapshot_id)
      throw new PipelineError(
        "BACKUP_FAILED",
        `restic made no snapshot of ${d.service}: ${tail(r.stdout, 2)}`,
        "run `vps … backup` to see it fail on its own",
      );
    const rec: SnapshotRecord = {
      id: summary.snapshot_id,
      service: d.service,
      capture: d.capture,
      release: current,
      before,
      at: new Date().toISOString(),
      bytes: summary.total_bytes_processed ?? 0,
      seconds: Math.round(performance.now() - t0) / 1000,
      ...(stopped !== undefined ? { stoppedSeconds: Number(stopped) / 1000 } : {}),
    };
    await s.run(appendLine(snapshotRecords(l)), "recording the snapshot", { stdin: `${JSON.stringify(rec)}\n` });
    taken.push(rec);
  }
  await (recorded ?? record());
  return taken;
}

/**
 * What follows a capture, off the path to the jobs (a deploy runs it once its release is healthy, or
 * rolled back): the retention — what restic no longer keeps leaves the records, and the snapshots
 * just `taken` get their whole ids — then, when there is one, the copy off the VPS (`offsiteFailed`
 * decides what a failed copy means: a note for a deploy, an error for `backup`) and the off-site retention.
 */
export async function keepSnapshots(
  s: SshSession,
  l: Layout,
  project: string,
  b: BackupOptions,
  taken: readonly SnapshotRecord[],
  offsiteFailed: (why: string) => void,
): Promise<SnapshotRecord[]> {
  const whole = await keepInOrder(s, l, project, b);
  const made = taken.map((x) => ({ ...x, id: whole.find((k) => k.startsWith(x.id)) ?? x.id }));
  if (!b.offsite) return made;
  const why = await copyOff(s, l, project, b, b.offsite);
  if (why) {
    offsiteFailed(why);
    return made;
  }
  await markOffsite(s, l);
  await keepOffsiteInOrder(s, l, project, b, b.offsite);
  return made.map((x) => ({ ...x, offsite: true }));
}

/**
 * The off-site repository's retention, after a copy: the same rules as the VPS's (retention.ts) with its own
 * numbers. Best effort, like the local one: what it could not forget now, the next copy forgets.
 */
async function keepOffsiteInOrder(
  s: SshSession,
  l: Layout,
  project: string,
  b: BackupOptions,
  o: OffsiteRepository,
): Promise<void> {
  const stdin = { stdin: `${b.password}\n${offsiteSecretLine(o)}\n` };
  const listed = await s.exec(listOffsite(l, b.image, project, offsiteTarget(o)), stdin);
  if (listed.code !== 0) return;
  const go = snapshotsToForget(resticList(listed.stdout), {
    keep: b.offsiteKeep ?? DEFAULTS.keepOffsiteSnapshots,
    days: b.offsiteKeepDays ?? DEFAULTS.keepOffsiteSnapshotDays,
    keptReleases: await keptReleases(s, l),
    now: new Date(),
  });
  if (go.length) await s.exec(forgetOffsite(l, b.image, project, offsiteTarget(o), go), stdin);
}

/** The step line of keepSnapshots: the ids kept, and where. */
export function keptLine(x: readonly SnapshotRecord[]): string {
  return (
    x.map((r) => `${r.service}:${r.id.slice(0, 12)}`).join(", ") +
    (x.some((r) => r.offsite) ? " kept here and off-site" : " kept")
  );
}

/**
 * The record of release `current` (its folder, the shipped files, the history) into the repository, beside its data.
 */
async function keepRecord(s: SshSession, l: Layout, project: string, b: BackupOptions, current: string): Promise<void> {
  const r = await s.exec(
    captureRecord(l, b.image, project, current, ["vps-pipeline", `project=${project}`, "record", `release=${current}`]),
    { stdin: `${b.password}\n` },
  );
  if (r.code === 0) return;
  const err = dataError(r, "the release record", "capture");
  throw err.code === "BACKUP_FAILED"
    ? new PipelineError(
        "BACKUP_FAILED",
        `keeping release ${current}'s record with the snapshot (what a rebuild needs) failed: ${tail(r.stderr, 3) || `exit code ${r.code}`}; nothing was changed`,
        "check that the deploy user owns the deploy folder and its .releases; `vps … backup` shows it alone",
      )
    : err;
}

/** Copy the project's snapshots off the VPS (those already there are skipped); the reason when it failed. */
async function copyOff(
  s: SshSession,
  l: Layout,
  project: string,
  b: BackupOptions,
  o: OffsiteRepository,
): Promise<string | undefined> {
  const r = await s.exec(copyOffsite(l, b.image, project, offsiteTarget(o)), {
    stdin: `${b.password}\n${offsiteSecretLine(o)}\n`,
  });
  return r.code === 0 ? undefined : tail(r.stderr, 3) || `exit code ${r.code}`;
}

/** Every snapshot the records hold is off-site now (the copy took all of the project's). */
async function markOffsite(s: SshSession, l: Layout): Promise<void> {
  const records = await readSnapshots(s, l);
  if (records.every((x) => x.offsite)) return;
  await s.upload(
    snapshotRecords(l),
    records.map((x) => `${JSON.stringify({ ...x, offsite: true })}\n`).join(""),
    "600",
  );
}

/**
 * restic forgets what the retention no longer keeps (core/data/retention.ts: per service, never what a kept release
 * needs); the records follow. Returns the (whole) ids kept.
 */
async function keepInOrder(s: SshSession, l: Layout, project: string, b: BackupOptions): Promise<string[]> {
  const pw = { stdin: `${b.password}\n` };
  const listed = await s.exec(listSnapshots(l, b.image, project), pw);
  if (listed.code !== 0) return []; // the snapshots are made; an unpruned repository is only bigger
  const list = resticList(listed.stdout);
  const go = snapshotsToForget(list, {
    keep: b.keep,
    days: b.keepDays,
    keptReleases: await keptReleases(s, l),
    now: new Date(),
  });
  if (go.length && (await s.exec(forgetSnapshots(l, b.image, project, go), pw)).code !== 0) return [];
  const kept = list.map((x) => x.id).filter((id) => !go.includes(id));
  const records = await readSnapshots(s, l);
  // restic's backup prints a short id (0.14) or the whole one: the records keep the whole one from here on
  const left = records.flatMap((x) => {
    const id = kept.find((k) => k.startsWith(x.id));
    return id ? [{ ...x, id }] : [];
  });
  if (JSON.stringify(left) !== JSON.stringify(records))
    await s.upload(snapshotRecords(l), left.map((x) => `${JSON.stringify(x)}\n`).join(""), "600");
  return kept;
}

const resticList = (stdout: string): ResticSnapshot[] =>
  parseJson<ResticSnapshot[] | null>(stdout.trim() || "[]", "restic snapshots --json") ?? [];

/** The releases still on the server: what retention keeps a snapshot for. */
async function keptReleases(s: SshSession, l: Layout): Promise<string[]> {
  return (await s.run(listReleases(l), "listing releases"))
    .split("\n")
    .map((x) => x.trim())
    .filter(Boolean);
}

export async function readSnapshots(s: SshSession, l: Layout): Promise<SnapshotRecord[]> {
  return parseSnapshots(await s.run(readOptionalFile(snapshotRecords(l)), "reading the snapshot records"));
}

/** What a restore did: `service:id` per snapshot, and the volumes keeping what it replaced (dropReplaced). */
export interface Restored {
  done: string[];
  replaced: string[];
}

/**
 * Put the data of `snapshots` back, all or nothing (`release`: the one whose compose file runs the services now).
 * Before anything changes: each snapshot's service declares data, each dump has a restore command, each snapshot
 * can be read. Then, the services running: each physical snapshot is staged in its volumes (room checked), each dump
 * fed to its service; then one script on the server stops the physical services, swaps every stage in and starts
 * them again (`start`; a rollback's switch starts them with the release it returns to). A failure before the swap
 * leaves every volume as it was; the swap swaps back what it did when a later volume fails, and the services are
 * started again whatever happens, dropped connection included. What a volume held stays beside until dropReplaced.
 */
export async function restoreSnapshots(
  s: SshSession,
  l: Layout,
  project: string,
  b: BackupOptions,
  specs: readonly DataSpec[],
  snapshots: readonly SnapshotRecord[],
  release: string,
  start: boolean,
): Promise<Restored> {
  const plan = snapshots.map((snap) => {
    const d = specs.find((x) => x.service === snap.service);
    if (!d)
      throw new PipelineError(
        "RESTORE_FAILED",
        `snapshot ${snap.id.slice(0, 12)} is of ${snap.service}, which release ${release} does not declare as data; nothing was changed`,
        "restore it with a release that declares it",
      );
    if (snap.capture === "logical" && !d.restore)
      throw new PipelineError(
        "RESTORE_FAILED",
        `snapshot ${snap.id.slice(0, 12)} of ${snap.service} is a dump, and release ${release} has no restore command for it; nothing was changed`,
        "declare `restore:` in the service's data",
      );
    return { snap, d };
  });
  const pw = { stdin: `${b.password}\n` };
  const readable = await s.exec(
    snapshotsReadable(
      l,
      b.image,
      project,
      snapshots.map((x) => x.id),
    ),
    pw,
  );
  if (readable.code !== 0) throw unchanged(dataError(readable, snapshots.map((x) => x.service).join(", "), "restore"));
  const names = snapshots.some((x) => x.capture === "physical") ? await volumeNames(s, l, project, release) : {};
  const volumesOf = (d: DataSpec) => d.volumes.map((v) => names[v] ?? `${project}_${v}`).map((n) => `${n}=${n}`);
  const physical = plan.filter((x) => x.snap.capture === "physical");
  const staged: string[] = [];
  const unstage = async () => {
    if (staged.length) await s.exec(dropRestoreLeftovers(l, b.image, project, staged), pw);
  };
  const done: string[] = [];
  const said = (x: { snap: SnapshotRecord }) => `${x.snap.service}:${x.snap.id.slice(0, 12)}`;
  try {
    for (const x of physical) {
      const r = await s.exec(stagePhysical(l, b.image, project, x.d.service, x.snap.id, volumesOf(x.d)), pw);
      if (r.code !== 0) throw unchanged(dataError(r, x.d.service, "restore"), done);
      staged.push(...volumesOf(x.d));
    }
    for (const x of plan.filter((y) => y.snap.capture === "logical")) {
      const r = await s.exec(
        restoreLogical(l, b.image, project, release, x.d.service, x.snap.id, x.d.restore ?? []),
        pw,
      );
      if (r.code !== 0) throw unchanged(dataError(r, x.d.service, "restore"), done);
      done.push(said(x));
    }
    if (physical.length) {
      const r = await s.exec(
        swapPhysical(
          l,
          b.image,
          project,
          release,
          physical.map((x) => x.d.service),
          staged,
          start,
        ),
        pw,
      );
      if (r.code !== 0) throw unchanged(dataError(r, physical.map((x) => x.d.service).join(", "), "restore"), done);
    }
  } catch (e) {
    await unstage();
    throw e;
  }
  return { done: [...done, ...physical.map(said)], replaced: staged };
}

/**
 * A restore that stopped before the swap (or whose swap went back): the physical data is as it was, said so; the
 * dumps already fed (`done`) are named, since a dump cannot be taken back.
 */
function unchanged(e: PipelineError, done: readonly string[] = []): PipelineError {
  if (e.code !== "RESTORE_FAILED") return e;
  return new PipelineError(
    "RESTORE_FAILED",
    `${e.message.replace(/; nothing was changed$/, "")}; ${done.length ? `the dumps of ${done.join(", ")} were already put back, every other service holds` : "every service holds"} the data it held, and runs`,
    "nothing of the data was lost: fix the cause (the snapshot's id in `status`, the repository, the disk) and restore again",
  );
}

/** Once the services are healthy on restored data: what the restore replaced, gone from their volumes. */
export async function dropReplaced(
  s: SshSession,
  l: Layout,
  project: string,
  b: BackupOptions,
  r: Restored,
): Promise<void> {
  if (r.replaced.length)
    await s.exec(dropRestoreLeftovers(l, b.image, project, r.replaced), { stdin: `${b.password}\n` });
}

/** The current release's data services, or a clear error when it declares none. */
export async function currentData(c: Context): Promise<{ id: string; specs: DataSpec[] }> {
  const current = await readCurrent(c.s, c.l);
  if (!current) throw new PipelineError("RELEASE_NOT_FOUND", `nothing is deployed in ${c.l.dir}`, "deploy first");
  const specs = (await keptRelease(c, current)).shape.data;
  if (specs.length === 0)
    throw new PipelineError(
      "INVALID_INPUT",
      `release ${current} declares no data (\`x-vps-pipeline.data\` on the service that owns it)`,
      "declare the data in the production compose file and deploy",
    );
  return { id: current, specs };
}

export function needBackup(c: Context): BackupOptions {
  if (!c.backup)
    throw new PipelineError(
      "INVALID_INPUT",
      "backupPassword: snapshots need the backup repository's password",
      "pass vps --backup-password=env:BACKUP_PASSWORD",
    );
  return c.backup;
}

export interface BackupRequest extends OperationRequest {
  by: string;
}

/** `vps … backup`: capture the current release's data now, under the deploy lock (`before: manual`). */
export async function backup(req: BackupRequest): Promise<SnapshotRecord[]> {
  return operation(req, "backup", undefined, {}, async (c) => {
    const b = needBackup(c);
    return withLock(
      c.s,
      c.l,
      c.p,
      req.lockTimeoutSeconds,
      `${req.by} (backup, since ${new Date().toISOString()})`,
      async () => {
        const { id, specs } = await currentData(c);
        const offsiteFailed = (why: string) => {
          throw new PipelineError(
            "BACKUP_FAILED",
            `the snapshot is on the VPS, but copying it off-site failed: ${why}`,
            "check the off-site host, its key (--backup-offsite-host-key) and the SSH key (--backup-offsite-key); `backup` again copies what is missing",
          );
        };
        const taken = await c.step(
          "snapshot",
          () => capture(c.s, c.l, c.project, b, specs, id, "manual"),
          (x) => x.map((r) => `${r.service} ${(r.bytes / 1048576).toFixed(1)} MiB in ${r.seconds}s`).join(", "),
        );
        return c.step("keep-snapshots", () => keepSnapshots(c.s, c.l, c.project, b, taken, offsiteFailed), keptLine);
      },
    );
  });
}

export interface RestoreRequest extends BackupRequest {
  /** The snapshot to put back (a prefix of its id, as status lists it). */
  snapshot: string;
}

/**
 * `vps … restore --snapshot=<id>`: put one snapshot's data back under the current release (its service stopped
 * meanwhile, then started).
 */
export async function restoreSnapshot(req: RestoreRequest): Promise<string[]> {
  return operation(req, "restore", undefined, {}, async (c) => {
    const b = needBackup(c);
    return withLock(
      c.s,
      c.l,
      c.p,
      req.lockTimeoutSeconds,
      `${req.by} (restore, since ${new Date().toISOString()})`,
      async () => {
        const found = findSnapshot(await readSnapshots(c.s, c.l), req.snapshot);
        const { id, specs } = await currentData(c);
        return c.step(
          "restore-data",
          async () => {
            const r = await restoreSnapshots(c.s, c.l, c.project, b, specs, found, id, true);
            // what the volumes held goes once the services are healthy on what they hold now
            const services = found.map((x) => x.service);
            const up = await c.s.exec(
              prepareDataServices(c.l, b.image, c.project, id, "run", c.healthTimeoutSeconds, services),
              { stdin: `${b.password}\n` },
            );
            if (up.code !== 0)
              throw new PipelineError(
                "RESTORE_FAILED",
                `${services.join(", ")} restored, but not healthy on the restored data: ${tail(up.stderr, 3)}`,
                `what the volumes held before is kept in each at ${RESTORE_REPLACED}/ (\`docker compose logs ${services.join(" ")}\` on the VPS says why; restore another snapshot, or move it back by hand)`,
              );
            await dropReplaced(c.s, c.l, c.project, b, r);
            return r.done;
          },
          (x) => `${x.join(", ")} restored`,
        );
      },
    );
  });
}
