/**
 * The steps deploy, rollback, plan and status share: preflight, reading
 * releases, pulling with a throwaway login, release-phase jobs, switching
 * releases and waiting for health, the history.
 */
import { posix } from "node:path";
import { jobEnvOverride, releaseShape, type ReleaseShape } from "../core/compose.js";
import { PipelineError, isPipelineError, tail } from "../core/errors.js";
import { JOB_PROFILE, type JobSpec } from "../core/extension.js";
import { assessHealth, parseComposePs, type ContainerState } from "../core/health.js";
import { dockerAuthConfig } from "../core/registry-auth.js";
import { registryError } from "../core/registry-errors.js";
import {
  AUTH_SETUP_FAILED_EXIT, JOB_TIMEOUT_EXIT, LOGIN_FAILED_EXIT, PULL_FAILED_EXIT, appendHistory, composeMajor, parsePreflight, preflightProbe, ps,
  pullImages, readCurrentRelease, readOptionalFile, releaseDir, runJob, switchTo, up, watchEvents, type Layout,
} from "../core/remote-commands.js";
import { historyLine, type HistoryRecord } from "../core/release.js";
import { DEFAULTS } from "../core/defaults.js";
import { switchWithEdge, type EdgeOptions } from "./edge.js";
import type { SshSession } from "./ssh.js";
import type { RegistryLogin } from "./target.js";

export interface PreflightReport {
  docker: string;
  compose: string;
  freeMiB: number;
}

/** Below this, a pull can fill the disk halfway through and leave a broken deploy. */
export const MIN_FREE_MIB = 512;

export async function runPreflight(s: SshSession, l: Layout, user: string): Promise<PreflightReport> {
  const r = await s.exec(preflightProbe(l));
  const facts = parsePreflight(r.stdout);
  if (facts.docker === undefined) {
    const why = facts.dockerError ?? tail(r.stderr, 1);
    const denied = /permission denied/i.test(why);
    throw new PipelineError(
      "DOCKER_UNREACHABLE",
      `docker is not usable by ${user} on the VPS: ${why}`,
      denied
        ? `add the user to the docker group (\`sudo usermod -aG docker ${user}\`); it applies to new logins`
        : "install Docker Engine and start it (`sudo systemctl enable --now docker`)",
    );
  }
  const major = facts.compose !== undefined ? composeMajor(facts.compose) : undefined;
  if (major === undefined || major < 2) {
    const found = facts.composeV1 ? `only docker-compose ${facts.composeV1} (v1, the old Python tool) is installed` : "no compose is installed";
    throw new PipelineError(
      "COMPOSE_V2_MISSING",
      `\`docker compose\` (v2) is not available on the VPS for ${user}: ${found}`,
      "install the compose v2 plugin (Docker's `docker-compose-plugin` package, or the binary in ~/.docker/cli-plugins/docker-compose); the pipeline never uses v1 `docker-compose`",
    );
  }
  const freeMiB = facts.freeKb === undefined ? -1 : Math.floor(facts.freeKb / 1024);
  if (freeMiB >= 0 && freeMiB < MIN_FREE_MIB) {
    throw new PipelineError("DISK_LOW", `only ${freeMiB} MiB free under ${l.dir} on the VPS (need ${MIN_FREE_MIB})`, "free space: `docker image prune -a` removes images no container uses");
  }
  return { docker: facts.docker, compose: facts.compose ?? "", freeMiB };
}

export async function readCurrent(s: SshSession, l: Layout): Promise<string | undefined> {
  const id = (await s.run(readOptionalFile(l.current), "reading the current release")).trim();
  return id === "" ? undefined : id;
}

/** The current release and its compose file (its shape decides what a rollback needs), in one round trip. */
export async function readCurrentWithCompose(s: SshSession, l: Layout): Promise<{ id?: string; compose: string }> {
  const out = await s.run(readCurrentRelease(l), "reading the current release");
  const nl = out.indexOf("\n");
  const id = (nl < 0 ? out : out.slice(0, nl)).trim();
  return id ? { id, compose: nl < 0 ? "" : out.slice(nl + 1) } : { compose: "" };
}

/** A kept release's compose file ("" when it is not there). */
export function releaseCompose(s: SshSession, l: Layout, id: string): Promise<string> {
  return s.run(readOptionalFile(`${releaseDir(l, id)}/docker-compose.yml`), `reading release ${id}`);
}

export async function composePs(s: SshSession, l: Layout, project: string, file?: string): Promise<ContainerState[]> {
  const out = await s.run(ps(l, project, file), "docker compose ps");
  return parseComposePs(out);
}

export async function record(s: SshSession, l: Layout, r: HistoryRecord): Promise<void> {
  await s.run(appendHistory(l), "appending to the release history", { stdin: historyLine(r) });
}

/**
 * Pull `images` (and make sure `ensure` are present) with a throwaway docker
 * config that holds only `login`. Returns the images that were pulled.
 */
export async function pull(s: SshSession, login: RegistryLogin | undefined, images: readonly string[], ensure: readonly string[]): Promise<string[]> {
  const host = login?.host ?? "the registry";
  const r = await s.exec(pullImages(login?.host ?? "", images, ensure), { stdin: dockerAuthConfig(login) });
  if (r.code === LOGIN_FAILED_EXIT) throw registryError("login", host, r.stderr);
  if (r.code === PULL_FAILED_EXIT) throw registryError("pull", host, r.stderr);
  if (r.code === AUTH_SETUP_FAILED_EXIT) throw new PipelineError("PULL_FAILED", `cannot make a throwaway docker config in the deploy user's home: ${tail(r.stderr, 2)}`, "the deploy user's home must be writable (and not full)");
  if (r.code !== 0) throw new PipelineError("PULL_FAILED", `pull failed with exit code ${r.code}: ${tail(r.stderr, 4)}`, "read the output above");
  return r.stdout.split("\n").filter((x) => x.startsWith("pulled ")).map((x) => x.slice("pulled ".length));
}

/** Run release-phase jobs one after the other; the first failure stops with JOB_FAILED and the job's log tail. */
export async function runJobs(s: SshSession, l: Layout, project: string, id: string, jobs: readonly JobSpec[]): Promise<string[]> {
  const done: string[] = [];
  const rel = releaseDir(l, id);
  // relative to the deploy folder, where the job runs
  const override = jobEnvOverride(await releaseCompose(s, l, id), posix.join(posix.relative(l.dir, rel), ".env"));
  if (override) await s.upload(`${rel}/jobs.override.yml`, override, "600");
  for (const j of jobs) {
    const r = await s.exec(runJob(l, id, project, j.service, j.timeoutSeconds, JOB_PROFILE, override ? `${rel}/jobs.override.yml` : undefined));
    const logs = tail(`${r.stdout}${r.stderr}`, 15);
    if (r.code === JOB_TIMEOUT_EXIT) {
      throw new PipelineError("JOB_FAILED", `release-phase job \`${j.service}\` did not finish within ${j.timeoutSeconds}s and was stopped; nothing that runs was changed\n${logs}`, `make the job faster or raise \`x-vps-pipeline.job.timeout\` for ${j.service}`);
    }
    if (r.code !== 0) {
      throw new PipelineError("JOB_FAILED", `release-phase job \`${j.service}\` exited with code ${r.code}; nothing that runs was changed\n${logs}`, `fix ${j.service} (its last output is above) and deploy again; the release that runs was not touched`);
    }
    done.push(j.service);
  }
  return done;
}

export type HealthOutcome = { ok: true } | { ok: false; reasons: string[] };

/**
 * Look until every expected service runs (and is healthy where it has a check),
 * something fails for good, or time runs out. A look happens whenever docker
 * reports an event of the project (a start, a health change, an exit), and at
 * least every second in case an event was missed.
 */
export async function waitHealthy(s: SshSession, l: Layout, project: string, shape: ReleaseShape, timeoutSeconds: number): Promise<HealthOutcome> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let changed = false;
  let wake: () => void = () => {};
  const events = s.start(watchEvents(project), {
    keepStdinOpen: true,
    onStdout: () => {
      changed = true;
      wake();
    },
  });
  events.result.catch(() => undefined); // a watch that ends early only costs us the fast path
  try {
    for (;;) {
      changed = false;
      let containers: ContainerState[];
      try {
        containers = await composePs(s, l, project);
      } catch (e) {
        // A passing `compose ps` failure is not the release's fault: look again until the deadline.
        if (!isPipelineError(e, "REMOTE_COMMAND_FAILED")) throw e;
        containers = [];
      }
      const verdict = assessHealth(shape, containers);
      if (verdict.status === "ok") return { ok: true };
      if (verdict.status === "failed") return { ok: false, reasons: verdict.reasons };
      if (Date.now() >= deadline) return { ok: false, reasons: [`not healthy after ${timeoutSeconds}s: ${verdict.pending.join("; ")}`] };
      if (!changed) {
        await new Promise<void>((r) => {
          const timer = setTimeout(r, Math.min(1000, Math.max(0, deadline - Date.now())));
          wake = () => {
            clearTimeout(timer);
            r();
          };
        });
        wake = () => {};
      }
    }
  } finally {
    events.closeStdin();
  }
}

/** Make `id` current and start it; returns the reason when `up` itself fails. */
export async function switchAndUp(s: SshSession, l: Layout, project: string, id: string): Promise<string | undefined> {
  const sw = await s.exec(switchTo(l, id));
  if (sw.code !== 0) return `switching the files to release ${id} failed: ${tail(sw.stderr, 2)}`;
  const r = await s.exec(up(l, project));
  // compose prints progress on stderr too: its last line is the reason.
  return r.code === 0 ? undefined : `docker compose up failed: ${tail(r.stderr, 1).trim() || `exit code ${r.code}`}`;
}

export const DEFAULT_EDGE: EdgeOptions = { image: DEFAULTS.edgeImage, tls: DEFAULTS.edgeTls };

/**
 * Switch to release `id` and wait until it is healthy. With services behind the
 * edge in `id` or in `leaving` (the release it replaces), through the edge's
 * rollover; otherwise compose's own `up`.
 */
export async function switchRelease(s: SshSession, l: Layout, project: string, id: string, shape: ReleaseShape, leaving: ReleaseShape | undefined, edge: EdgeOptions | undefined, timeoutSeconds: number): Promise<HealthOutcome> {
  const wait = (sh: ReleaseShape) => waitHealthy(s, l, project, sh, timeoutSeconds);
  if (shape.http.length > 0 || (leaving?.http.length ?? 0) > 0) {
    const h = await switchWithEdge(s, l, project, id, shape, edge ?? DEFAULT_EDGE, timeoutSeconds, wait);
    return h.ok ? wait(shape) : h;
  }
  const upFailure = await switchAndUp(s, l, project, id);
  return upFailure ? { ok: false, reasons: [upFailure] } : wait(shape);
}

/** Make a kept release current and wait for it: the rollback of a failed deploy and `rollback` itself. */
export async function switchAndWait(s: SshSession, l: Layout, project: string, id: string, timeoutSeconds: number, edge?: EdgeOptions): Promise<HealthOutcome> {
  const [target, current] = await Promise.all([releaseCompose(s, l, id), readCurrentWithCompose(s, l)]);
  const leaving = current.id && current.id !== id ? releaseShape(current.compose) : undefined;
  return switchRelease(s, l, project, id, releaseShape(target), leaving, edge, timeoutSeconds);
}
