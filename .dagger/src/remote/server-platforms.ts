/**
 * The platforms a release must run on, asked of the server before anything is built: `ship` and `preview` build
 * for them when `--platforms` names none (an arm64 laptop would otherwise build arm64 images for an amd64 VPS).
 */
import { nodePlatformsProbe, parseNodePlatforms, serverPlatformProbe } from "../core/server/platforms.js";
import { Progress, type Log } from "./progress.js";
import type { RemoteTarget } from "./remote-target.js";
import { withSession } from "./session.js";
import { defaultTracing, inSpan } from "./trace.js";

/** `linux/amd64` (the VPS's), or every distinct platform of a swarm's nodes. */
export async function serverPlatforms(target: RemoteTarget, log: Log): Promise<string[]> {
  return inSpan(target.tracing ?? defaultTracing(), "platforms", { "vps.project": target.project }, (t) =>
    withSession(target.ssh, new Progress(log, "platforms", t), async (s) => {
      if (target.orchestrator === "swarm")
        return [
          ...new Set(
            parseNodePlatforms(await s.run(nodePlatformsProbe(), "reading the nodes' platforms")).map(
              (n) => n.platform,
            ),
          ),
        ];
      return [(await s.run(serverPlatformProbe(), "reading the server's platform")).trim()];
    }),
  );
}
