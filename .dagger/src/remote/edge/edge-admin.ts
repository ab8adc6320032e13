/**
 * What changes the edge outside any deploy: its image (the edge is every
 * project's, so no deploy changes it), and one project's maintenance mode.
 * Both under the edge lock, against the edge as it is.
 */
import { EDGE_CONTAINER, DEFAULT_MAINTENANCE_PAGE, edgePublish, type EdgeRoute } from "../../core/edge/edge.js";
import { PipelineError } from "../../core/errors.js";
import { edgeUpOrFail, loadRoutes, readEdge, withEdgeLock } from "./edge.js";
import { Progress } from "../progress.js";
import { withSession } from "../session.js";
import { DEFAULT_EDGE, type RemoteTarget } from "../remote-target.js";
import { defaultTracing, inSpan } from "../trace.js";

export interface EdgeReplaced {
  from: string;
  to: string;
  /** How long nothing listened on the edge's ports, measured on the server (ms). */
  gapMs: number;
  routes: number;
  publish: string[];
}

/**
 * Replace the edge with one running `image`: the same ports, the same routes
 * and certificates (its volume), every project network joined, then the old
 * one goes; if the new one cannot start, the old one serves again.
 */
export async function replaceEdgeImage(target: RemoteTarget, image: string): Promise<EdgeReplaced> {
  return inSpan(target.tracing ?? defaultTracing(), "edge", { "edge.image": image }, (t) =>
    withSession(target.ssh, new Progress(() => {}, "edge", t), (s) =>
      withEdgeLock(s, async () => {
        const edge = await readEdge(s, image);
        if (edge.state === "missing" && edge.routes.length === 0)
          throw new PipelineError(
            "EDGE_FAILED",
            "there is no edge on this VPS yet",
            "the first deploy of a service with `x-vps-pipeline: http` makes it, with --edge-image",
          );
        const publish = edge.state === "missing" ? edgePublish(edge.routes) : edge.publish;
        const gapMs = await edgeUpOrFail(s, image, "replace", publish, edge.routes);
        const after = await readEdge(s, image);
        if (after.routes.length !== edge.routes.length) {
          throw new PipelineError(
            "EDGE_FAILED",
            `the new edge serves ${after.routes.length} route(s), the old one had ${edge.routes.length}`,
            `\`docker logs ${EDGE_CONTAINER}\` on the VPS; the next deploy of each project puts its routes back`,
          );
        }
        return { from: edge.image || "(removed)", to: image, gapMs, routes: after.routes.length, publish };
      }),
    ),
  );
}

export interface MaintenanceResult {
  project: string;
  on: boolean;
  /** The services whose routes answer with the page (on) or proxy again (off). */
  services: string[];
}

/** The largest maintenance page the edge keeps in its config. */
export const MAX_PAGE_BYTES = 256 * 1024;

/**
 * Put every route of the project into maintenance (the edge answers 503 with
 * `page`, the containers keep running untouched) or take it out. A deploy keeps
 * the project's mode as it is.
 */
export async function setMaintenance(
  target: RemoteTarget,
  on: boolean,
  page: string = DEFAULT_MAINTENANCE_PAGE,
): Promise<MaintenanceResult> {
  if (Buffer.byteLength(page) > MAX_PAGE_BYTES)
    throw new PipelineError(
      "INVALID_INPUT",
      `page: the maintenance page is ${Buffer.byteLength(page)} bytes; the edge keeps at most ${MAX_PAGE_BYTES}`,
      "make the page smaller (inline only what it needs; images from another site)",
    );
  return inSpan(
    target.tracing ?? defaultTracing(),
    "maintenance",
    { "vps.project": target.project, "maintenance.on": on },
    (t) =>
      withSession(target.ssh, new Progress(() => {}, "maintenance", t), (s) =>
        withEdgeLock(s, async () => {
          const image = target.edge?.image ?? DEFAULT_EDGE.image;
          const edge = await readEdge(s, image);
          const mine = edge.routes.filter((r) => r.project === target.project);
          if (mine.length === 0)
            throw new PipelineError(
              "EDGE_FAILED",
              `the edge has no route of ${target.project}`,
              "maintenance mode is for services behind the edge (`x-vps-pipeline: http`); deploy them first",
            );
          if (edge.state !== "running")
            await edgeUpOrFail(
              s,
              edge.image || image,
              "start",
              edge.state === "missing" ? edgePublish(edge.routes) : [],
            );
          const routes = edge.routes.map((r): EdgeRoute => {
            if (r.project !== target.project) return r;
            const { maintenance: _, ...rest } = r;
            return on ? { ...rest, maintenance: page } : rest;
          });
          await loadRoutes(s, routes);
          return { project: target.project, on, services: mine.map((r) => r.service).sort() };
        }),
      ),
  );
}
