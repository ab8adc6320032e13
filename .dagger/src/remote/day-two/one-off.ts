/**
 * `vps … run`: a one-off command in a new container of the current release,
 * under the deploy lock (refused, naming the holder, while a deploy has it; a
 * deploy waits while it runs), recorded in the history with its exit code.
 */
import { releaseShape } from "../../core/compose/compose.js";
import { PipelineError } from "../../core/errors.js";
import { oneOffArgv, oneOffName, runOneOff } from "../../core/day-two/one-off.js";
import { BoundedOutput } from "../../core/day-two/output.js";
import { JOB_TIMEOUT_EXIT } from "../../core/release/release-commands.js";
import { layout } from "../../core/server/server-commands.js";
import { Progress, type Log } from "../progress.js";
import { readCurrentWithCompose, record } from "../releases.js";
import { withLock, withSession } from "../session.js";
import type { RemoteTarget } from "../remote-target.js";
import { defaultTracing, inSpan } from "../trace.js";

export interface OneOff {
  service: string;
  /** One string (run by the container's `sh -c`) or the argv. */
  command: string[];
  /** The command is a shell line (default: when it is one string). */
  shell?: boolean;
  timeoutSeconds: number;
  /** The output kept (the newest) and printed live; more is cut, saying so. */
  maxBytes: number;
  by: string;
  log: Log;
}

export interface OneOffResult {
  release: string;
  exitCode: number;
  /** stdout and stderr as one stream, the newest `maxBytes` (a first line says what was cut). */
  output: string;
  timedOut: boolean;
  seconds: number;
}

export async function runOnce(target: RemoteTarget, o: OneOff): Promise<OneOffResult> {
  if (target.orchestrator === "swarm")
    throw new PipelineError(
      "INVALID_INPUT",
      "run: one-off commands run on one VPS with compose for now",
      "run it on a node with `docker exec` into a task of the service",
    );
  const l = layout(target.dir);
  return inSpan(
    target.tracing ?? defaultTracing(),
    "run",
    { "vps.project": target.project, service: o.service },
    (t) => {
      const p = new Progress(o.log, "run", t);
      return withSession(target.ssh, p, (s) =>
        withLock(
          s,
          l,
          p,
          0,
          `${o.by} (run ${o.service}: ${o.command.join(" ").slice(0, 80)}, since ${new Date().toISOString()})`,
          async () => {
            const current = await readCurrentWithCompose(s, l);
            if (!current.id)
              throw new PipelineError(
                "RELEASE_NOT_FOUND",
                `nothing is deployed in ${l.dir}: no release to run ${o.service} of`,
                "deploy first, or check --project and --dir",
              );
            const images = releaseShape(current.compose).images;
            if (!(o.service in images))
              throw new PipelineError(
                "INVALID_INPUT",
                `service: \`${o.service}\` is not a service of release ${current.id} (services: ${Object.keys(images).join(", ")})`,
                "name one of the services listed",
              );
            const now = new Date();
            const t0 = performance.now();
            const out = new BoundedOutput(o.maxBytes, o.log, `${o.service} | `);
            const r = await s.start(
              runOneOff(l, {
                project: target.project,
                service: o.service,
                name: oneOffName(target.project, o.service, now),
                timeoutSeconds: o.timeoutSeconds,
                argv: oneOffArgv(o.command, o.shell ?? o.command.length === 1),
              }),
              { onStdout: (c) => out.push(c) },
            ).result;
            if (r.stderr) out.push(r.stderr);
            const seconds = Math.round((performance.now() - t0) / 10) / 100;
            const timedOut = r.code === JOB_TIMEOUT_EXIT;
            await record(s, l, {
              release: current.id,
              action: "run",
              result: r.code === 0 ? "ok" : "failed",
              at: now.toISOString(),
              by: o.by,
              sha: current.id.split("-").pop() ?? "",
              images: { [o.service]: images[o.service] ?? "" },
              service: o.service,
              command: o.command,
              exitCode: r.code,
              durations: { run: seconds },
              ...(timedOut ? { reason: `killed after its ${o.timeoutSeconds}s timeout` } : {}),
            });
            return { release: current.id, exitCode: r.code, output: out.end(), timedOut, seconds };
          },
        ),
      );
    },
  );
}
