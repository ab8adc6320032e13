/**
 * The compose target: one VPS, `docker compose` in the deploy folder. Its
 * steps (preflight, pull with a throwaway login, jobs with `compose run`, the
 * switch through `up` or the edge's rollover, the health wait on docker's
 * events) and the target object the flow drives.
 */
import { serverPlatformProbe } from "../../core/server/platforms.js";
import { posix } from "node:path";
import { jobEnvOverride, type ReleaseShape } from "../../core/compose/compose.js";
import { DEFAULTS, MIN_FREE_MIB } from "../../core/defaults.js";
import { BoundedOutput } from "../../core/day-two/output.js";
import { PipelineError, isPipelineError, tail } from "../../core/errors.js";
import { JOB_PROFILE, type JobSpec } from "../../core/compose/extension.js";
import { assessHealth, parseComposePs, type ContainerState, type HealthOutcome } from "../../core/release/health.js";
import { dockerAuthConfig } from "../../core/registry/registry-auth.js";
import { pullError, registryError } from "../../core/registry/registry-errors.js";
import {
  AUTH_SETUP_FAILED_EXIT,
  LOGIN_FAILED_EXIT,
  PULL_FAILED_EXIT,
  pullImages,
} from "../../core/registry/registry-commands.js";
import { JOB_TIMEOUT_EXIT, ps, runJob, switchTo, up, watchEvents } from "../../core/release/release-commands.js";
import {
  composeMajor,
  parsePreflight,
  preflightProbe,
  releaseDir,
  type Layout,
} from "../../core/server/server-commands.js";
import { checkEdge, resolvedAtCheck, reviveEdge, switchWithEdge } from "../edge/edge.js";
import { releaseCompose } from "../releases.js";
import type { SshSession } from "../ssh.js";
import type { RegistryLogin } from "../remote-target.js";
import type { Target } from "./target.js";

export interface PreflightReport {
  docker: string;
  compose: string;
  freeMiB: number;
}

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
    const found = facts.composeV1
      ? `only docker-compose ${facts.composeV1} (v1, the old Python tool) is installed`
      : "no compose is installed";
    throw new PipelineError(
      "COMPOSE_V2_MISSING",
      `\`docker compose\` (v2) is not available on the VPS for ${user}: ${found}`,
      "install the compose v2 plugin (Docker's `docker-compose-plugin` package, or the binary in ~/.docker/cli-plugins/docker-compose); the pipeline never uses v1 `docker-compose`",
    );
  }
  const freeMiB = facts.freeKb === undefined ? -1 : Math.floor(facts.freeKb / 1024);
  if (freeMiB >= 0 && freeMiB < MIN_FREE_MIB) {
    throw new PipelineError(
      "DISK_LOW",
      `only ${freeMiB} MiB free under ${l.dir} on the VPS (need ${MIN_FREE_MIB})`,
      "free space: `docker image prune -a` removes images no container uses",
    );
  }
  return { docker: facts.docker, compose: facts.compose ?? "", freeMiB };
}

export async function composePs(s: SshSession, l: Layout, project: string, file?: string): Promise<ContainerState[]> {
  const out = await s.run(ps(l, project, file), "docker compose ps");
  return parseComposePs(out);
}

/**
 * Pull `images` (and make sure `ensure` are present) with a throwaway docker
 * config that holds only `login`. Returns the images that were pulled.
 */
export async function pull(
  s: SshSession,
  login: RegistryLogin | undefined,
  images: readonly string[],
  ensure: readonly string[],
): Promise<string[]> {
  const host = login?.host ?? "the registry";
  const r = await s.exec(pullImages(login?.host ?? "", images, ensure), { stdin: dockerAuthConfig(login) });
  if (r.code === LOGIN_FAILED_EXIT) throw registryError("login", host, r.stderr);
  if (r.code === PULL_FAILED_EXIT) {
    const failed = r.stdout
      .split("\n")
      .filter((x) => x.startsWith("failed "))
      .map((x) => x.slice("failed ".length));
    throw failed[0] ? pullError(failed[0], r.stderr, login?.host) : registryError("pull", host, r.stderr);
  }
  if (r.code === AUTH_SETUP_FAILED_EXIT)
    throw new PipelineError(
      "PULL_FAILED",
      `cannot make a throwaway docker config in the deploy user's home: ${tail(r.stderr, 2)}`,
      "the deploy user's home must be writable (and not full)",
    );
  if (r.code !== 0)
    throw new PipelineError(
      "PULL_FAILED",
      `pull failed with exit code ${r.code}: ${tail(r.stderr, 4)}`,
      "read the output above",
    );
  return r.stdout
    .split("\n")
    .filter((x) => x.startsWith("pulled "))
    .map((x) => x.slice("pulled ".length));
}

/** Run release-phase jobs one after the other; the first failure stops with JOB_FAILED and the job's log tail. */
export async function runJobs(
  s: SshSession,
  l: Layout,
  project: string,
  id: string,
  jobs: readonly JobSpec[],
  log: (line: string) => void = () => {},
): Promise<string[]> {
  const done: string[] = [];
  const rel = releaseDir(l, id);
  // relative to the deploy folder, where the job runs
  const override = jobEnvOverride(await releaseCompose(s, l, id), posix.join(posix.relative(l.dir, rel), ".env"));
  if (override) await s.upload(`${rel}/jobs.override.yml`, override, "600");
  for (const j of jobs) {
    // printed as it comes, so a long migration is never silent; the tail is kept for a failure
    const out = new BoundedOutput(DEFAULTS.maxOutputBytes, log, `job ${j.service} | `);
    const r = await s.start(
      runJob(l, {
        id,
        project,
        service: j.service,
        timeoutSeconds: j.timeoutSeconds,
        profile: JOB_PROFILE,
        override: override ? `${rel}/jobs.override.yml` : undefined,
      }),
      { onStdout: (c) => out.push(c) },
    ).result;
    // compose's own lines (networks created) are not the job's output: kept for a failure only
    const logs = tail(`${out.end()}${r.stderr ? `\n${r.stderr}` : ""}`, 15);
    if (r.code === JOB_TIMEOUT_EXIT) {
      throw new PipelineError(
        "JOB_FAILED",
        `release-phase job \`${j.service}\` did not finish within ${j.timeoutSeconds}s and was stopped; nothing that runs was changed\n${logs}`,
        `make the job faster or raise \`x-vps-pipeline.job.timeout\` for ${j.service}`,
      );
    }
    if (r.code !== 0) {
      throw new PipelineError(
        "JOB_FAILED",
        `release-phase job \`${j.service}\` exited with code ${r.code}; nothing that runs was changed\n${logs}`,
        `fix ${j.service} (its last output is above) and deploy again; the release that runs was not touched`,
      );
    }
    done.push(j.service);
  }
  return done;
}

/**
 * Look until every expected service runs (and is healthy where it has a check),
 * something fails for good, or time runs out. A look happens whenever docker
 * reports an event of the project (a start, a health change, an exit), and at
 * least every second in case an event was missed.
 */
export async function waitHealthy(
  s: SshSession,
  l: Layout,
  project: string,
  shape: ReleaseShape,
  timeoutSeconds: number,
): Promise<HealthOutcome> {
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
      if (Date.now() >= deadline)
        return { ok: false, reasons: [`not healthy after ${timeoutSeconds}s: ${verdict.pending.join("; ")}`] };
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

const images = (shape: ReleaseShape) => Object.values(shape.images).filter(Boolean);
const viaEdge = (shape: ReleaseShape, leaving?: ReleaseShape) =>
  shape.http.length > 0 || (leaving?.http.length ?? 0) > 0;

export const composeTarget: Target = {
  words: {
    where: "VPS",
    switched: (r) =>
      r.shape.http.length ? `${r.shape.http.map((h) => h.service).join(", ")} rolled over behind the edge` : "",
    healthy: "all services up",
    notUp: "is not healthy",
    backUp: ", which is healthy and serving",
    backDown: ", which is NOT healthy either",
    firstFailedHint: "fix the release and deploy again; `docker compose logs` on the VPS shows why it failed",
    rolledBackHint:
      "the previous version is running; look at the failed release with `docker compose logs` on the VPS, fix it and deploy again",
    nothingUpHint:
      "nothing healthy runs now: `docker compose logs` on the VPS, then deploy a fixed release or `rollback --to` an older one (`status` lists them)",
    rollbackFailedHint:
      "look at `docker compose logs` on the VPS; `status` shows the kept releases and whether their images are present",
  },
  admit: () => [],
  preflight: async (c) => {
    const r = await runPreflight(c.s, c.l, c.user);
    return `docker ${r.docker}, compose ${r.compose}, ${r.freeMiB} MiB free`;
  },
  platforms: async (c) => [
    { where: "the VPS", platform: (await c.s.run(serverPlatformProbe(), "reading the server's platform")).trim() },
  ],
  prepare: async () => {},
  check: async (c, r) => {
    if (r.shape.http.length === 0) return;
    const x = await c.step(
      "edge",
      () => checkEdge(c, r),
      (x) => (x.newPorts.length ? `host port(s) ${x.newPorts.join(", ")} free for the edge` : "routes fit the edge"),
    );
    x.notes.forEach((n) => c.note(n));
  },
  pull: async (c, r, previous) => {
    // The previous release's images are made present too: the automatic rollback must never lack them.
    const restore = previous ? images(previous.shape) : [];
    const pulled = await pull(c.s, c.login, images(r.shape), restore);
    return `${pulled.length} image(s) pulled${previous ? `; ${previous.id}'s images present for a rollback` : ""}`;
  },
  pullBack: async (c, r) => {
    const login = c.login; // the registry of the release's own images, or none (rollback.ts)
    const pulled = await pull(c.s, login, [], images(r.shape)).catch((e: unknown) => {
      if (login || !isPipelineError(e)) throw e;
      throw new PipelineError(
        e.code,
        `the server lost images of release ${r.id} and pulling them back without credentials failed: ${e.message}`,
        `pass the pull token (vps --pull-token=…) so rollback can pull them back; ${e.hint}`,
        { cause: e },
      );
    });
    return pulled.length ? `${pulled.length} image(s) pulled back` : "all images present";
  },
  jobs: (c, r, jobs) => runJobs(c.s, c.l, c.project, r.id, jobs, (x) => c.p.line(x)),
  switch: async (c, r, leaving) => {
    // any project's deploy or rollback brings back a stopped edge: the others behind it must not wait for their own
    // deploy (behind the edge, the switch does it under the lock it takes anyway)
    if (!viaEdge(r.shape, leaving)) {
      const revived = await reviveEdge(c.s, c.edge);
      if (revived) c.note(revived);
      return switchAndUp(c.s, c.l, c.project, r.id);
    }
    // the other services stop-first, then each service behind the edge rolled over
    const h = await switchWithEdge({
      s: c.s,
      l: c.l,
      project: c.project,
      id: r.id,
      shape: r.shape,
      opts: c.edge,
      timeoutSeconds: c.healthTimeoutSeconds,
      server: c.server,
      waitOthers: (sh) => waitHealthy(c.s, c.l, c.project, sh, c.healthTimeoutSeconds),
      time: (part, seconds) => c.p.part(`switch.${part}`, seconds),
      resolved: resolvedAtCheck(r),
      revived: (note) => c.note(note),
    });
    return h.ok ? undefined : h.reasons.join("; ");
  },
  wait: (c, r) => waitHealthy(c.s, c.l, c.project, r.shape, c.healthTimeoutSeconds),
};
