/**
 * `rollback`, on either target: make a kept release current again. Images the
 * server lost are pulled back first (with the same throwaway login as a deploy,
 * sent to the registry of the release's own images); its jobs run again only
 * when declared `on-rollback`. `restore` is also how a failed deploy returns.
 */
import type { ReleaseShape } from "../core/compose.js";
import { PipelineError } from "../core/errors.js";
import type { HealthOutcome } from "../core/health.js";
import { loginForRelease } from "../core/images.js";
import { rollbackRecord } from "../core/release.js";
import { keptRelease, operation, targetFor, type OperationRequest } from "./flow.js";
import { chooseRollbackTarget, record, requireDeployed } from "./releases.js";
import { withLock } from "./session.js";
import type { Context, Release, Target } from "./targets/target.js";
import type { DeployResult, RegistryLogin } from "./target.js";

export interface RollbackRequest extends OperationRequest {
  /** Release id to return to; default: the newest good release older than the current one. */
  to?: string;
  /** Credentials to pull the release's images back with, should the server have lost them; an empty host means the registry of the release's pinned images. */
  registry?: RegistryLogin;
  by: string;
}

const imagesOf = (r: Release) => Object.values(r.shape.images).filter(Boolean);

export async function rollback(req: RollbackRequest): Promise<DeployResult> {
  const t = targetFor(req.orchestrator);
  return operation(req, "rollback", req.registry, {}, async (c, attribute) => {
    await c.step("preflight", () => t.preflight(c), (line) => line);
    await requireDeployed(c.s, c.l, t.words.where);
    return withLock(c.s, c.l, c.p, req.lockTimeoutSeconds, `${req.by} (rollback, since ${new Date().toISOString()})`, async () => {
      const { current, target, history } = await chooseRollbackTarget(c.s, c.l, req.to, t.words.where);
      attribute("release.id", target);
      const r = await keptRelease(c, target);
      c.login = loginForRelease(req.registry, imagesOf(r));
      const leaving = current && current !== target ? (await keptRelease(c, current)).shape : undefined;
      const { pullBack } = t;
      if (pullBack) await c.step("pull", () => pullBack(c, r), (line) => line, { "release.id": target });
      const rerun = r.shape.jobs.filter((j) => j.onRollback);
      await t.prepare(c, r, rerun);
      if (rerun.length > 0) await c.step("jobs", () => t.jobs(c, r, rerun), (done) => `${done.join(", ")} done`);
      const health = await c.step("switch", async (span) => {
        const h = await switchAndWait(c, t, r, leaving);
        if (!h.ok) span.fail(h.reasons.join("; "));
        return h;
      }, (h) => (h.ok ? `${target}: ${t.words.healthy}` : h.reasons.join("; ")), { "release.id": target });
      const err = health.ok ? undefined : new PipelineError("ROLLBACK_FAILED", `release ${target} ${t.words.notUp}: ${health.reasons.join("; ")}`, t.words.rollbackFailedHint);
      await c.step("record", () => record(c.s, c.l, rollbackRecord({ target, current, history, by: req.by, images: r.shape.images, health, durations: c.p.durations, failure: err })));
      if (err) throw err;
      return { release: target, ...(current ? { previous: current } : {}), images: r.shape.images, durations: c.p.durations };
    });
  });
}

/** A kept release back in place without steps of its own (inside the caller's): its target files, its on-rollback jobs, the switch, the wait. */
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
