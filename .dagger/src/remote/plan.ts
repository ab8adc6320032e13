/**
 * `plan`: what a deploy of this release would change, read from the server
 * without taking the lock and without writing anything.
 */
import { layout, readOptionalFile } from "../core/server/server-commands.js";
import { planRelease, type Plan } from "../core/release/plan.js";
import type { ReleaseFiles } from "../core/release/release-files.js";
import { Progress } from "./progress.js";
import { withSession } from "./session.js";
import { readCurrent, releaseCompose } from "./releases.js";
import { runPreflight } from "./targets/compose.js";
import type { RemoteTarget } from "./remote-target.js";
import { renderSwarmRelease } from "../core/swarm/swarm-release.js";
import { swarmPreflight } from "./targets/swarm.js";
import { defaultTracing, inSpan } from "./trace.js";

export interface PlanRequest extends Pick<RemoteTarget, "ssh" | "dir" | "project" | "tracing" | "orchestrator"> {
  compose: string;
  /** The `.env` the deploy would write; its keys are compared with the server's, its values never shown. */
  env?: string;
  /** The files from the repository the release carries (path and hash, never contents). */
  shipped?: ReleaseFiles["manifest"];
  notes?: string[];
}

export async function plan(req: PlanRequest): Promise<Plan> {
  // on a swarm the release must render for stack deploy (refused before any connection), and the manager needs no
  // compose
  if (req.orchestrator === "swarm") renderSwarmRelease(req.compose);
  const l = layout(req.dir);
  return inSpan(req.tracing ?? defaultTracing(), "plan", { "vps.project": req.project }, (t) => {
    const p = new Progress(() => {}, "plan", t);
    return withSession(req.ssh, p, async (s) => {
      const preflight = await p.step("preflight", () =>
        req.orchestrator === "swarm"
          ? swarmPreflight(s, l, req.ssh.user).then((r) => ({ ...r, compose: "not needed (swarm)" }))
          : runPreflight(s, l, req.ssh.user),
      );
      return p.step("read", async () => {
        const current = (await readCurrent(s, l)) ?? null;
        const currentCompose = current ? await releaseCompose(s, l, current) : "";
        const currentEnv =
          req.env !== undefined ? await s.run(readOptionalFile(l.env), "reading the server's .env") : undefined;
        return planRelease({
          current,
          currentCompose,
          newCompose: req.compose,
          preflight,
          files: req.shipped ?? [],
          notes: req.notes ?? [],
          ...(currentEnv !== undefined ? { currentEnv } : {}),
          ...(req.env !== undefined ? { newEnv: req.env } : {}),
        });
      });
    });
  });
}
