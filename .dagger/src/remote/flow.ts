/**
 * What deploy and rollback share around their phases: the target chosen once,
 * one operation (a span, one SSH connection, a context every step reads), the
 * step helper that fires the caller's hook, and the one rule for errors.
 */
import type { Attributes } from "@opentelemetry/api";
import { releaseShape } from "../core/compose/compose.js";
import { type PipelineError, asPipelineError } from "../core/errors.js";
import { layout, readOptionalFile, releaseDir } from "../core/server/server-commands.js";
import type { StepName } from "../core/release/release.js";
import { Progress, type Log } from "./progress.js";
import { releaseCompose } from "./releases.js";
import { withSession } from "./session.js";
import type { SshOptions, SshSession } from "./ssh.js";
import { composeTarget } from "./targets/compose.js";
import { swarmTarget } from "./targets/swarm.js";
import type { Context, Release, Target } from "./targets/target.js";
import { DEFAULT_EDGE, type RegistryLogin, type RemoteTarget } from "./remote-target.js";
import { defaultTracing, inSpan } from "./trace.js";

export function targetFor(orchestrator: RemoteTarget["orchestrator"]): Target {
  return orchestrator === "swarm" ? swarmTarget() : composeTarget;
}

export interface OperationRequest extends RemoteTarget {
  healthTimeoutSeconds: number;
  log: Log;
  /** Called as each step starts (tests use it to break things at a chosen moment). */
  onStep?: (step: string) => void;
  /** How the connection is opened (default: ssh2; the unit tests give a scripted session). */
  connect?: (o: SshOptions) => Promise<SshSession>;
}

/**
 * One deploy, rollback, backup or restore: a span named `action`, one SSH connection, and the
 * context its steps share. The body's span gets ids as they are known.
 */
export function operation<T>(
  req: OperationRequest,
  action: "deploy" | "rollback" | "backup" | "restore" | "check-backup",
  login: RegistryLogin | undefined,
  attributes: Attributes,
  body: (c: Context, setAttribute: (k: string, v: string) => void) => Promise<T>,
): Promise<T> {
  return inSpan(
    req.tracing ?? defaultTracing(),
    action,
    { "vps.project": req.project, ...(req.orchestrator === "swarm" ? { orchestrator: "swarm" } : {}), ...attributes },
    (t, span) => {
      const p = new Progress(req.log, action, t);
      return withSession(
        req.ssh,
        p,
        (s) =>
          body(
            {
              s,
              l: layout(req.dir),
              p,
              project: req.project,
              user: req.ssh.user,
              server: req.ssh.host,
              login,
              edge: req.edge ?? DEFAULT_EDGE,
              backup: req.backup,
              healthTimeoutSeconds: req.healthTimeoutSeconds,
              note: (line) => req.log(`${`${action} note`.padEnd(16)} ${line}`),
              step: (name: StepName, f, detail, attrs) => {
                req.onStep?.(name);
                return p.step(name, f, detail, attrs);
              },
            },
            (k, v) => void span.setAttribute(k, v),
          ),
        req.connect,
      );
    },
  );
}

/**
 * The one rule for an error in a phase: a lost connection goes up as it is
 * (no one is there to record it, and a rerun converges); anything else becomes
 * the phase's outcome, coded.
 */
export function outcomeOf(e: unknown, doing: string): PipelineError {
  const err = asPipelineError(e, doing);
  if (err.code === "SSH_CONNECTION_LOST") throw err;
  return err;
}

/** A kept release as it is on the server. */
export async function keptRelease(c: Context, id: string): Promise<Release> {
  const [compose, env] = await Promise.all([
    releaseCompose(c.s, c.l, id),
    c.s.run(readOptionalFile(`${releaseDir(c.l, id)}/.env`), `reading release ${id}'s .env`),
  ]);
  return { id, compose, shape: releaseShape(compose, env) };
}
