/**
 * `rollback`: make a kept release current again. Its images are pulled back
 * first when the server lost them (`docker image prune -a`), with the same
 * throwaway login as a deploy; its jobs run again only when declared so.
 */
import { releaseShape } from "../core/compose.js";
import { PipelineError, isPipelineError } from "../core/errors.js";
import { loginForRelease } from "../core/images.js";
import { layout } from "../core/remote-commands.js";
import type { DeployResult } from "./deploy.js";
import { Progress, type Log } from "./progress.js";
import { withLock, withSession } from "./session.js";
import { chooseRollbackTarget, requireDeployed, rollbackRecord } from "./releases.js";
import { pull, record, releaseCompose, runJobs, runPreflight, switchAndWait } from "./steps.js";
import type { RegistryLogin, RemoteTarget } from "./target.js";
import { swarmRollback } from "./swarm-deploy.js";
import { defaultTracing, inSpan } from "./trace.js";

export interface RollbackRequest extends RemoteTarget {
  /** Release id to return to; default: the newest good release older than the current one. */
  to?: string;
  /** Credentials to pull the release's images back with, should the server have lost them; an empty host means the registry of the release's pinned images. */
  registry?: RegistryLogin;
  healthTimeoutSeconds: number;
  by: string;
  log: Log;
}

export async function rollback(req: RollbackRequest): Promise<DeployResult> {
  if (req.orchestrator === "swarm") return swarmRollback(req);
  const l = layout(req.dir);
  return inSpan(req.tracing ?? defaultTracing(), "rollback", { "vps.project": req.project }, (t, span) => {
    const p = new Progress(req.log, "rollback", t);
    return withSession(req.ssh, p, async (s) => {
      await p.step("preflight", () => runPreflight(s, l, req.ssh.user), (r) => `docker ${r.docker}, compose ${r.compose}`);
      await requireDeployed(s, l, "VPS");
      return withLock(s, l, p, req.lockTimeoutSeconds, `${req.by} (rollback, since ${new Date().toISOString()})`, async () => {
        const { current, target, history } = await chooseRollbackTarget(s, l, req.to, "server");
        span.setAttribute("release.id", target);
        const shape = releaseShape(await releaseCompose(s, l, target));
        const images = Object.values(shape.images).filter(Boolean);
        const login = loginForRelease(req.registry, images);
        await p.step("pull", () => pull(s, login, [], images).catch((e: unknown) => {
          if (login || !isPipelineError(e)) throw e;
          throw new PipelineError(e.code, `the server lost images of release ${target} and pulling them back without credentials failed: ${e.message}`, `pass the pull token (vps --pull-token=…) so rollback can pull them back; ${e.hint}`, { cause: e });
        }), (pulled) => (pulled.length ? `${pulled.length} image(s) pulled back` : "all images present"), { "release.id": target });
        const rerun = shape.jobs.filter((j) => j.onRollback);
        if (rerun.length > 0) await p.step("jobs", () => runJobs(s, l, req.project, target, rerun), (done) => `${done.join(", ")} done`);
        const health = await p.step("switch", async (sp) => {
          const h = await switchAndWait(s, l, req.project, target, req.healthTimeoutSeconds, req.edge);
          if (!h.ok) sp.fail(h.reasons.join("; "));
          return h;
        }, (h) => (h.ok ? `${target} is healthy` : h.reasons.join("; ")), { "release.id": target });
        const err = health.ok ? undefined : new PipelineError("ROLLBACK_FAILED", `release ${target} is not healthy: ${health.reasons.join("; ")}`, "look at `docker compose logs` on the VPS; `status` shows the kept releases and whether their images are present");
        const rec = rollbackRecord({ target, current, history, by: req.by, images: shape.images, health, durations: p.durations, failure: err });
        await p.step("record", () => record(s, l, rec));
        if (err) throw err;
        return { release: target, ...(current ? { previous: current } : {}), images: shape.images, durations: p.durations };
      });
    });
  });
}
