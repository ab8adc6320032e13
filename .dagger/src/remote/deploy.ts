/**
 * Ship a release to the VPS over one SSH connection (docs/architecture.md):
 * preflight, lock, upload, pull (also what a rollback would need), release-phase
 * jobs, switch, health, automatic rollback, history, pruning. Nothing that runs
 * changes before the switch; after it, any failure leads back to the previous release.
 */
import { releaseShape } from "../core/compose.js";
import { PipelineError, asPipelineError } from "../core/errors.js";
import { layout, releaseDir, snapshotEnv } from "../core/remote-commands.js";
import { releaseId, type HistoryRecord } from "../core/release.js";
import { Progress, type Log } from "./progress.js";
import { withLock, withSession } from "./session.js";
import { checkEdge, switchWithEdge } from "./edge.js";
import { DEFAULT_EDGE, pull, readCurrentWithCompose, record, runJobs, runPreflight, switchAndUp, switchAndWait, waitHealthy, type HealthOutcome } from "./steps.js";
import type { RegistryLogin, RemoteTarget } from "./target.js";
import { prune, recordingEarlyFailures, rollBackFailedDeploy } from "./releases.js";
import { swarmDeploy } from "./swarm-deploy.js";
import { defaultTracing, inSpan } from "./trace.js";

export interface DeployRequest extends RemoteTarget {
  sha: string;
  /** The rendered release compose file (images pinned by digest). */
  compose: string;
  /** Production `.env`; when absent the server's own `.env` is kept (and snapshotted into the release). */
  env?: string;
  /** Credentials the VPS pulls with; absent for public images. */
  registry?: RegistryLogin;
  keepReleases: number;
  healthTimeoutSeconds: number;
  /** Who deploys, for the lock holder and the history (e.g. `octocat (GitHub run 42)`). */
  by: string;
  log: Log;
  /** Called as each step starts (tests use it to break things at a chosen moment). */
  onStep?: (step: string) => void;
}

export interface DeployResult {
  release: string;
  previous?: string;
  /** service → image of the release now running. */
  images: Record<string, string>;
  durations: Record<string, number>;
}

export async function deploy(req: DeployRequest): Promise<DeployResult> {
  if (req.orchestrator === "swarm") return swarmDeploy(req);
  const l = layout(req.dir);
  const shape = releaseShape(req.compose);
  const begin = (step: string) => req.onStep?.(step);
  return inSpan(req.tracing ?? defaultTracing(), "deploy", { "vps.project": req.project, "git.sha": req.sha }, (t, span) => {
    const p = new Progress(req.log, "deploy", t);
    return withSession(req.ssh, p, (s) => recordingEarlyFailures(s, l, p, { sha: req.sha, by: req.by, images: shape.images }, async (locked) => {
      // Preflight first: a server that cannot run the release is left exactly as it was.
      begin("preflight");
      await p.step("preflight", () => runPreflight(s, l, req.ssh.user), (r) => `docker ${r.docker}, compose ${r.compose}, ${r.freeMiB} MiB free`);
      begin("lock");
      const holder = `${req.by} (sha ${req.sha.slice(0, 7)}, since ${new Date().toISOString()})`;
      return withLock(s, l, p, req.lockTimeoutSeconds, holder, async () => {
        locked();
        const current = await readCurrentWithCompose(s, l);
        const previous = current.id;
        const previousShape = previous ? releaseShape(current.compose) : undefined;
        // Taken under the lock with millisecond precision: two deploys never share an id.
        const id = releaseId(new Date(), req.sha);
        span.setAttribute("release.id", id);
        if (previous) span.setAttribute("release.previous", previous);
        const rel = releaseDir(l, id);
        const compose = req.compose;
        const edge = req.edge ?? DEFAULT_EDGE;
        const viaEdge = shape.http.length > 0 || (previousShape?.http.length ?? 0) > 0;
        const base: Omit<HistoryRecord, "result" | "durations"> = {
          release: id, action: "deploy", at: new Date().toISOString(), by: req.by, sha: req.sha, images: shape.images,
          ...(previous ? { previous } : {}),
        };
        const fail = async (reason: string, e: PipelineError): Promise<never> => {
          await record(s, l, { ...base, result: "failed", reason, code: e.code, hint: e.hint, durations: p.durations }).catch(() => undefined);
          throw e;
        };

        // Before the switch: any failure leaves what runs untouched.
        try {
          begin("upload");
          // Two channels at once on the one connection: the files do not depend on each other.
          await p.step("upload", () => Promise.all([
            s.upload(`${rel}/docker-compose.yml`, compose, "600"),
            req.env !== undefined ? s.upload(`${rel}/.env`, req.env, "600") : s.run(snapshotEnv(l, id), "keeping the server's .env with the release"),
          ]), undefined, { "release.id": id });
          if (shape.http.length > 0) {
            begin("edge");
            await p.step("edge", () => checkEdge(s, l, req.project, id, shape, edge), (r) => (r.newPorts.length ? `host port(s) ${r.newPorts.join(", ")} free for the edge` : `routes fit the edge`));
          }
          begin("pull");
          // The previous release's images are made present too: the automatic rollback must never lack them.
          const restore = previousShape ? Object.values(previousShape.images).filter(Boolean) : [];
          await p.step("pull", async (sp) => {
            const pulled = await pull(s, req.registry, Object.values(shape.images).filter(Boolean), restore);
            sp.setAttribute("images.pulled", pulled.length);
            return pulled;
          }, (pulled) => `${pulled.length} image(s) pulled${restore.length ? `; ${previous}'s images present for a rollback` : ""}`, { "registry.host": req.registry?.host ?? "" });
          if (shape.jobs.length > 0) {
            begin("jobs");
            await p.step("jobs", () => runJobs(s, l, req.project, id, shape.jobs), (done) => `${done.join(", ")} done`, { "jobs": shape.jobs.map((j) => j.service).join(",") });
          }
        } catch (e) {
          const err = asPipelineError(e, "preparing the release");
          if (err.code === "SSH_CONNECTION_LOST") throw err;
          return await fail(`${err.code}: ${err.message.split("\n")[0]} (nothing running was changed)`, err);
        }

        // After the switch: whatever fails, the previous release comes back and the history says so.
        let health: HealthOutcome;
        try {
          begin("switch");
          const upFailure = await p.step("switch", async (sp) => {
            let f: string | undefined;
            if (viaEdge) {
              // the other services stop-first, then each service behind the edge rolled over
              const h = await switchWithEdge(s, l, req.project, id, shape, edge, req.healthTimeoutSeconds, (sh) => waitHealthy(s, l, req.project, sh, req.healthTimeoutSeconds));
              f = h.ok ? undefined : h.reasons.join("; ");
            } else f = await switchAndUp(s, l, req.project, id);
            if (f) sp.fail(f);
            return f;
          }, (f) => f ?? (viaEdge && shape.http.length ? `${shape.http.map((h) => h.service).join(", ")} rolled over behind the edge` : ""), { "release.id": id });
          begin("health");
          health = upFailure
            ? { ok: false, reasons: [upFailure] }
            : await p.step("health", async (sp) => {
              const h = await waitHealthy(s, l, req.project, shape, req.healthTimeoutSeconds);
              if (!h.ok) sp.fail(h.reasons.join("; "));
              return h;
            }, (h) => (h.ok ? "all services up" : h.reasons.join("; ")));
        } catch (e) {
          const err = asPipelineError(e, "switching to the release");
          if (err.code === "SSH_CONNECTION_LOST") throw err;
          health = { ok: false, reasons: [`${err.code}: ${err.message.split("\n")[0]}`] };
        }

        if (!health.ok) {
          const why = health.reasons.join("; ");
          if (!previous) {
            return await fail(why, new PipelineError("DEPLOY_FAILED", `release ${id} is not healthy and there is no previous release to return to: ${why}`, "fix the release and deploy again; `docker compose logs` on the VPS shows why it failed"));
          }
          begin("rollback");
          return await rollBackFailedDeploy(s, l, p, base, previous, why, async () => {
            if (previousShape?.jobs.some((j) => j.onRollback)) await runJobs(s, l, req.project, previous, previousShape.jobs.filter((j) => j.onRollback));
            return switchAndWait(s, l, req.project, previous, req.healthTimeoutSeconds, edge);
          }, {
            healthy: ", which is healthy and serving",
            unhealthy: ", which is NOT healthy either",
            hintHealthy: "the previous version is running; look at the failed release with `docker compose logs` on the VPS, fix it and deploy again",
            hintUnhealthy: "nothing healthy runs now: `docker compose logs` on the VPS, then deploy a fixed release or `rollback --to` an older one (`status` lists them)",
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
