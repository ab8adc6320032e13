/**
 * Ship a release to the server over one SSH connection, on either target
 * (docs/architecture.md): preflight and lock, then four phases — prepare the
 * release (nothing running changes), switch and check, recover or fail, record
 * and prune. The target does each step its own way; the order and what a
 * failure means are decided here, once.
 */
import { releaseShape } from "../core/compose/compose.js";
import { platformProblems } from "../core/server/platforms.js";
import { mustCapture, specsToCapture, type SnapshotRecord } from "../core/data/data.js";
import type { HealthOutcome } from "../core/release/health.js";
import { PipelineError, tail } from "../core/errors.js";
import { releaseId, type HistoryRecord } from "../core/release/release.js";
import {
  ESCAPE_EXIT,
  confinedPaths,
  readOptionalFile,
  releaseDir,
  snapshotEnv,
} from "../core/server/server-commands.js";
import { keptRelease, operation, outcomeOf, targetFor, type OperationRequest } from "./flow.js";
import { prune, readCurrentWithCompose, record, recordingEarlyFailures, releaseEnv } from "./releases.js";
import { pruneShippedFiles, uploadShippedFiles } from "./files.js";
import { restore } from "./rollback.js";
import { withLock } from "./session.js";
import type { Context, Release, Target } from "./targets/target.js";
import { capture, dropReplaced, keepSnapshots, keptLine, restoreSnapshots, type Restored } from "./data/data.js";
import type { DeployResult, RegistryLogin } from "./remote-target.js";
import type { ShippedFile } from "../core/release/release-files.js";

export type { DeployResult } from "./remote-target.js";

export interface DeployRequest extends OperationRequest {
  sha: string;
  /** The rendered release compose file (images pinned by digest). */
  compose: string;
  /** Production `.env`; when absent the server's own `.env` is kept (and snapshotted into the release). */
  env?: string;
  /** Credentials the VPS pulls with; absent for public images. */
  registry?: RegistryLogin;
  /** Files from the repository the release mounts (core/release/release-files.ts), uploaded beside it. */
  files?: ShippedFile[];
  keepReleases: number;
  /**
   * Host paths (relative to the deploy folder) that must resolve inside it on the server, through no symlink and no
   * bind a running container may write: a preview's (core/preview/sandbox.ts). Checked once the files are there,
   * before anything is pulled or started.
   */
  confined?: string[];
  /** Who deploys, for the lock holder and the history (e.g. `octocat (GitHub run 42)`). */
  by: string;
  /**
   * The platforms of the release's multi-platform images (image → `os/arch`…; single manifests absent), read from the
   * registry: checked against the server's before anything changes.
   */
  platformsOf?: (images: string[]) => Promise<ReadonlyMap<string, string[]>>;
}

/** The history line of this deploy, but for its outcome. */
type Base = Omit<HistoryRecord, "result" | "durations">;

export async function deploy(req: DeployRequest): Promise<DeployResult> {
  const t = targetFor(req.orchestrator);
  const notes = t.admit(req.compose); // what the target cannot run is refused before any connection
  const shape = releaseShape(req.compose);
  if (shape.data.length && !req.backup) {
    throw new PipelineError(
      "INVALID_INPUT",
      `backupPassword: the release declares data (${shape.data.map((d) => d.service).join(", ")}) and no backup password was given`,
      "pass vps --backup-password=env:BACKUP_PASSWORD (a new repository is made with it on the first snapshot; keep it: it cannot be recovered)",
    );
  }
  return operation(req, "deploy", req.registry, { "git.sha": req.sha }, (c, attribute) => {
    notes.forEach((n) => c.note(n));
    return recordingEarlyFailures(c.s, c.l, c.p, { sha: req.sha, by: req.by, images: shape.images }, async (locked) => {
      // Preflight first: a server that cannot run the release is left exactly as it was.
      await c.step(
        "preflight",
        () => t.preflight(c),
        (line) => line,
      );
      return withLock(
        c.s,
        c.l,
        c.p,
        req.lockTimeoutSeconds,
        `${req.by} (sha ${req.sha.slice(0, 7)}, since ${new Date().toISOString()})`,
        async () => {
          locked();
          const current = await readCurrentWithCompose(c.s, c.l);
          // its images may be variables of the .env it ran with (`image: ${REGISTRY}/api:${TAG}`)
          const previous: Release | undefined = current.id
            ? {
                id: current.id,
                compose: current.compose,
                shape: releaseShape(current.compose, await releaseEnv(c.s, c.l, current.id)),
              }
            : undefined;
          // Replica counts may come from the .env (`replicas: "${N:-2}"`): the given one, or the server's that the
          // release keeps (unreadable: the file's defaults, and the switch reports what is really wrong).
          const env =
            req.env ?? (await c.s.run(readOptionalFile(c.l.env), "reading the server's .env").catch(() => ""));
          // The id is taken under the lock with millisecond precision: two deploys never share one.
          const release: Release = {
            id: releaseId(new Date(), req.sha),
            compose: req.compose,
            shape: releaseShape(req.compose, env),
            env: req.env,
            files: req.files ?? [],
          };
          attribute("release.id", release.id);
          if (previous) attribute("release.previous", previous.id);
          const base: Base = {
            release: release.id,
            action: "deploy",
            at: new Date().toISOString(),
            by: req.by,
            sha: req.sha,
            images: shape.images,
            ...(previous ? { previous: previous.id } : {}),
          };

          let taken: SnapshotRecord[];
          try {
            taken = await prepareRelease(c, t, release, previous, req.platformsOf, req.confined);
          } catch (e) {
            const err = outcomeOf(e, "preparing the release");
            return failed(c, base, `${err.code}: ${err.message.split("\n")[0]} (nothing running was changed)`, err);
          }
          const health = await switchAndCheck(c, t, release, previous);
          if (!health.ok) return recoverOrFail(c, t, base, release, previous, health.reasons.join("; "), taken);
          const kept = await keepAfter(c, taken);
          const done: Base = kept.length ? { ...base, snapshots: kept.map(describeSnapshot) } : base;
          await c.step("record", () => record(c.s, c.l, { ...done, result: "ok", durations: c.p.durations }));
          await c.step(
            "prune",
            async () => ({
              ...(await prune(c.s, c.l, req.keepReleases, [release.id, previous?.id])),
              files: await pruneShippedFiles(c.s, c.l),
            }),
            (r) =>
              `${r.removed.length} old release(s) removed${r.files ? `, ${r.files} shipped file set(s) no release names` : ""}${r.error ? ` (some files stayed: ${r.error})` : ""}`,
          );
          return {
            release: release.id,
            ...(previous ? { previous: previous.id } : {}),
            images: release.shape.images,
            durations: c.p.durations,
            ...(Object.keys(c.p.parts).length ? { parts: c.p.parts } : {}),
          };
        },
      );
    });
  });
}

/** Phase 1: the release's files, the target's checks, the images, the jobs. Nothing that runs changes. */
async function prepareRelease(
  c: Context,
  t: Target,
  r: Release,
  previous: Release | undefined,
  platformsOf?: DeployRequest["platformsOf"],
  confined: readonly string[] = [],
): Promise<SnapshotRecord[]> {
  if (platformsOf) await checkPlatforms(c, t, r, platformsOf);
  await c.step(
    "upload",
    async () => {
      const n = await uploadRelease(c, t, r);
      if (confined.length) await checkConfined(c, confined);
      return n;
    },
    (n) => (n.sent + n.present ? `${n.sent} file(s) from the repository sent, ${n.present} already there` : ""),
    { "release.id": r.id },
  );
  await t.check(c, r);
  await c.step(
    "pull",
    () => t.pull(c, r, previous),
    (line) => line,
    { "registry.host": c.login?.host ?? "" },
  );
  // The data as the running release left it, before jobs (or a new definition of a data service) can change it.
  const specs = specsToCapture(previous?.shape, r.shape);
  const { backup } = c;
  const taken =
    previous && backup && mustCapture(previous.shape, r.shape, specs)
      ? await c.step(
          "snapshot",
          () => capture(c.s, c.l, c.project, backup, specs, previous.id, r.id),
          (x) =>
            x
              .map(
                (r) =>
                  `${r.service} ${(r.bytes / 1048576).toFixed(1)} MiB in ${r.seconds}s${r.stoppedSeconds !== undefined ? ` (stopped ${r.stoppedSeconds}s)` : ""}`,
              )
              .join(", "),
        )
      : [];
  if (r.shape.jobs.length > 0)
    await c.step(
      "jobs",
      () => t.jobs(c, r, r.shape.jobs),
      (done) => `${done.join(", ")} done`,
      { jobs: r.shape.jobs.map((j) => j.service).join(",") },
    );
  return taken;
}

/**
 * Every image of the release has the server's platform (every node's on a swarm), or the deploy stops here with
 * PLATFORM_MISSING: nothing was sent yet. An index is judged by its entries, a single-platform image by its config;
 * a registry that cannot be read is a note (the pull says what is missing).
 */
async function checkPlatforms(
  c: Context,
  t: Target,
  r: Release,
  platformsOf: NonNullable<DeployRequest["platformsOf"]>,
): Promise<void> {
  const images = [...new Set(Object.values(r.shape.images).filter(Boolean))];
  const indexes = await platformsOf(images).catch((e: unknown) => {
    c.note(
      `the images' platforms could not be read from the registry (${outcomeOf(e, "reading manifests").message.split("\n")[0]}); the pull will say if one lacks the server's`,
    );
    return new Map<string, string[]>();
  });
  if (indexes.size === 0) return;
  await c.step(
    "platforms",
    async () => {
      const servers = await t.platforms(c);
      const problems = platformProblems(r.shape.images, indexes, servers);
      if (problems.length)
        throw new PipelineError(
          "PLATFORM_MISSING",
          `an image has no variant for the server's platform:\n  ${problems.join("\n  ")}`,
          "publish for that platform too (--platforms=linux/amd64,linux/arm64), or deploy to a server of a platform the images have; nothing was changed",
        );
      return servers;
    },
    (servers) => `${[...new Set(servers.map((s) => s.platform))].join(", ")}: every image has it`,
  );
}

/**
 * The compose file and the `.env` (or a copy of the server's) into the release's folder, with the files it mounts, then
 * the target's own files.
 */
async function uploadRelease(c: Context, t: Target, r: Release): Promise<{ sent: number; present: number }> {
  const dir = releaseDir(c.l, r.id);
  const [, , shipped] = await Promise.all([
    c.s.upload(`${dir}/docker-compose.yml`, r.compose, "600"),
    r.env !== undefined
      ? c.s.upload(`${dir}/.env`, r.env, "600")
      : c.s.run(snapshotEnv(c.l, r.id), "keeping the server's .env with the release"),
    uploadShippedFiles(c.s, c.l, r.files ?? []),
  ]);
  await t.prepare(c, r, r.shape.jobs);
  return shipped;
}

/** Each confined path leads where it says (DeployRequest.confined), or the deploy stops here: nothing runs yet. */
async function checkConfined(c: Context, paths: readonly string[]): Promise<void> {
  const r = await c.s.exec(confinedPaths(c.l.dir, paths));
  if (r.code === 0) return;
  if (r.code !== ESCAPE_EXIT)
    throw new PipelineError(
      "REMOTE_COMMAND_FAILED",
      `checking the release's host paths failed: ${tail(r.stderr, 3)}`,
      "the VPS needs `realpath` (coreutils)",
    );
  const why = r.stdout
    .trim()
    .split("\n")
    .map((line) => {
      const [kind, path, to] = line.split(" ", 3) as [string, string, string];
      return kind === "symlink"
        ? `./${path} leads to ${to} (a symlink on the way)`
        : `./${path} lies inside ${to}, which a running container may write`;
    });
  throw new PipelineError(
    "PREVIEW_ESCAPE",
    `a host path of the release leads out of ${c.l.dir}: ${why.join("; ")}`,
    "a container of the preview left a symlink in its folder, or can write a folder on the way; `preview-down` the preview (its folder goes with it) and deploy again",
  );
}

/** Phase 2: the switch, then the wait; any failure here is an outcome, for phase 3 to act on. */
async function switchAndCheck(
  c: Context,
  t: Target,
  r: Release,
  previous: Release | undefined,
): Promise<HealthOutcome> {
  try {
    const failure = await c.step(
      "switch",
      async (span) => {
        const f = await t.switch(c, r, previous?.shape);
        if (f) span.fail(f);
        return f;
      },
      (f) => f ?? t.words.switched(r),
      { "release.id": r.id },
    );
    if (failure) return { ok: false, reasons: [failure] };
    return await c.step(
      "health",
      async (span) => {
        const h = await t.wait(c, r);
        if (!h.ok) span.fail(h.reasons.join("; "));
        return h;
      },
      (h) => (h.ok ? t.words.healthy : h.reasons.join("; ")),
    );
  } catch (e) {
    const err = outcomeOf(e, "switching to the release");
    return { ok: false, reasons: [`${err.code}: ${err.message.split("\n")[0]}`] };
  }
}

/**
 * Phase 3: back to the previous release (its jobs declared on-rollback run again), recorded; or, on a first release,
 * the failure.
 */
async function recoverOrFail(
  c: Context,
  t: Target,
  base: Base,
  r: Release,
  previous: Release | undefined,
  why: string,
  taken: readonly SnapshotRecord[] = [],
): Promise<never> {
  if (!previous)
    return failed(
      c,
      base,
      why,
      new PipelineError(
        "DEPLOY_FAILED",
        `release ${r.id} ${t.words.notUp} and there is no previous release to return to: ${why}`,
        t.words.firstFailedHint,
      ),
    );
  // Data the failed release's jobs may have changed: put back where its declaration asks, said plainly where not.
  const specs = specsToCapture(previous.shape, r.shape);
  const putBack = taken.filter((x) => specs.find((d) => d.service === x.service)?.restoreOnFailedDeploy);
  const moved = taken.filter((x) => !putBack.includes(x)).map((x) => x.service);
  if (moved.length && r.shape.jobs.length) {
    const ids = taken.filter((x) => moved.includes(x.service)).map((x) => x.id.slice(0, 12));
    c.note(
      `the data of ${moved.join(", ")} keeps what ${r.id}'s jobs (${r.shape.jobs.map((j) => j.service).join(", ")}) did to it; \`restore --snapshot=${ids.join(" / ")}\` puts back the data as it was before them (\`on-failed-deploy: restore\` does it by itself)`,
    );
  }
  const { backup } = c;
  // the data first: a restore that fails stops the rollback here, the data as it is (the previous release is not
  // started on data it did not write)
  let restored: Restored | undefined;
  if (putBack.length && backup)
    try {
      restored = await c.step(
        "restore-data",
        () => restoreSnapshots(c.s, c.l, c.project, backup, specs, putBack, r.id, false),
        (x) => `${x.done.join(", ")} restored`,
      );
    } catch (e) {
      const err = outcomeOf(e, "restoring data");
      const ids = putBack.map(describeSnapshot).join(", ");
      await keepAfter(c, taken);
      return failed(
        c,
        base,
        `${why}; putting back ${ids} failed`,
        new PipelineError(
          "RESTORE_FAILED",
          `release ${r.id} failed (${why}), and putting its data back from ${ids} failed: ${err.message.split("\n")[0]}; the rollback stopped there: ${previous.id} was not started on data it did not write`,
          `fix the cause, then \`restore --snapshot=${putBack.map((x) => x.id.slice(0, 12)).join(" / ")}\` and \`rollback --to=${previous.id}\``,
        ),
      );
    }
  const back = await c
    .step(
      "rollback",
      async (span) => {
        const h = await restore(c, t, await keptRelease(c, previous.id), r.shape);
        if (!h.ok) span.fail(h.reasons.join("; "));
        return h;
      },
      (h) => (h.ok ? `${previous.id} serving again` : "previous release unhealthy too"),
      { "release.id": previous.id },
    )
    .catch((e: unknown): HealthOutcome => {
      const err = outcomeOf(e, "rolling back");
      return { ok: false, reasons: [err.message.split("\n")[0] ?? err.code] };
    });
  // what the restore replaced goes once the previous release is healthy on the restored data
  if (back.ok && restored && backup) await dropReplaced(c.s, c.l, c.project, backup, restored).catch(() => undefined);
  const kept = await keepAfter(c, taken);
  if (kept.length) base = { ...base, snapshots: kept.map(describeSnapshot) };
  // as the history names them: the ids the retention made whole
  if (restored?.done.length)
    base = {
      ...base,
      restored: kept.filter((x) => putBack.some((y) => y.service === x.service)).map(describeSnapshot),
    };
  const err = new PipelineError(
    "DEPLOY_ROLLED_BACK",
    `release ${r.id} failed (${why}); rolled back to ${previous.id}${back.ok ? t.words.backUp : `${t.words.backDown}: ${back.reasons.join("; ")}`}`,
    back.ok ? t.words.rolledBackHint : t.words.nothingUpHint,
  );
  const line = {
    ...base,
    result: "rolled-back" as const,
    reason: why,
    code: err.code,
    hint: err.hint,
    rolledBackTo: previous.id,
    rollbackHealthy: back.ok,
    durations: c.p.durations,
  };
  await record(c.s, c.l, line);
  err.history = line;
  throw err;
}

/**
 * The retention and the off-site copy of what the snapshot step took, once the release is healthy (or
 * rolled back): they need not hold up the jobs. Never fails a deploy: a failure is a note, and the
 * next capture catches up.
 */
async function keepAfter(c: Context, taken: readonly SnapshotRecord[]): Promise<SnapshotRecord[]> {
  const { backup } = c;
  if (!taken.length || !backup) return [...taken];
  const note = (why: string) =>
    c.note(`the snapshot is on the VPS only: copying it off-site failed (${why}); the deploy goes on`);
  return c
    .step("keep-snapshots", () => keepSnapshots(c.s, c.l, c.project, backup, taken, note), keptLine)
    .catch((e: unknown) => {
      c.note(
        `keeping the snapshots in order failed (${outcomeOf(e, "keeping snapshots").message.split("\n")[0]}); the next snapshot tries again`,
      );
      return [...taken];
    });
}

/** A deploy that stops with `err`: recorded as failed with its reason, then thrown. */
async function failed(c: Context, base: Base, reason: string, err: PipelineError): Promise<never> {
  const line = { ...base, result: "failed" as const, reason, code: err.code, hint: err.hint, durations: c.p.durations };
  await record(c.s, c.l, line).catch(() => undefined);
  err.history = line;
  throw err;
}

/** `db:1a2b3c4d5e6f` for the output and the history. */
function describeSnapshot(x: SnapshotRecord): string {
  return `${x.service}:${x.id.slice(0, 12)}`;
}
