/** doctor's checks on the VPS: SSH access, a throwaway pull check, stale registry logins. */
import { isPipelineError } from "../core/errors.js";
import type { Finding } from "../core/findings.js";
import { nodePlatformsProbe, parseNodePlatforms, serverPlatformProbe } from "../core/server/platforms.js";
import { dockerAuthConfig } from "../core/registry/registry-auth.js";
import { registryError } from "../core/registry/registry-errors.js";
import {
  AUTH_SETUP_FAILED_EXIT,
  LOGIN_FAILED_EXIT,
  USER_DOCKER_CONFIG,
  checkPullAccess,
  configuredRegistries,
} from "../core/registry/registry-commands.js";
import { readOptionalFile } from "../core/server/server-commands.js";
import { EDGE_CONTAINER } from "../core/edge/edge.js";
import { layout } from "../core/server/server-commands.js";
import { parseSwarmProbe, swarmNodes, swarmProbe } from "../core/swarm/swarm-commands.js";
import { parseNodes } from "../core/swarm/swarm-state.js";
import { readEdge } from "./edge/edge.js";
import { Progress } from "./progress.js";
import { withSession } from "./session.js";
import type { SshOptions, SshSession } from "./ssh.js";
import { defaultTracing } from "./trace.js";

export interface VpsAccess {
  ssh: SshOptions;
  registry: string;
  pull?: { user: string; token: string } | undefined;
  /** The images the pull check reads (`repo:tag`). */
  refs: string[];
  edgeImage?: string | undefined;
  /** The host is a swarm manager: its state and nodes are checked instead of compose. */
  swarm?: boolean;
}

export async function vpsAccessFindings(a: VpsAccess): Promise<Finding[]> {
  const { ssh, registry, pull, refs, edgeImage, swarm = false } = a;
  const findings: Finding[] = [];
  try {
    await withSession(ssh, new Progress(() => {}, "doctor", defaultTracing()), async (s) => {
      findings.push({
        check: "ssh",
        status: "ok",
        detail: `${ssh.user}@${ssh.host}:${ssh.port} answered with the pinned host key and accepted the key`,
      });
      // what multi-platform images must have an entry for (publish --platforms)
      const platforms = swarm
        ? parseNodePlatforms((await s.exec(nodePlatformsProbe())).stdout)
            .map((p) => `${p.where}: ${p.platform}`)
            .join(", ")
        : (await s.exec(serverPlatformProbe())).stdout.trim();
      findings.push({
        check: "platform",
        status: "ok",
        detail: `${platforms || "unknown (docker did not say)"}: the images must be built for it (--platforms)`,
      });
      // Parsed here, never printed: the file may hold credentials.
      const config = (await s.exec(readOptionalFile(USER_DOCKER_CONFIG))).stdout;
      const stale = configuredRegistries(config).filter(
        (h) => h === registry || (registry === "docker.io" && h.includes("docker.io")),
      );
      findings.push(
        stale.length
          ? {
              check: "VPS docker config",
              status: "warn",
              detail: `~${ssh.user}/${USER_DOCKER_CONFIG} holds a login for ${stale.join(", ")}: when it goes stale, every pull from that registry fails, even of public images`,
              fix: `on the VPS: \`docker logout ${registry}\` (the pipeline never needs it: it logs in for each deploy and forgets)`,
            }
          : { check: "VPS docker config", status: "ok", detail: `no stored login for ${registry}` },
      );
      const r = await s.exec(checkPullAccess(pull ? registry : "", refs), {
        stdin: dockerAuthConfig(pull ? { host: registry, ...pull } : undefined, registry),
      });
      if (r.code === LOGIN_FAILED_EXIT) {
        const e = registryError("login", registry, r.stderr, "a login from the VPS");
        findings.push({
          check: "pull from the VPS",
          status: "fail",
          detail: `${e.code}: ${e.message.split("\n")[0]}`,
          fix: e.hint,
        });
      } else if (r.code === AUTH_SETUP_FAILED_EXIT) {
        findings.push({
          check: "pull from the VPS",
          status: "fail",
          detail: `cannot make a throwaway docker config in ~${ssh.user}: ${r.stderr.trim().split("\n").pop() ?? ""}`,
          fix: "the deploy user's home must be writable",
        });
      } else if (r.code !== 0) {
        findings.push({
          check: "pull from the VPS",
          status: "fail",
          detail: `the check failed with exit code ${r.code}: ${r.stderr.trim().split("\n").pop() ?? ""}`,
        });
      } else {
        for (const line of r.stdout.trim().split("\n").filter(Boolean)) {
          const [verdict, ref, ...why] = line.split(" ");
          const reason = why.join(" ");
          if (verdict === "ok")
            findings.push({ check: `pull ${ref} (from the VPS)`, status: "ok", detail: "the VPS may pull it" });
          else if (/manifest unknown|not found/i.test(reason))
            findings.push({
              check: `pull ${ref} (from the VPS)`,
              status: "warn",
              detail: "logged in, but this tag does not exist yet",
              fix: "publish first, or pass the tag to check",
            });
          else {
            const e = registryError("pull", registry, reason, ref ?? "");
            findings.push({
              check: `pull ${ref} (from the VPS)`,
              status: "fail",
              detail: `${e.code}: ${reason}`,
              fix: e.hint,
            });
          }
        }
      }
      findings.push(swarm ? await swarmFinding(s) : await edgeFinding(s, edgeImage));
    });
  } catch (e) {
    findings.push(
      isPipelineError(e)
        ? { check: "ssh", status: "fail", detail: `${e.code}: ${e.message}`, fix: e.hint }
        : { check: "ssh", status: "fail", detail: String(e) },
    );
  }
  return findings;
}

/** On a swarm: the host must be a manager, and nodes that are down are named. */
async function swarmFinding(s: SshSession): Promise<Finding> {
  const check = "swarm";
  const f = parseSwarmProbe((await s.exec(swarmProbe(layout(".")))).stdout);
  if (f.swarm !== "active" || !f.manager) {
    return {
      check,
      status: "fail",
      detail: f.swarm !== "active" ? `the host is in no swarm (${f.swarm || "unknown"})` : "the host is a worker",
      fix: "`docker swarm init` on the first server, or point --host at a manager (`docker node ls` on a manager lists them)",
    };
  }
  const nodes = parseNodes(await s.run(swarmNodes(), "listing the swarm's nodes"));
  const down = nodes.filter((n) => n.state !== "ready").map((n) => `${n.hostname} (${n.state})`);
  const summary = `${nodes.length} node(s), ${nodes.filter((n) => n.manager).length} manager(s)`;
  return down.length
    ? {
        check,
        status: "warn",
        detail: `${summary}; not ready: ${down.join(", ")}`,
        fix: "replicas are placed on the ready nodes; bring the others back or `docker node rm` them",
      }
    : { check, status: "ok", detail: `this host manages the swarm: ${summary}, all ready` };
}

/** The edge: absent until a service opts in; running with its routes; or stopped (its services get no traffic). */
async function edgeFinding(s: SshSession, image: string | undefined): Promise<Finding> {
  try {
    const e = await readEdge(s, image);
    const routes =
      e.routes
        .map((r) => `${r.project}/${r.service}${r.maintenance !== undefined ? " (maintenance)" : ""}`)
        .join(", ") || "no routes";
    if (e.state === "missing" && e.routes.length === 0)
      return {
        check: "edge",
        status: "ok",
        detail: "no edge on this VPS (the first deploy with `x-vps-pipeline: http` makes it)",
      };
    if (e.state !== "running")
      return {
        check: "edge",
        status: "warn",
        detail: `${EDGE_CONTAINER} is ${e.state === "missing" ? "removed (its volume keeps its routes)" : e.state}: ${routes} get no traffic`,
        fix: `the next deploy or rollback of any project on this VPS starts it again, or \`docker start ${EDGE_CONTAINER}\` on the VPS`,
      };
    if (image && e.image !== image)
      return {
        check: "edge",
        status: "warn",
        detail: `${EDGE_CONTAINER} runs ${e.image}, not ${image} (${routes})`,
        fix: `no deploy changes the edge's image (every project shares it): \`vps … edge --image=${image}\` replaces it, keeping its routes`,
      };
    return {
      check: "edge",
      status: "ok",
      detail: `${EDGE_CONTAINER} runs ${e.image}, publishes ${e.publish.join(", ") || "nothing"}; routes: ${routes}`,
    };
  } catch (err) {
    return {
      check: "edge",
      status: "fail",
      detail: isPipelineError(err) ? `${err.code}: ${err.message}` : String(err),
      fix: `\`docker logs ${EDGE_CONTAINER}\` on the VPS`,
    };
  }
}
