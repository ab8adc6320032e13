/**
 * deploy and rollback on a swarm (--orchestrator=swarm): the flow of one VPS
 * (remote/deploy.ts) with the stack in place of compose. Before the stack
 * changes, any failure leaves what runs untouched; after, the previous release
 * is deployed again and the history says so.
 */
import { releaseShape } from "../core/compose.js";
import { PipelineError, asPipelineError } from "../core/errors.js";
import { layout, releaseDir, snapshotEnv } from "../core/remote-commands.js";
import { releaseId, type HistoryRecord } from "../core/release.js";
import { renderSwarmRelease } from "../core/swarm.js";
import type { DeployRequest, DeployResult } from "./deploy.js";
import { Progress } from "./progress.js";
import type { RollbackRequest } from "./rollback.js";
import { withLock, withSession } from "./session.js";
import { chooseRollbackTarget, prune, recordingEarlyFailures, requireDeployed, rollBackFailedDeploy, rollbackRecord } from "./releases.js";
import { readCurrentWithCompose, record, type HealthOutcome } from "./steps.js";
import { checkImages, prepareStack, restoreRelease, runSwarmJobs, swarmPreflight, switchStack } from "./swarm.js";
import { defaultTracing, inSpan } from "./trace.js";

export async function swarmDeploy(req: DeployRequest): Promise<DeployResult> {
  const l = layout(req.dir);
  const shape = releaseShape(req.compose);
  // refused before any connection: what a swarm cannot run, named field by field
  const sw = renderSwarmRelease(req.compose);
  const begin = (step: string) => req.onStep?.(step);
  return inSpan(req.tracing ?? defaultTracing(), "deploy", { "vps.project": req.project, "git.sha": req.sha, "orchestrator": "swarm" }, (t, span) => {
    const p = new Progress(req.log, "deploy", t);
    const note = (n: string) => req.log(`deploy note      ${n}`);
    sw.notes.forEach(note);
    return withSession(req.ssh, p, (s) => recordingEarlyFailures(s, l, p, { sha: req.sha, by: req.by, images: shape.images }, async (locked) => {
      begin("preflight");
      await p.step("preflight", () => swarmPreflight(s, l, req.ssh.user), (r) => `docker ${r.docker} (swarm manager), ${r.freeMiB} MiB free`);
      begin("lock");
      return withLock(s, l, p, req.lockTimeoutSeconds, `${req.by} (sha ${req.sha.slice(0, 7)}, since ${new Date().toISOString()})`, async () => {
        locked();
        const previous = (await readCurrentWithCompose(s, l)).id;
        const id = releaseId(new Date(), req.sha);
        span.setAttribute("release.id", id);
        const rel = releaseDir(l, id);
        const base: Omit<HistoryRecord, "result" | "durations"> = {
          release: id, action: "deploy", at: new Date().toISOString(), by: req.by, sha: req.sha, images: shape.images, ...(previous ? { previous } : {}),
        };
        const fail = async (reason: string, e: PipelineError): Promise<never> => {
          await record(s, l, { ...base, result: "failed", reason, code: e.code, hint: e.hint, durations: p.durations }).catch(() => undefined);
          throw e;
        };

        try {
          begin("upload");
          await p.step("upload", async () => {
            await Promise.all([
              s.upload(`${rel}/docker-compose.yml`, req.compose, "600"),
              req.env !== undefined ? s.upload(`${rel}/.env`, req.env, "600") : s.run(snapshotEnv(l, id), "keeping the server's .env with the release"),
            ]);
            await prepareStack(s, l, id, sw, req.env);
          }, undefined, { "release.id": id });
          begin("pull");
          const images = [...new Set(Object.values(shape.images).filter(Boolean))];
          await p.step("pull", () => checkImages(s, req.registry, images), (n) => `${n} image(s) readable with the pull login (each node pulls its own)`, { "registry.host": req.registry?.host ?? "" });
          if (sw.jobs.length > 0) {
            begin("jobs");
            await p.step("jobs", () => runSwarmJobs(s, req.registry, l, id, req.project, sw), (done) => `${done.join(", ")} done`);
          }
        } catch (e) {
          const err = asPipelineError(e, "preparing the release");
          if (err.code === "SSH_CONNECTION_LOST") throw err;
          return await fail(`${err.code}: ${err.message.split("\n")[0]} (nothing running was changed)`, err);
        }

        begin("switch");
        const health = await p.step("switch", async (sp) => {
          const h = await switchStack(s, req.registry, l, id, req.project, shape, req.healthTimeoutSeconds, note);
          if (!h.ok) sp.fail(h.reasons.join("; "));
          return h;
        }, (h) => (h.ok ? "every task of the release runs" : h.reasons.join("; ")), { "release.id": id }).catch((e: unknown): HealthOutcome => {
          const err = asPipelineError(e, "switching to the release");
          if (err.code === "SSH_CONNECTION_LOST") throw err;
          return { ok: false, reasons: [`${err.code}: ${err.message.split("\n")[0]}`] };
        });

        if (!health.ok) {
          const why = health.reasons.join("; ");
          if (!previous) {
            return await fail(why, new PipelineError("DEPLOY_FAILED", `release ${id} did not converge and there is no previous release to return to: ${why}`, "fix the release and deploy again; `docker service ps --no-trunc <project>_<service>` on the manager shows why its tasks failed"));
          }
          begin("rollback");
          return await rollBackFailedDeploy(s, l, p, base, previous, why, async () => (await restoreRelease(s, req.registry, l, previous, req.project, req.healthTimeoutSeconds, note)).health, {
            healthy: ", which runs on every task again",
            unhealthy: ", which does NOT converge either",
            hintHealthy: "the previous version is running; `docker service ps --no-trunc <project>_<service>` on the manager shows why the new tasks failed; fix it and deploy again",
            hintUnhealthy: "nothing healthy runs now: `docker stack ps <project>` on the manager, then deploy a fixed release or `rollback --to` an older one (`status` lists them)",
          });
        }

        begin("record");
        await p.step("record", () => record(s, l, { ...base, result: "ok", durations: p.durations }));
        await p.step("prune", () => prune(s, l, req.keepReleases, [id, previous]), (r) => `${r.removed.length} old release(s) removed${r.error ? ` (some files stayed: ${r.error})` : ""}`);
        return { release: id, ...(previous ? { previous } : {}), images: shape.images, durations: p.durations };
      });
    }));
  });
}

export async function swarmRollback(req: RollbackRequest): Promise<DeployResult> {
  const l = layout(req.dir);
  return inSpan(req.tracing ?? defaultTracing(), "rollback", { "vps.project": req.project, "orchestrator": "swarm" }, (t, span) => {
    const p = new Progress(req.log, "rollback", t);
    return withSession(req.ssh, p, async (s) => {
      await p.step("preflight", () => swarmPreflight(s, l, req.ssh.user), (r) => `docker ${r.docker} (swarm manager)`);
      await requireDeployed(s, l, "manager");
      return withLock(s, l, p, req.lockTimeoutSeconds, `${req.by} (rollback, since ${new Date().toISOString()})`, async () => {
        const { current, target, history } = await chooseRollbackTarget(s, l, req.to, "manager");
        span.setAttribute("release.id", target);
        const r = await p.step("switch", async (sp) => {
          const x = await restoreRelease(s, req.registry, l, target, req.project, req.healthTimeoutSeconds, (n) => req.log(`rollback note    ${n}`));
          if (!x.health.ok) sp.fail(x.health.reasons.join("; "));
          return x;
        }, (x) => (x.health.ok ? `${target} runs on every task` : x.health.reasons.join("; ")), { "release.id": target });
        const err = r.health.ok ? undefined : new PipelineError("ROLLBACK_FAILED", `release ${target} does not converge: ${r.health.reasons.join("; ")}`, "`docker stack ps <project>` on the manager shows the failing tasks; `status` lists the kept releases");
        const rec = rollbackRecord({ target, current, history, by: req.by, images: r.shape.images, health: r.health, durations: p.durations, failure: err });
        await p.step("record", () => record(s, l, rec));
        if (err) throw err;
        return { release: target, ...(current ? { previous: current } : {}), images: r.shape.images, durations: p.durations };
      });
    });
  });
}
