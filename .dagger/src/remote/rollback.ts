/**
 * `rollback`, on either target: make a kept release current again. Images the
 * server lost are pulled back first (with the same throwaway login as a deploy,
 * sent to the registry of the release's own images); its jobs run again only
 * when declared `on-rollback`. `restore` is also how a failed deploy returns.
 */
import type { ReleaseShape } from "../core/compose/compose.js";
import { PipelineError } from "../core/errors.js";
import type { HealthOutcome } from "../core/release/health.js";
import { loginForRelease } from "../core/registry/images.js";
import { snapshotsFor } from "../core/data/data.js";
import { rollbackRecord } from "../core/release/release.js";
import { keptRelease, operation, targetFor, type OperationRequest } from "./flow.js";
import { dropReplaced, readSnapshots, restoreSnapshots, type Restored } from "./data/data.js";
import { chooseRollbackTarget, record, requireDeployed } from "./releases.js";
import { withLock } from "./session.js";
import type { Context, Release, Target } from "./targets/target.js";
import type { DeployResult, RegistryLogin } from "./remote-target.js";

export interface RollbackRequest extends OperationRequest {
  /** Release id to return to; default: the newest good release older than the current one. */
  to?: string;
  /**
   * Credentials to pull the release's images back with, should the server have lost them; an empty host means the
   * registry of the release's pinned images.
   */
  registry?: RegistryLogin;
  /** Also put the data back as it was while the target release was current. */
  restoreData?: boolean;
  by: string;
}

const imagesOf = (r: Release) => Object.values(r.shape.images).filter(Boolean);

export async function rollback(req: RollbackRequest): Promise<DeployResult> {
  const t = targetFor(req.orchestrator);
  return operation(req, "rollback", req.registry, {}, async (c, attribute) => {
    await c.step(
      "preflight",
      () => t.preflight(c),
      (line) => line,
    );
    await requireDeployed(c.s, c.l, t.words.where);
    return withLock(
      c.s,
      c.l,
      c.p,
      req.lockTimeoutSeconds,
      `${req.by} (rollback, since ${new Date().toISOString()})`,
      async () => {
        const { current, target, history } = await chooseRollbackTarget(c.s, c.l, req.to, t.words.where);
        attribute("release.id", target);
        const r = await keptRelease(c, target);
        c.login = loginForRelease(req.registry, imagesOf(r));
        const leaving = current && current !== target ? (await keptRelease(c, current)).shape : undefined;
        const { pullBack } = t;
        if (pullBack)
          await c.step(
            "pull",
            () => pullBack(c, r),
            (line) => line,
            { "release.id": target },
          );
        const data = current ? await dataOfRelease(c, r, current, req.restoreData === true) : undefined;
        const restored = data?.done ?? [];
        const rerun = r.shape.jobs.filter((j) => j.onRollback);
        await t.prepare(c, r, rerun);
        if (rerun.length > 0)
          await c.step(
            "jobs",
            () => t.jobs(c, r, rerun),
            (done) => `${done.join(", ")} done`,
          );
        const health = await c.step(
          "switch",
          async (span) => {
            const h = await switchAndWait(c, t, r, leaving);
            if (!h.ok) span.fail(h.reasons.join("; "));
            return h;
          },
          (h) => (h.ok ? `${target}: ${t.words.healthy}` : h.reasons.join("; ")),
          { "release.id": target },
        );
        // the data the restore replaced goes once the release is healthy on what it holds now
        if (health.ok && data && c.backup) await dropReplaced(c.s, c.l, c.project, c.backup, data);
        const err = health.ok
          ? undefined
          : new PipelineError(
              "ROLLBACK_FAILED",
              `release ${target} ${t.words.notUp}: ${health.reasons.join("; ")}`,
              data?.replaced.length
                ? `${t.words.rollbackFailedHint}; what the data volumes held before the restore is kept in each at .vps-pipeline-replaced/`
                : t.words.rollbackFailedHint,
            );
        const line = rollbackRecord({
          target,
          current,
          history,
          by: req.by,
          images: r.shape.images,
          health,
          durations: c.p.durations,
          failure: err,
        });
        await c.step("record", () => record(c.s, c.l, restored.length ? { ...line, restored } : line));
        if (err) throw err;
        return {
          release: target,
          ...(current ? { previous: current } : {}),
          images: r.shape.images,
          durations: c.p.durations,
        };
      },
    );
  });
}

/**
 * The data of the release a rollback returns to: put back (`restore`) from the
 * snapshots taken while it was current, every data service stopped meanwhile;
 * or, without the flag, a plain note when the data has moved on since.
 */
async function dataOfRelease(
  c: Context,
  r: Release,
  current: string,
  restoreData: boolean,
): Promise<Restored | undefined> {
  const services = r.shape.data.map((d) => d.service);
  if (services.length === 0) {
    if (restoreData)
      throw new PipelineError(
        "INVALID_INPUT",
        `restoreData: release ${r.id} declares no data (\`x-vps-pipeline.data\`)`,
        "roll back without --restore-data",
      );
    return undefined;
  }
  const snaps = snapshotsFor(await readSnapshots(c.s, c.l), r.id, services);
  if (!restoreData) {
    if (snaps.length)
      c.note(
        `the data has moved on since ${r.id}: it was captured (${snaps.map((x) => `${x.service} ${x.id.slice(0, 12)}`).join(", ")}) before later releases' jobs ran; this rollback returns the code only (\`rollback --restore-data\` returns the data too)`,
      );
    return undefined;
  }
  const { backup } = c;
  if (!backup)
    throw new PipelineError(
      "INVALID_INPUT",
      "backupPassword: --restore-data needs the backup repository's password",
      "pass vps --backup-password=env:BACKUP_PASSWORD",
    );
  const missing = services.filter((x) => !snaps.some((y) => y.service === x));
  if (missing.length)
    throw new PipelineError(
      "RESTORE_FAILED",
      `no snapshot of ${missing.join(", ")} was taken while ${r.id} was current; nothing was changed`,
      "snapshots are taken before each release's jobs and by `backup`; status lists them (`restore --snapshot=<id>` puts back any of them)",
    );
  return c.step(
    "restore-data",
    () => restoreSnapshots(c.s, c.l, c.project, backup, r.shape.data, snaps, current, false),
    (x) => `${x.done.join(", ")} restored (as while ${r.id} was current)`,
  );
}

/**
 * A kept release back in place without steps of its own (inside the caller's): its target files, its on-rollback jobs,
 * the switch, the wait.
 */
export async function restore(c: Context, t: Target, r: Release, leaving?: ReleaseShape): Promise<HealthOutcome> {
  const rerun = r.shape.jobs.filter((j) => j.onRollback);
  await t.prepare(c, r, rerun);
  if (rerun.length > 0) await t.jobs(c, r, rerun);
  return switchAndWait(c, t, r, leaving);
}

async function switchAndWait(c: Context, t: Target, r: Release, leaving?: ReleaseShape): Promise<HealthOutcome> {
  const failure = await t.switch(c, r, leaving);
  return failure ? { ok: false, reasons: [failure] } : t.wait(c, r);
}
