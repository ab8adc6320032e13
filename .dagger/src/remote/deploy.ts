/**
 * Ship a release to the VPS over one SSH connection, following DESIGN.md:
 * lock, preflight, upload, pull (nothing running changed yet), switch, health,
 * automatic rollback, history, pruning. Credentials never outlive the pull.
 */
import { PipelineError, isPipelineError } from "../core/errors.js";
import { releaseImages } from "../core/compose.js";
import { registryError } from "../core/registry-errors.js";
import {
  LOGIN_FAILED_EXIT, PULL_FAILED_EXIT, appendHistory, layout, listReleases, loginAndPull, mkdirReleases, releaseDir,
  removeReleases, snapshotEnv, sweepStaleAuth, readOptionalFile, type Layout,
} from "../core/remote-commands.js";
import { historyLine, parseHistory, releaseId, releasesToPrune, RELEASE_ID, type HistoryRecord } from "../core/release.js";
import { connect, type SshOptions, type SshSession } from "./ssh.js";
import { StepTimer, acquireLock, readCurrent, runPreflight, switchAndUp, waitHealthy, type HealthOutcome, type Log } from "./steps.js";

export interface RegistryLogin {
  host: string;
  user: string;
  token: string;
}

export interface RemoteTarget {
  ssh: SshOptions;
  /** Deploy directory, absolute or relative to the deploy user's home. */
  dir: string;
  project: string;
  lockTimeoutSeconds: number;
}

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
  /** Who deploys, for the lock holder and the history (e.g. `github-actions[bot] run 42`). */
  by: string;
  log: Log;
  /** Called as each step starts (tests use it to break things at a chosen moment). */
  onStep?: (step: string) => void;
}

export interface DeployResult {
  release: string;
  previous?: string;
  durations: Record<string, number>;
}

/** Open the connection, run `body` with it, always close it. */
export async function withSession<T>(ssh: SshOptions, timer: StepTimer, body: (s: SshSession) => Promise<T>): Promise<T> {
  const s = await timer.step("connect", () => connect(ssh));
  try {
    return await body(s);
  } finally {
    s.close();
  }
}

function releaseCompose(s: SshSession, l: Layout, id: string): Promise<string> {
  return s.run(readOptionalFile(`${releaseDir(l, id)}/docker-compose.yml`), `reading release ${id}`);
}

/** Make a kept release current again and wait for it: the rollback of a failed deploy and `rollback` itself. */
async function switchAndWait(s: SshSession, l: Layout, project: string, id: string, timeoutSeconds: number): Promise<HealthOutcome> {
  const services = Object.keys(releaseImages(await releaseCompose(s, l, id)));
  const upFailure = await switchAndUp(s, l, project, id);
  return upFailure ? { ok: false, reasons: [upFailure] } : waitHealthy(s, l, project, services, timeoutSeconds);
}

async function record(s: SshSession, l: Layout, r: HistoryRecord): Promise<void> {
  await s.run(appendHistory(l), "appending to the release history", { stdin: historyLine(r) });
}

async function prune(s: SshSession, l: Layout, keep: number, protect: (string | undefined)[]): Promise<string[]> {
  const ids = (await s.run(listReleases(l), "listing releases")).split("\n").map((x) => x.trim());
  const doomed = releasesToPrune(ids, keep, protect);
  if (doomed.length > 0) await s.run(removeReleases(l, doomed), "pruning old releases");
  return doomed;
}

export async function deploy(req: DeployRequest): Promise<DeployResult> {
  const l = layout(req.dir);
  const timer = new StepTimer(req.log, "deploy");
  const services = Object.keys(releaseImages(req.compose));
  const begin = (step: string) => req.onStep?.(step);
  return withSession(req.ssh, timer, async (s) => {
    // Preflight first: a server that cannot run the release is left exactly as it was.
    begin("preflight");
    await timer.step("preflight", () => runPreflight(s, l, req.ssh.user), (p) => `docker ${p.docker}, compose ${p.compose}, ${p.freeMiB} MiB free`);
    begin("lock");
    const lock = await timer.step("lock", async () => {
      await s.run(mkdirReleases(l), "creating the deploy directory", { hint: `the deploy user must be able to create ${l.dir}` });
      return acquireLock(s, l, req.lockTimeoutSeconds, `${req.by} (sha ${req.sha.slice(0, 7)}, since ${new Date().toISOString()})`);
    }, (held) => held.waitedFor);
    try {
      await s.run(sweepStaleAuth(l), "removing leftover registry credentials");
      const previous = await readCurrent(s, l);
      // Taken under the lock with millisecond precision: two deploys never share an id.
      const id = releaseId(new Date(), req.sha);
      const rel = releaseDir(l, id);
      const base: Omit<HistoryRecord, "result" | "durations"> = {
        release: id, action: "deploy", at: new Date().toISOString(), by: req.by, sha: req.sha, images: releaseImages(req.compose),
        ...(previous ? { previous } : {}),
      };
      const fail = async (reason: string, e: PipelineError): Promise<never> => {
        await record(s, l, { ...base, result: "failed", reason, durations: timer.durations }).catch(() => undefined);
        throw e;
      };

      begin("upload");
      await timer.step("upload", async () => {
        await s.upload(`${rel}/docker-compose.yml`, req.compose, "600");
        if (req.env !== undefined) await s.upload(`${rel}/.env`, req.env, "600");
        else await s.run(snapshotEnv(l, id), "keeping the server's .env with the release");
      });

      begin("pull");
      try {
        await timer.step("pull", async () => {
          const r = await s.exec(loginAndPull(l, id, req.project, req.registry), req.registry ? { stdin: req.registry.token } : {});
          if (r.code === LOGIN_FAILED_EXIT) throw registryError("login", req.registry?.host ?? "", r.stderr);
          if (r.code === PULL_FAILED_EXIT) throw registryError("pull", req.registry?.host ?? "the registry", r.stderr);
          if (r.code !== 0) throw new PipelineError("PULL_FAILED", `pull failed with exit code ${r.code}: ${r.stderr.trim()}`, "read the output above");
        });
      } catch (e) {
        const err = isPipelineError(e) ? e : new PipelineError("PULL_FAILED", String(e), "read the output above", { cause: e });
        return await fail(`${err.code}: nothing running was changed`, err);
      }

      begin("switch");
      const upFailure = await timer.step("switch", () => switchAndUp(s, l, req.project, id));
      begin("health");
      const health = upFailure
        ? { ok: false as const, reasons: [upFailure] }
        : await timer.step("health", () => waitHealthy(s, l, req.project, services, req.healthTimeoutSeconds), (h) => (h.ok ? "all services up" : h.reasons.join("; ")));

      if (!health.ok) {
        const why = health.reasons.join("; ");
        if (!previous) {
          return await fail(why, new PipelineError("DEPLOY_FAILED", `release ${id} is not healthy and there is no previous release to return to: ${why}`, "fix the release and deploy again; `docker compose logs` on the VPS shows why it failed"));
        }
        begin("rollback");
        const back = await timer.step("rollback", () => switchAndWait(s, l, req.project, previous, req.healthTimeoutSeconds), (h) => (h.ok ? `${previous} serving again` : "previous release unhealthy too"));
        await record(s, l, { ...base, result: "rolled-back", reason: why, rolledBackTo: previous, rollbackHealthy: back.ok, durations: timer.durations });
        throw new PipelineError(
          "DEPLOY_ROLLED_BACK",
          `release ${id} failed (${why}); rolled back to ${previous}${back.ok ? ", which is healthy and serving" : `, which is NOT healthy either: ${back.reasons.join("; ")}`}`,
          "the previous version is running; look at the failed release with `docker compose logs` on the VPS, fix it and deploy again",
        );
      }

      begin("record");
      await timer.step("record", () => record(s, l, { ...base, result: "ok", durations: timer.durations }));
      await timer.step("prune", () => prune(s, l, req.keepReleases, [id, previous]), (gone) => `${gone.length} old release(s) removed`);
      return { release: id, ...(previous ? { previous } : {}), durations: timer.durations };
    } finally {
      await lock.release();
    }
  });
}

export interface RollbackRequest extends RemoteTarget {
  /** Release id to return to; default: the release before the current one in the history. */
  to?: string;
  healthTimeoutSeconds: number;
  by: string;
  log: Log;
}

/** Make an earlier release current again (its images must still be on the server). */
export async function rollback(req: RollbackRequest): Promise<DeployResult> {
  const l = layout(req.dir);
  const timer = new StepTimer(req.log, "rollback");
  return withSession(req.ssh, timer, async (s) => {
    await timer.step("preflight", () => runPreflight(s, l, req.ssh.user));
    if ((await s.exec(["test", "-d", l.releases])).code !== 0) {
      throw new PipelineError("RELEASE_NOT_FOUND", `nothing was ever deployed to ${l.dir} on the VPS`, "check --project and --dir; deploy first");
    }
    const lock = await timer.step("lock", () => acquireLock(s, l, req.lockTimeoutSeconds, `${req.by} (rollback, since ${new Date().toISOString()})`));
    try {
      const current = await readCurrent(s, l);
      const ids = (await s.run(listReleases(l), "listing releases")).split("\n").filter((x) => RELEASE_ID.test(x)).sort();
      const target = req.to ?? (await previousGood(s, l, current));
      if (!target || !ids.includes(target)) {
        throw new PipelineError("RELEASE_NOT_FOUND", `no release ${target ?? "before the current one"} on the server`, `releases kept: ${ids.join(", ") || "none"}; pass one of them`);
      }
      const compose = await releaseCompose(s, l, target);
      const health = await timer.step("switch", () => switchAndWait(s, l, req.project, target, req.healthTimeoutSeconds));
      const rec: HistoryRecord = {
        release: target, action: "rollback", at: new Date().toISOString(), by: req.by, sha: target.split("-").pop() ?? "",
        images: releaseImages(compose), result: health.ok ? "ok" : "failed", durations: timer.durations,
        ...(current ? { previous: current } : {}), ...(health.ok ? {} : { reason: health.reasons.join("; ") }),
      };
      await timer.step("record", () => record(s, l, rec));
      if (!health.ok) throw new PipelineError("ROLLBACK_FAILED", `release ${target} is not healthy: ${rec.reason}`, "look at `docker compose logs` on the VPS; the images of old releases may have been pruned by `docker image prune`");
      return { release: target, ...(current ? { previous: current } : {}), durations: timer.durations };
    } finally {
      await lock.release();
    }
  });
}

/** The last release before `current` that was deployed successfully. */
async function previousGood(s: SshSession, l: Layout, current: string | undefined): Promise<string | undefined> {
  const history = parseHistory(await s.run(readOptionalFile(l.history), "reading the history"));
  const good = history.filter((h) => h.result === "ok" && h.release !== current).map((h) => h.release);
  return good.pop();
}
