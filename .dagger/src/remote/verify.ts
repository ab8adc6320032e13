/**
 * Read-only looks at the VPS: `verify` (does what runs match the release record,
 * healthy and answering?) and `status` (current release, services, kept releases
 * and whether their images are still there, history tail). Neither takes the lock.
 */
import { releaseShape, type ReleaseShape } from "../core/compose/compose.js";
import { EDGE_CONTAINER, maintenanceOf } from "../core/edge/edge.js";
import { parseJson } from "../core/errors.js";
import type { ContainerState } from "../core/release/health.js";
import { parseHistory, RELEASE_ID, type HistoryRecord } from "../core/release/release.js";
import { listPreviews, previewsFrom } from "../core/preview/preview-commands.js";
import type { PreviewInfo } from "../core/preview/preview.js";
import {
  httpStatus,
  imageRepoDigests,
  type Layout,
  imagesPresent,
  inspectContainers,
  layout,
  readOptionalFile,
  releaseDir,
} from "../core/server/server-commands.js";
import { projectContainers, readReleaseFiles, tailHistory } from "../core/release/release-commands.js";
import {
  buildReport,
  checkService,
  type ProbeResult,
  type ProbeSpec,
  type VerifyReport,
} from "../core/release/report.js";
import { Progress } from "./progress.js";
import { withSession } from "./session.js";
import type { SshSession } from "./ssh.js";
import type { SnapshotRecord } from "../core/data/data.js";
import { readSnapshots } from "./data/data.js";
import { containersOf, readEdge, resolveRelease, type EdgeView } from "./edge/edge.js";
import { readCurrent, releaseCompose, releaseEnv } from "./releases.js";
import { composePs } from "./targets/compose.js";
import type { RemoteTarget } from "./remote-target.js";
import { swarmVerify, swarmView, type SwarmView } from "./targets/swarm-verify.js";
import { defaultTracing, inSpan } from "./trace.js";

type Target = Pick<RemoteTarget, "ssh" | "dir" | "project" | "tracing" | "orchestrator">;

async function probe(s: SshSession, p: ProbeSpec): Promise<ProbeResult> {
  let status = 0;
  let attempts = 0;
  for (let i = 0; i <= p.retries; i++) {
    attempts++;
    const r = await s.exec(httpStatus(p.url, 5));
    status = Number(r.stdout.trim()) || 0;
    if (status === p.expectStatus) break;
    if (i < p.retries) await new Promise((res) => setTimeout(res, 1000));
  }
  return { url: p.url, expectStatus: p.expectStatus, status, attempts, ok: status === p.expectStatus };
}

async function inspect(
  s: SshSession,
  containers: ContainerState[],
): Promise<Map<string, { configured: string; repoDigests: string[] }>> {
  const out = new Map<string, { configured: string; repoDigests: string[] }>();
  if (containers.length === 0) return out;
  const text = await s.run(inspectContainers(containers.map((c) => c.name)), "docker inspect");
  for (const line of text.trim().split("\n")) {
    const [name, configured, imageId] = line.trim().split(" ");
    if (!name || !configured || !imageId) continue;
    const digests = await s.exec(imageRepoDigests(imageId));
    const repoDigests =
      digests.code === 0
        ? (parseJson<string[] | null>(digests.stdout.trim() || "[]", "docker image inspect") ?? [])
        : [];
    out.set(name.replace(/^\//, ""), { configured, repoDigests });
  }
  return out;
}

/**
 * Judge what runs against the release record (`.releases/<current>/docker-compose.yml`),
 * not against the live compose file, which anyone on the server can edit: a live
 * file that differs, a container of a service the release does not have, and a
 * container on another digest are all problems.
 */
export async function verify(target: Target, probes: ProbeSpec[]): Promise<VerifyReport> {
  const l = layout(target.dir);
  return inSpan(target.tracing ?? defaultTracing(), "verify", { "vps.project": target.project }, (t, span) => {
    const p = new Progress(() => {}, "verify", t);
    return withSession(target.ssh, p, async (s) => {
      if (target.orchestrator === "swarm")
        return swarmVerify(s, target.dir, target.project, (pr) => probe(s, pr), probes);
      const release = (await readCurrent(s, l)) ?? null;
      if (!release) return buildReport(null, [], []);
      span.setAttribute("release.id", release);
      const recordFile = `${releaseDir(l, release)}/docker-compose.yml`;
      const [recorded, live, env] = await Promise.all([
        releaseCompose(s, l, release),
        s.run(readOptionalFile(l.compose), "reading the live compose file"),
        releaseEnv(s, l, release),
      ]);
      if (recorded === "")
        return buildReport(
          release,
          [],
          [],
          [`the record of release ${release} (${recordFile}) is missing: deploy again`],
        );
      const drift: string[] = [];
      if (live !== recorded)
        drift.push(
          `the live ${l.compose} differs from the record of release ${release} (edited by hand?): deploy, or \`rollback --to ${release}\`, to make them one again`,
        );
      const shape = releaseShape(recorded, env);
      const containers = await composePs(s, l, target.project, recordFile);
      const labelled = (await s.run(projectContainers(target.project), "docker ps"))
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((x) => x.split("\t"));
      for (const [service, name, oneoff] of labelled) {
        if (service && !(service in shape.images) && oneoff !== "True")
          drift.push(
            `container ${name} runs service \`${service}\`, which release ${release} does not have (started by hand?)`,
          );
      }
      const seen = await inspect(
        s,
        containers.filter((c) => c.state === "running" || shape.once.includes(c.service)),
      );
      // A run-once service whose container is gone (`docker container prune`) ran: its dependents only start after it
      // succeeded.
      const present = (x: string) => containers.some((c) => c.service === x);
      const judged = [...shape.long, ...shape.once.filter(present), ...shape.optional.filter(present)];
      // every replica is judged (one on another digest is drift too), and their count against the release's
      const services = judged.flatMap((service) => {
        const running = containers.filter((x) => x.service === service && x.state === "running");
        const want = shape.replicas[service];
        if (want !== undefined && !shape.once.includes(service) && running.length !== want)
          drift.push(
            `service \`${service}\` runs ${running.length} container(s), release ${release} asks for ${want} (its replica count, as its .env makes it)`,
          );
        const judgedHere = running.length ? running : [containers.find((x) => x.service === service)];
        return judgedHere.map((c) => {
          const i = c ? seen.get(c.name) : undefined;
          return checkService(
            service,
            shape.images[service] ?? "",
            c,
            i?.configured ?? "",
            i?.repoDigests ?? [],
            shape.once.includes(service),
          );
        });
      });
      if (shape.http.length > 0) drift.push(...(await edgeDrift(s, l, target.project, release, shape)));
      const probeResults: ProbeResult[] = [];
      for (const pr of probes) probeResults.push(await probe(s, pr));
      return buildReport(release, services, probeResults, drift);
    });
  });
}

/** Each service behind the edge must be routed, and only to running containers of the current release. */
async function edgeDrift(
  s: SshSession,
  l: Layout,
  project: string,
  release: string,
  shape: ReleaseShape,
): Promise<string[]> {
  const services = shape.http.map((h) => h.service);
  const [edge, mine, resolved] = await Promise.all([
    readEdge(s),
    containersOf(s, project),
    resolveRelease(s, l, project, release, shape),
  ]);
  if (edge.state !== "running")
    return [
      `the edge (${EDGE_CONTAINER}) is ${edge.state}: ${services.join(", ")} get no traffic; the next deploy or rollback of any project on this VPS starts it again (or \`docker start ${EDGE_CONTAINER}\`)`,
    ];
  const out: string[] = [];
  if (maintenanceOf(edge.routes, project) !== undefined)
    out.push(
      `${project} is in maintenance: the edge answers its routes with 503 and the maintenance page; \`vps … maintenance --off\` when done`,
    );
  for (const service of services) {
    const route = edge.routes.find((r) => r.project === project && r.service === service);
    if (!route || route.upstreams.length === 0) {
      out.push(`the edge has no route for ${service}: deploy again`);
      continue;
    }
    for (const u of route.upstreams) {
      const name = u.replace(/:\d+$/, "");
      const c = mine.find((x) => x.name === name && x.service === service);
      const why = !c
        ? "no such container of this project"
        : c.state !== "running"
          ? c.state
          : c.hash !== resolved.hashes[service]
            ? "made from another definition"
            : "";
      if (why)
        out.push(
          `the edge routes ${service} to ${name}, not a container of release ${release} (${why}): deploy again, or \`rollback --to ${release}\``,
        );
    }
    const replicas = resolved.replicas[service] ?? 1;
    if (route.upstreams.length !== replicas)
      out.push(
        `the edge routes ${service} to ${route.upstreams.length} container(s), but release ${release} runs ${replicas}: deploy again, or \`rollback --to ${release}\``,
      );
  }
  return out;
}

export interface KeptRelease {
  id: string;
  current: boolean;
  /** Images the release needs that are not on the server (a rollback pulls them back). */
  missing: string[];
}

export interface StatusReport {
  release: string | null;
  services: ContainerState[];
  releases: KeptRelease[];
  history: HistoryRecord[];
  /**
   * The VPS's edge and this project's routes on it (absent when there is no edge); `maintenance`: the edge answers them
   * with the maintenance page.
   */
  edge?: EdgeView & { maintenance: boolean };
  /** On a swarm: each service's tasks and the nodes. */
  swarm?: SwarmView;
  /** Data snapshots kept on the server (newest last, at most `historyLines`). */
  snapshots?: SnapshotRecord[];
  /** The project's live pull request previews (core/preview/preview.ts). */
  previews?: PreviewInfo[];
}

/** `=== <id>` blocks as readReleaseFiles prints them → id → compose text. */
function splitReleaseFiles(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let id: string | undefined;
  let lines: string[] = [];
  const flush = () => id && RELEASE_ID.test(id) && out.set(id, lines.join("\n"));
  for (const line of text.split("\n")) {
    const m = /^=== (\S+)$/.exec(line);
    if (m) {
      flush();
      id = m[1];
      lines = [];
    } else lines.push(line);
  }
  flush();
  return out;
}

export async function status(target: Target, historyLines = 10): Promise<StatusReport> {
  const l = layout(target.dir);
  return inSpan(target.tracing ?? defaultTracing(), "status", { "vps.project": target.project }, (t) => {
    const p = new Progress(() => {}, "status", t);
    return withSession(target.ssh, p, async (s) => {
      const release = (await readCurrent(s, l)) ?? null;
      const swarm = target.orchestrator === "swarm";
      const services = release && !swarm ? await composePs(s, l, target.project) : [];
      const files = splitReleaseFiles(await s.run(readReleaseFiles(l), "reading the kept releases"));
      // each release's images as its own .env makes them (`image: ${REGISTRY}/api:${TAG}`)
      const shapes = new Map(
        await Promise.all(
          [...files].map(async ([id, f]) => [id, releaseShape(f, await releaseEnv(s, l, id))] as const),
        ),
      );
      const images = [...new Set([...shapes.values()].flatMap((sh) => Object.values(sh.images).filter(Boolean)))];
      // on a swarm the images live on the nodes, which pull them with the stack's registry login
      const missing = new Set(
        images.length && !swarm
          ? (await s.run(imagesPresent(images), "looking for images"))
              .split("\n")
              .filter((x) => x.startsWith("missing "))
              .map((x) => x.slice(8))
          : [],
      );
      const releases = [...shapes.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([id, sh]) => ({
          id,
          current: id === release,
          missing: Object.values(sh.images).filter((i) => missing.has(i)),
        }));
      const history = parseHistory(await s.run(tailHistory(l, historyLines), "reading the history"));
      if (swarm) return { release, services, releases, history, swarm: await swarmView(s, target.project) };
      const [snapshots, edge, previews] = await Promise.all([
        readSnapshots(s, l).then((x) => x.slice(-historyLines)),
        readEdge(s),
        s
          .run(listPreviews(target.dir, target.project), "listing the previews")
          .then((out) => previewsFrom(out, target.project)),
      ]);
      const mine = edge.routes.filter((r) => r.project === target.project);
      const ours = {
        ...edge,
        maintenance: mine.some((r) => r.maintenance !== undefined),
        routes: mine.map(({ maintenance: _, ...r }) => r),
      };
      return {
        release,
        services,
        releases,
        history,
        ...(snapshots.length ? { snapshots } : {}),
        ...(edge.state !== "missing" ? { edge: ours } : {}),
        ...(previews.length ? { previews } : {}),
      };
    });
  });
}
