/**
 * The swarm target: the same SSH path, lock, releases and history as one VPS,
 * on a manager node, with `docker stack deploy` instead of compose. Swarm rolls
 * each service itself (start-first or stop-first, see core/swarm/swarm-release.ts); this
 * waits until every task of the release runs, and when the release fails
 * deploys the previous one again, as on one VPS.
 */
import { nodePlatformsProbe, parseNodePlatforms } from "../../core/server/platforms.js";
import type { ReleaseShape } from "../../core/compose/compose.js";
import { envExports } from "../../core/compose/env-file.js";
import { PipelineError, asPipelineError, tail } from "../../core/errors.js";
import { pullError, registryError } from "../../core/registry/registry-errors.js";
import { dockerAuthConfig } from "../../core/registry/registry-auth.js";
import { AUTH_SETUP_FAILED_EXIT, LOGIN_FAILED_EXIT, checkPullAccess } from "../../core/registry/registry-commands.js";
import { readOptionalFile, releaseDir, type Layout } from "../../core/server/server-commands.js";
import { switchTo } from "../../core/release/release-commands.js";
import {
  forceUpdate,
  parseSwarmProbe,
  removeServices,
  serviceLogs,
  stackDeploy,
  stackState,
  swarmProbe,
} from "../../core/swarm/swarm-commands.js";
import { assessConvergence, parseStackState, type Expected, type StackState } from "../../core/swarm/swarm-state.js";
import {
  renderSwarmRelease,
  updateWindowSeconds,
  withJobs,
  type SwarmRelease,
} from "../../core/swarm/swarm-release.js";
import type { JobSpec } from "../../core/compose/extension.js";
import { MIN_FREE_MIB } from "../../core/defaults.js";
import type { HealthOutcome } from "../../core/release/health.js";
import type { SshSession } from "../ssh.js";
import type { RegistryLogin } from "../remote-target.js";
import type { Context, Release, Target } from "./target.js";

export const STACK_FILE = "stack.yml";
export const JOBS_FILE = "stack-jobs.yml";

export async function swarmPreflight(
  s: SshSession,
  l: Layout,
  user: string,
): Promise<{ docker: string; freeMiB: number }> {
  const r = await s.exec(swarmProbe(l));
  const f = parseSwarmProbe(r.stdout);
  if (f.docker === undefined) {
    const why = f.dockerError ?? tail(r.stderr, 1);
    throw new PipelineError(
      "DOCKER_UNREACHABLE",
      `docker is not usable by ${user} on the manager: ${why}`,
      /permission denied/i.test(why)
        ? `add the user to the docker group (\`sudo usermod -aG docker ${user}\`)`
        : "install Docker Engine and start it",
    );
  }
  if (f.swarm !== "active" || !f.manager) {
    throw new PipelineError(
      "SWARM_NOT_MANAGER",
      f.swarm !== "active"
        ? `the host is not part of a swarm (swarm state: ${f.swarm || "unknown"})`
        : "the host is a swarm worker: stacks are deployed from a manager",
      f.swarm !== "active"
        ? "`docker swarm init` on the first server (then `docker swarm join` the others), or drop --orchestrator=swarm to deploy with compose"
        : "point --host at a manager node (`docker node ls` on a manager lists them)",
    );
  }
  const freeMiB = f.freeKb === undefined ? -1 : Math.floor(f.freeKb / 1024);
  if (freeMiB >= 0 && freeMiB < MIN_FREE_MIB)
    throw new PipelineError(
      "DISK_LOW",
      `only ${freeMiB} MiB free under ${l.dir} on the manager (need ${MIN_FREE_MIB})`,
      "free space on the manager",
    );
  return { docker: f.docker, freeMiB };
}

/** The services a converged release runs (jobs are not part of the stack). */
export function expectedServices(shape: ReleaseShape): Expected[] {
  return [...shape.long, ...shape.once].map((service) => ({ service, image: shape.images[service] ?? "" }));
}

export async function readStack(s: SshSession, project: string): Promise<StackState> {
  return parseStackState(await s.run(stackState(project), "reading the stack's services and tasks"), project);
}

/**
 * Put a release's stack files beside its compose file: the stack, the jobs'
 * stack, and `stack.env` (the release's `.env` as exports, for interpolation).
 * `env` is the `.env` when the caller has it; otherwise the release's own is read.
 */
export async function prepareStack(
  s: SshSession,
  l: Layout,
  id: string,
  sw: SwarmRelease,
  env?: string,
): Promise<void> {
  const rel = releaseDir(l, id);
  const envText = env ?? (await s.run(readOptionalFile(`${rel}/.env`), `reading release ${id}'s .env`));
  await Promise.all([
    s.upload(`${rel}/${STACK_FILE}`, sw.stack, "600"),
    s.upload(`${rel}/stack.env`, envExports(envText), "600"),
    ...(sw.jobsStack ? [s.upload(`${rel}/${JOBS_FILE}`, sw.jobsStack, "600")] : []),
  ]);
}

/**
 * Before anything changes: the pull login works from the manager and every
 * image of the release is there to pull (its manifest read, nothing pulled:
 * the nodes pull). A bad token or a missing image stops the deploy here.
 */
export async function checkImages(
  s: SshSession,
  login: RegistryLogin | undefined,
  images: readonly string[],
): Promise<number> {
  const host = login?.host ?? "";
  const r = await s.exec(checkPullAccess(host, images), { stdin: dockerAuthConfig(login) });
  if (r.code === LOGIN_FAILED_EXIT) throw registryError("login", host || "the registry", r.stderr);
  if (r.code !== 0)
    throw new PipelineError(
      "PULL_FAILED",
      `cannot check the images from the manager: ${tail(r.stderr, 2)}`,
      "the deploy user's home must be writable",
    );
  const failed = r.stdout.split("\n").filter((x) => x.startsWith("fail "));
  if (failed.length > 0) {
    const [, ref, ...why] = failed[0]!.split(" ");
    throw ref
      ? pullError(ref, why.join(" "), login?.host)
      : registryError("pull", host || "the registry", why.join(" "), "the images");
  }
  return images.length;
}

/** `docker stack deploy` of a release's file; a refused login and other failures explained. */
/** `docker stack deploy` of release `id`'s `file` with the context's login. */
export async function deployStack(
  c: Pick<Context, "s" | "l" | "login" | "project">,
  id: string,
  file: string,
  prune: boolean,
): Promise<void> {
  const { s, l, login, project } = c;
  const host = login?.host ?? "";
  const command = stackDeploy(l, { loginHost: host, id, file, project, prune });
  let r = await s.exec(command, { stdin: dockerAuthConfig(login) });
  // a stack removed moments ago leaves its network being torn down on the nodes: swarm says "not found" for a few
  // seconds
  for (let i = 0; i < 5 && r.code !== 0 && /network \S+ not found/.test(r.stderr); i++) {
    await new Promise((res) => setTimeout(res, 2000));
    r = await s.exec(command, { stdin: dockerAuthConfig(login) });
  }
  if (r.code === LOGIN_FAILED_EXIT) throw registryError("login", host || "the registry", r.stderr);
  if (r.code === AUTH_SETUP_FAILED_EXIT)
    throw new PipelineError(
      "DEPLOY_FAILED",
      `cannot prepare release ${id} on the manager: ${tail(r.stderr, 2)}`,
      "the deploy user's home and the deploy folder must be writable",
    );
  if (r.code !== 0) {
    throw new PipelineError(
      "DEPLOY_FAILED",
      `docker stack deploy refused release ${id}: ${tail(r.stderr || r.stdout, 4)}`,
      "the message above names the field; docs/swarm.md lists what stack deploy accepts",
    );
  }
}

/**
 * Poll the stack until every expected service converged, swarm gave up, or time
 * ran out. An update left waiting on a node that went down is started again,
 * once per service, on the nodes left (`note` says so).
 */
export async function waitConverged(
  s: SshSession,
  project: string,
  expected: readonly Expected[],
  timeoutSeconds: number,
  note: (line: string) => void = () => {},
): Promise<HealthOutcome> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  const forced = new Set<string>();
  for (;;) {
    const c = assessConvergence(expected, await readStack(s, project));
    if (c.done) return { ok: true };
    for (const [service, nodes] of Object.entries(c.stuck)) {
      if (forced.has(service)) continue;
      forced.add(service);
      note(
        `${nodes.join(", ")} went down during the update of ${service}: swarm would wait for it forever; the update starts again on the nodes left`,
      );
      await s.run(forceUpdate(`${project}_${service}`), `restarting the update of ${service}`);
    }
    if (c.failed.length > 0) return { ok: false, reasons: c.failed };
    if (Date.now() >= deadline)
      return { ok: false, reasons: [`not converged after ${timeoutSeconds}s: ${c.waiting.join("; ")}`] };
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * Run the release's jobs: their stack file deployed into the project's stack
 * without `--prune` (so they share its networks and touch no running service),
 * each waited for until it completed, failed or ran out of time, then removed.
 */
export async function runSwarmJobs(
  c: Pick<Context, "s" | "l" | "login" | "project">,
  id: string,
  sw: SwarmRelease,
): Promise<string[]> {
  const { s, project } = c;
  const names = sw.jobs.map((j) => `${project}_${j.service}`);
  const done: string[] = [];
  // a job service left by a killed deploy would not run again
  await s.run(removeServices(names), "removing leftover jobs");
  try {
    await deployStack(c, id, JOBS_FILE, false);
    for (const j of sw.jobs) {
      const expected = [{ service: j.service, image: String(j.definition.image ?? "") }];
      const h = await waitConverged(s, project, expected, j.timeoutSeconds);
      if (!h.ok) {
        const logs = tail((await s.exec(serviceLogs(`${project}_${j.service}`, 15))).stdout, 15);
        const timedOut = h.reasons.some((r) => r.startsWith("not converged"));
        throw new PipelineError(
          "JOB_FAILED",
          `release-phase job \`${j.service}\`${timedOut ? ` did not finish within ${j.timeoutSeconds}s` : `: ${h.reasons.map((r) => r.replace(`${j.service}: `, "")).join("; ")}`}; nothing that runs was changed\n${logs}`,
          timedOut
            ? `make the job faster or raise \`x-vps-pipeline.job.timeout\` for ${j.service}`
            : `fix ${j.service} (its last output is above) and deploy again`,
        );
      }
      done.push(j.service);
    }
    return done;
  } finally {
    await s.exec(removeServices(names));
  }
}

/**
 * The swarm target: the host is a swarm manager and the release is a stack.
 * One per operation: it keeps each release as rendered for stack deploy, from
 * `prepare` to the jobs that run it.
 */
export function swarmTarget(): Target {
  const rendered = new Map<string, SwarmRelease>();
  const stackOf = (r: Release) => rendered.get(r.id) ?? renderSwarmRelease(r.compose);
  return {
    words: {
      where: "manager",
      switched: () => "stack deployed",
      healthy: "every task of the release runs",
      notUp: "did not converge",
      backUp: ", which runs on every task again",
      backDown: ", which does NOT converge either",
      firstFailedHint:
        "fix the release and deploy again; `docker service ps --no-trunc <project>_<service>` on the manager shows why its tasks failed",
      rolledBackHint:
        "the previous version is running; `docker service ps --no-trunc <project>_<service>` on the manager shows why the new tasks failed; fix it and deploy again",
      nothingUpHint:
        "nothing healthy runs now: `docker stack ps <project>` on the manager, then deploy a fixed release or `rollback --to` an older one (`status` lists them)",
      rollbackFailedHint:
        "`docker stack ps <project>` on the manager shows the failing tasks; `status` lists the kept releases",
    },
    // refused before any connection: what a swarm cannot run, named field by field
    admit: (compose) => renderSwarmRelease(compose).notes,
    preflight: async (c) => {
      const r = await swarmPreflight(c.s, c.l, c.user);
      return `docker ${r.docker} (swarm manager), ${r.freeMiB} MiB free`;
    },
    platforms: async (c) => parseNodePlatforms(await c.s.run(nodePlatformsProbe(), "reading the nodes' platforms")),
    prepare: async (c, r, jobs) => {
      const all = renderSwarmRelease(r.compose);
      const sw =
        jobs.length === all.jobs.length
          ? all
          : withJobs(
              all,
              jobs.map((j: JobSpec) => j.service),
            );
      rendered.set(r.id, sw);
      await prepareStack(c.s, c.l, r.id, sw, r.env);
    },
    check: async () => {},
    pull: async (c, r) => {
      const n = await checkImages(c.s, c.login, [...new Set(Object.values(r.shape.images).filter(Boolean))]);
      return `${n} image(s) readable with the pull login (each node pulls its own)`;
    },
    jobs: (c, r) => runSwarmJobs(c, r.id, stackOf(r)),
    switch: async (c, r) => {
      const sw = await c.s.exec(switchTo(c.l, r.id));
      if (sw.code !== 0) return `switching the files to release ${r.id} failed: ${tail(sw.stderr, 2)}`;
      try {
        await deployStack(c, r.id, STACK_FILE, true);
        return undefined;
      } catch (e) {
        const err = asPipelineError(e, "deploying the stack");
        if (err.code === "SSH_CONNECTION_LOST") throw err;
        return err.message.split("\n")[0] ?? err.code;
      }
    },
    // swarm keeps a service `updating` through its monitor windows: they are part of the budget, never a reason to give
    // up
    wait: (c, r) =>
      waitConverged(
        c.s,
        c.project,
        expectedServices(r.shape),
        c.healthTimeoutSeconds + updateWindowSeconds(stackOf(r).stack),
        c.note,
      ),
  };
}
