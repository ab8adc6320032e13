/**
 * The steps a deploy, a rollback and status share: timing and progress lines,
 * the lock, preflight, switching releases and waiting for health, the history.
 */
import { PipelineError, isPipelineError, tail } from "../core/errors.js";
import { assessHealth, parseComposePs, type ContainerState } from "../core/health.js";
import {
  LOCK_BUSY_EXIT, composeMajor, holdLock, parseDfAvailableKb, preflight, ps, readOptionalFile, switchTo, up,
  type Layout,
} from "../core/remote-commands.js";
import type { StepName } from "../core/release.js";
import type { SshSession } from "./ssh.js";

export type Log = (line: string) => void;

/** Runs steps, prints one line per step with its duration, keeps the durations for the history. */
export class StepTimer {
  readonly durations: Record<string, number> = {};
  constructor(private readonly log: Log, private readonly label: string) {}

  async step<T>(name: StepName, f: () => Promise<T>, detail?: (v: T) => string): Promise<T> {
    const t0 = performance.now();
    try {
      const v = await f();
      const s = this.add(name, t0);
      const note = detail ? detail(v) : "";
      this.log(`${this.label} ${name.padEnd(9)} ok     ${s.toFixed(2)}s${note ? `  ${note}` : ""}`);
      return v;
    } catch (e) {
      const s = this.add(name, t0);
      this.log(`${this.label} ${name.padEnd(9)} FAILED ${s.toFixed(2)}s`);
      throw e;
    }
  }

  private add(name: string, t0: number): number {
    const s = (performance.now() - t0) / 1000;
    this.durations[name] = Math.round(((this.durations[name] ?? 0) + s) * 1000) / 1000;
    return s;
  }
}

export interface HeldLock {
  /** How long the lock took, for the progress line (`waited 12.3s for …`). */
  waitedFor: string;
  release(): Promise<void>;
}

/** Take the deploy lock, waiting up to `waitSeconds`; when busy, fail naming the holder. */
export async function acquireLock(s: SshSession, l: Layout, waitSeconds: number, holder: string): Promise<HeldLock> {
  const t0 = performance.now();
  let seen = "";
  let onLocked: () => void = () => {};
  const locked = new Promise<"locked">((r) => (onLocked = () => r("locked")));
  const cmd = s.start(holdLock(l, waitSeconds, holder), {
    keepStdinOpen: true,
    onStdout: (chunk) => {
      seen += chunk;
      if (seen.includes("LOCKED")) onLocked();
    },
  });
  const first = await Promise.race([locked, cmd.result]);
  if (first === "locked") {
    const waited = (performance.now() - t0) / 1000;
    return {
      waitedFor: waited > 1 ? `waited ${waited.toFixed(1)}s for another deploy` : "",
      release: async () => {
        cmd.closeStdin();
        await cmd.result.catch(() => undefined);
      },
    };
  }
  if (first.code === LOCK_BUSY_EXIT) {
    const who = (await s.exec(readOptionalFile(l.holder))).stdout.trim() || "unknown";
    throw new PipelineError(
      "LOCK_BUSY",
      `another deploy holds the lock on ${l.dir} (waited ${waitSeconds}s): ${who}`,
      "wait for it to finish, or raise the lock timeout; if that deploy is gone, its lock went with its SSH connection",
    );
  }
  throw new PipelineError("LOCK_FAILED", `cannot take the deploy lock: ${first.stderr.trim()}`, "the VPS needs `flock` (package util-linux) and a writable deploy directory");
}

export interface PreflightReport {
  docker: string;
  compose: string;
  freeMiB: number;
}

/** Below this, a pull can fill the disk halfway through and leave a broken deploy. */
export const MIN_FREE_MIB = 512;

export async function runPreflight(s: SshSession, l: Layout, user: string): Promise<PreflightReport> {
  const docker = await s.exec(preflight.dockerServer());
  if (docker.code !== 0) {
    const denied = /permission denied/i.test(docker.stderr);
    throw new PipelineError(
      "DOCKER_UNREACHABLE",
      `docker is not usable by ${user} on the VPS: ${docker.stderr.trim().split("\n").pop() ?? ""}`,
      denied
        ? `add the user to the docker group (\`sudo usermod -aG docker ${user}\`); it applies to new logins`
        : "install Docker Engine and start it (`sudo systemctl enable --now docker`)",
    );
  }
  const compose = await s.exec(preflight.composeV2());
  const major = compose.code === 0 ? composeMajor(compose.stdout) : undefined;
  if (major === undefined || major < 2) {
    const v1 = await s.exec(preflight.composeV1());
    const found = v1.code === 0 ? `only docker-compose ${v1.stdout.trim()} (v1, the old Python tool) is installed` : "no compose is installed";
    throw new PipelineError(
      "COMPOSE_V2_MISSING",
      `\`docker compose\` (v2) is not available on the VPS for ${user}: ${found}`,
      "install the compose v2 plugin (Docker's `docker-compose-plugin` package, or the binary in ~/.docker/cli-plugins/docker-compose); the pipeline never uses v1 `docker-compose`",
    );
  }
  const df = await s.exec(preflight.diskFree(l));
  const kb = df.code === 0 ? parseDfAvailableKb(df.stdout) : undefined;
  const freeMiB = kb === undefined ? -1 : Math.floor(kb / 1024);
  if (freeMiB >= 0 && freeMiB < MIN_FREE_MIB) {
    throw new PipelineError("DISK_LOW", `only ${freeMiB} MiB free under ${l.dir} on the VPS (need ${MIN_FREE_MIB})`, "free space: `docker image prune -a` removes images no container uses");
  }
  return { docker: docker.stdout.trim(), compose: compose.stdout.trim(), freeMiB };
}

export async function readCurrent(s: SshSession, l: Layout): Promise<string | undefined> {
  const id = (await s.run(readOptionalFile(l.current), "reading the current release")).trim();
  return id === "" ? undefined : id;
}

export async function composePs(s: SshSession, l: Layout, project: string): Promise<ContainerState[]> {
  const out = await s.run(ps(l, project), "docker compose ps");
  return parseComposePs(out);
}

export type HealthOutcome = { ok: true } | { ok: false; reasons: string[] };

/** Poll until every expected service runs (and is healthy where it has a check), something fails for good, or time runs out. */
export async function waitHealthy(s: SshSession, l: Layout, project: string, services: readonly string[], timeoutSeconds: number): Promise<HealthOutcome> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    let containers: ContainerState[];
    try {
      containers = await composePs(s, l, project);
    } catch (e) {
      // A passing `compose ps` failure is not the release's fault: look again until the deadline.
      if (!isPipelineError(e, "REMOTE_COMMAND_FAILED")) throw e;
      containers = [];
    }
    const verdict = assessHealth(services, containers);
    if (verdict.status === "ok") return { ok: true };
    if (verdict.status === "failed") return { ok: false, reasons: verdict.reasons };
    if (Date.now() >= deadline) return { ok: false, reasons: [`not healthy after ${timeoutSeconds}s: ${verdict.pending.join("; ")}`] };
    await new Promise((r) => setTimeout(r, 500));
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
