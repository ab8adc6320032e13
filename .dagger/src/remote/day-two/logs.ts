/**
 * `vps … logs` on either target: the project's containers (or swarm services)
 * read over one connection, merged in time order, capped (core/day-two/logs.ts).
 */
import { composeLogs, formatLogs, mergeLogs, swarmLogs, type LogOptions } from "../../core/day-two/logs.js";
import { Progress } from "../progress.js";
import { withSession } from "../session.js";
import type { RemoteTarget } from "../remote-target.js";
import { defaultTracing, inSpan } from "../trace.js";

export async function logs(target: RemoteTarget, o: LogOptions): Promise<{ text: string; lines: number; cut: number }> {
  return inSpan(target.tracing ?? defaultTracing(), "logs", { "vps.project": target.project }, (t) => {
    const p = new Progress(() => {}, "logs", t);
    return withSession(target.ssh, p, async (s) => {
      const command = target.orchestrator === "swarm" ? swarmLogs(target.project, o) : composeLogs(target.project, o);
      const merged = mergeLogs(await s.run(command, "reading the logs"), o);
      const text =
        merged.lines.length || merged.cut
          ? formatLogs(merged, o.maxBytes)
          : `(no log lines from ${o.services.length ? o.services.join(", ") : `project ${target.project}`}${o.since ? ` since ${o.since}` : ""})`;
      return { text, lines: merged.lines.length, cut: merged.cut };
    });
  });
}
