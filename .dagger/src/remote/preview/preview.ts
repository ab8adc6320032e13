/**
 * Preview stacks on the server: listing a project's previews, the limits
 * applied before one is deployed (too old, too many), and removing one with
 * everything it had. The deploy itself is the ordinary one, for the project
 * `<project>-pr-<n>` in the folder `<dir>-pr-<n>`.
 */
import { PipelineError, tail } from "../../core/errors.js";
import { leaveProjectNetwork } from "../../core/edge/edge-commands.js";
import {
  NOT_MARKED_EXIT,
  NO_PREVIEW_EXIT,
  checkPreviewMark,
  listPreviews,
  markPreview,
  previewsFrom,
  removePreview,
} from "../../core/preview/preview-commands.js";
import {
  PREVIEW_MARK_FILE,
  previewDir,
  previewProject,
  previewsLock,
  previewsToRemove,
  type PreviewInfo,
  type PreviewSettings,
} from "../../core/preview/preview.js";
import { layout } from "../../core/server/server-commands.js";
import { deploy, type DeployRequest, type DeployResult } from "../deploy.js";
import { putRoutes, readEdge, withEdgeLock } from "../edge/edge.js";
import { Progress, type Log } from "../progress.js";
import { withLock, withSession } from "../session.js";
import type { SshSession } from "../ssh.js";
import { DEFAULT_EDGE, type RemoteTarget } from "../remote-target.js";
import { defaultTracing, inSpan } from "../trace.js";

/** Production's project and folder: previews are named and placed after them. */
export type Production = Pick<RemoteTarget, "ssh" | "dir" | "project" | "lockTimeoutSeconds" | "edge" | "tracing">;

export async function readPreviews(s: SshSession, prod: Pick<RemoteTarget, "dir" | "project">): Promise<PreviewInfo[]> {
  return previewsFrom(await s.run(listPreviews(prod.dir, prod.project), "listing the previews"), prod.project);
}

export interface Removed {
  pr: number;
  containers: number;
  volumes: number;
  networks: number;
  images: string[];
  routes: number;
  /** Its folder was there (and went). */
  folder?: boolean;
}

/**
 * Remove one preview under its own deploy lock: its edge routes first (nothing is sent to it any more), then the rest.
 */
async function removeOne(s: SshSession, p: Progress, prod: Production, pr: number, by: string): Promise<Removed> {
  const project = previewProject(prod.project, pr);
  const dir = previewDir(prod.dir, pr);
  const l = layout(dir);
  // only a marked preview is ours to remove: a project that is merely named like one keeps everything, routes too
  const marked = await s.exec(checkPreviewMark(dir, prod.project, pr));
  // a pull request closed without a live preview (never made, refused, expired, evicted): nothing to remove
  if (marked.code === NO_PREVIEW_EXIT) return { pr, containers: 0, volumes: 0, networks: 0, images: [], routes: 0 };
  if (marked.code === NOT_MARKED_EXIT) throw notMarked(dir, prod.project, pr);
  return withLock(
    s,
    l,
    p,
    prod.lockTimeoutSeconds,
    `${by} (removing preview ${pr}, since ${new Date().toISOString()})`,
    async () => {
      // the edge keeps its ports (80/443 stay published: no gap for the others), only the routes go
      // (a stopped edge's saved routes too: they would come back with it)
      const routes = await withEdgeLock(s, async () => {
        const image = prod.edge?.image ?? DEFAULT_EDGE.image;
        const edge = await readEdge(s, image);
        const mine = edge.routes.filter((r) => r.project === project);
        if (mine.length)
          await putRoutes(
            s,
            edge,
            image,
            edge.routes.filter((r) => r.project !== project),
          );
        return mine.length;
      });
      const r = await s.exec(removePreview(project, dir, prod.dir, pr, prod.project));
      if (r.code === NOT_MARKED_EXIT) throw notMarked(dir, prod.project, pr);
      // the edge's network of the project, once no container of it is on it
      await withEdgeLock(s, () => s.exec(leaveProjectNetwork(project)));
      const lines = r.stdout.split("\n");
      const count = (kind: string) => lines.filter((x) => x.startsWith(`removed ${kind} `)).length;
      if (r.code !== 0)
        throw new PipelineError(
          "REMOTE_COMMAND_FAILED",
          `removing preview ${pr} stopped halfway: ${tail(r.stderr, 3)}`,
          "run preview-down again: it removes what is left",
        );
      return {
        pr,
        containers: count("container"),
        volumes: count("volume"),
        networks: count("network"),
        images: lines.filter((x) => x.startsWith("removed image ")).map((x) => x.slice(14)),
        routes,
        folder: true,
      };
    },
  );
}

function notMarked(dir: string, project: string, pr: number): PipelineError {
  return new PipelineError(
    "PREVIEW_NOT_OURS",
    `${dir} is not marked as preview #${pr} of ${project} (no ${PREVIEW_MARK_FILE} naming it): it was left as it is, with everything it runs`,
    `a project or folder named like a preview is not one; if it is a preview made before previews were marked, remove it by hand on the VPS once you have checked it is (\`docker compose -p ${previewProject(project, pr)} down -v && sudo rm -rf ${dir}\`), and the next push makes it again, marked`,
  );
}

/** What `preview-down` removed, one line. */
export function removedLine(r: Removed): string {
  if (r.containers + r.volumes + r.networks + r.routes === 0 && !r.folder)
    return `preview #${r.pr}: none on the server (never deployed, or already removed)`;
  return `preview #${r.pr} removed: ${r.containers} container(s), ${r.volumes} volume(s), ${r.networks} network(s), ${r.routes} edge route(s), ${r.images.length} image(s) no other release uses, its folder`;
}

/** `preview-down`: the previews named (or, with `expired`, every one idle longer than the TTL) removed. */
export async function previewDown(
  prod: Production & { log: Log; by: string },
  which: { prs: number[]; ttlHours?: number },
): Promise<Removed[]> {
  return inSpan(prod.tracing ?? defaultTracing(), "preview-down", { "vps.project": prod.project }, (t) => {
    const p = new Progress(prod.log, "preview-down", t);
    return withSession(prod.ssh, p, (s) =>
      withLock(
        s,
        previewsLock(prod.dir),
        p,
        prod.lockTimeoutSeconds,
        `${prod.by} (preview-down, since ${new Date().toISOString()})`,
        async () => {
          const live = await readPreviews(s, prod);
          const now = Date.now();
          const prs =
            which.ttlHours !== undefined
              ? live.filter((x) => now - Date.parse(x.lastDeploy) > which.ttlHours! * 3_600_000).map((x) => x.pr)
              : which.prs;
          const out: Removed[] = [];
          for (const pr of prs) {
            // a folder without releases (a preview whose first deploy never held the lock) goes all the same
            const r = await removeOne(s, p, prod, pr, prod.by);
            prod.log(removedLine(r));
            out.push(r);
          }
          return out;
        },
      ),
    );
  });
}

/**
 * Deploy preview `pr`: previews older than the TTL go, then one over the limit goes (or this one is
 * refused, as set), then the ordinary deploy of the preview's project — all under the project's previews lock, so
 * that two pull requests pushed at once are counted one after the other (never one too many), and no preview-down
 * removes the folder a deploy is about to use. `req` is already the preview's (project, folder, release and .env
 * made by core/preview/preview.ts).
 */
export async function deployPreview(
  prod: Production,
  pr: number,
  settings: Pick<PreviewSettings, "limit" | "whenFull" | "ttlHours">,
  // a preview's host paths are always checked on the server (PreviewRelease.hostPaths)
  req: DeployRequest & { confined: string[] },
): Promise<DeployResult & { removed: Removed[] }> {
  return inSpan(prod.tracing ?? defaultTracing(), "preview", { "vps.project": prod.project }, (t) => {
    const p = new Progress(req.log, "preview", t);
    return withSession(prod.ssh, p, (s) =>
      withLock(
        s,
        previewsLock(prod.dir),
        p,
        prod.lockTimeoutSeconds,
        `${req.by} (preview #${pr}, since ${new Date().toISOString()})`,
        async () => {
          const removed = await applyLimits(s, p, prod, pr, settings, req);
          return { ...(await deploy(req)), removed };
        },
      ),
    );
  });
}

/**
 * Under the previews lock: a folder of the name that is not ours is refused untouched, before any other preview is
 * removed for it; then the expired and evicted ones go, and the folder is made (marked) once the limits let it be.
 */
async function applyLimits(
  s: SshSession,
  p: Progress,
  prod: Production,
  pr: number,
  settings: Pick<PreviewSettings, "limit" | "whenFull" | "ttlHours">,
  req: DeployRequest,
): Promise<Removed[]> {
  const mark = async (create: boolean) => {
    const r = await s.exec(markPreview(previewDir(prod.dir, pr), prod.project, pr, create));
    if (r.code === NOT_MARKED_EXIT) throw notMarked(previewDir(prod.dir, pr), prod.project, pr);
    if (r.code !== 0)
      throw new PipelineError(
        "REMOTE_COMMAND_FAILED",
        `making preview #${pr}'s folder failed: ${tail(r.stderr, 3)}`,
        "check the deploy user may write beside production's folder",
      );
  };
  await mark(false);
  const live = await readPreviews(s, prod);
  const go = previewsToRemove(live, pr, settings, new Date());
  if (go.refused)
    throw new PipelineError(
      "PREVIEW_LIMIT",
      `preview #${pr} not deployed: ${go.refused}`,
      "close or preview-down a pull request's preview, or raise --preview-limit (--preview-when-full=evict removes the one pushed longest ago)",
    );
  const out: Removed[] = [];
  for (const x of go.expired) {
    out.push(await removeOne(s, p, prod, x.pr, req.by));
    req.log(
      `preview note     #${x.pr} removed: not pushed to since ${x.lastDeploy} (longer than ${settings.ttlHours} h)`,
    );
  }
  for (const x of go.evicted) {
    out.push(await removeOne(s, p, prod, x.pr, req.by));
    req.log(
      `preview note     #${x.pr} removed to make room (the limit is ${settings.limit}; it was pushed to longest ago, ${x.lastDeploy})`,
    );
  }
  await mark(true);
  return out;
}
