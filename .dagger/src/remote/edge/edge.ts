/**
 * Releases with services behind the edge (core/edge/edge.ts): the check made before
 * anything changes, and the switch — the other services as today (stop-first),
 * then each service behind the edge rolled over: new containers beside the old,
 * healthy and answering from the edge's network before the edge moves traffic to
 * them in one config change, then the old ones drained and removed.
 */
import type { ReleaseShape } from "../../core/compose/compose.js";
import { PipelineError, isPipelineError, parseJson, tail } from "../../core/errors.js";
import {
  EDGE_IMAGE_EXIT,
  EDGE_NOT_READY_EXIT,
  EDGE_NOT_SERVING_EXIT,
  EDGE_PORT_TAKEN_EXIT,
  connectToEdge,
  containerHealth,
  drainFromEdge,
  edgeState,
  edgeUp,
  holdClaim,
  holdEdgeLock,
  httpFromEdge,
  joinProjectNetwork,
  leaveProjectNetwork,
  liveClaims,
  pruneProjectNetworks,
  loadEdgeConfig,
  parseServiceContainers,
  planRollover,
  probePorts,
  releaseConfig,
  saveEdgeConfig,
  removeContainers,
  scaleBeside,
  serviceContainers,
  upServices,
  type ServiceContainer,
} from "../../core/edge/edge-commands.js";
import {
  EDGE_CONTAINER,
  OLDEST_CADDY,
  PUBLISHED_LABEL,
  caddyConfig,
  edgeProbes,
  edgePublish,
  hostHeader,
  hostPort,
  maintenanceOf,
  parseListen,
  publishedByEdge,
  putRoute,
  replaceRoutes,
  routeConflicts,
  routesFromCaddy,
  type EdgeRoute,
  type Listen,
} from "../../core/edge/edge.js";
import type { HttpSpec } from "../../core/compose/extension.js";
import { LOCK_BUSY_EXIT, type Layout } from "../../core/server/server-commands.js";
import { switchTo } from "../../core/release/release-commands.js";
import { holdWhileOpen } from "../session.js";
import type { SshSession } from "../ssh.js";
import type { HealthOutcome } from "../../core/release/health.js";
import { DEFAULT_EDGE, type EdgeOptions } from "../remote-target.js";
import type { Context, Release } from "../targets/target.js";

/**
 * How the VPS resolves a release: the services that `up` would start, and where each service behind the edge listens.
 */
export interface ResolvedRelease {
  enabled: string[];
  listen: Record<string, Listen[]>;
  /** service → compose's config hash: a container with this hash runs exactly this release's definition. */
  hashes: Record<string, string>;
  /** service behind the edge → its replica count with the release's `.env` applied. */
  replicas: Record<string, number>;
}

export async function resolveRelease(
  s: SshSession,
  l: Layout,
  project: string,
  id: string,
  shape: ReleaseShape,
): Promise<ResolvedRelease> {
  const out = await s.run(releaseConfig(l, project, id), `resolving release ${id} with docker compose config`, {
    code: "COMPOSE_INVALID",
    hint: "the release's compose file or .env is not valid for the compose on the VPS; the output above says where",
  });
  const [, services = "", hashes = "", config = ""] = out.split(/^=== (?:services|hashes|config)$/m);
  const conf = parseJson<{
    services?: Record<string, { labels?: Record<string, string>; scale?: number; deploy?: { replicas?: number } }>;
  }>(config, "docker compose config --format json");
  const listen: Record<string, Listen[]> = {};
  const replicas: Record<string, number> = {};
  for (const h of shape.http) {
    const svc = conf.services?.[h.service];
    listen[h.service] = parseListen(h.service, svc?.labels?.[PUBLISHED_LABEL] ?? "");
    replicas[h.service] = Number(svc?.deploy?.replicas ?? svc?.scale ?? shape.replicas[h.service] ?? 1);
  }
  const lines = (t: string) =>
    t
      .split("\n")
      .map((x) => x.trim())
      .filter(Boolean);
  return {
    enabled: lines(services),
    listen,
    replicas,
    hashes: Object.fromEntries(lines(hashes).map((x) => x.split(/\s+/) as [string, string])),
  };
}

export interface EdgeView {
  /** `missing`, `running`, `exited`… */
  state: string;
  image: string;
  publish: string[];
  /** The routes it serves, or (stopped) would serve again: read from its volume when it does not run. */
  routes: EdgeRoute[];
}

/** The edge as it is; `image` reads its volume when the container is gone (it must be on the server). */
export async function readEdge(s: SshSession, image: string = DEFAULT_EDGE.image): Promise<EdgeView> {
  const out = await s.run(edgeState(image), "reading the edge's state", {
    code: "EDGE_FAILED",
    hint: `the edge runs but its admin API does not answer: \`docker logs ${EDGE_CONTAINER}\` on the VPS`,
  });
  const nl = out.indexOf("\n");
  const head = (nl < 0 ? out : out.slice(0, nl)).replace(/^edge /, "").trim();
  const config = nl < 0 ? "" : out.slice(nl + 1);
  // a config Caddy never saved (no route was ever loaded) reads as none
  const routes = config.trim() ? routesFromCaddy(config) : [];
  if (head === "missing") return { state: "missing", image: "", publish: [], routes };
  const [state = "", img = "", bindings = "{}"] = head.split("|");
  return { state, image: img, publish: publishedByEdge(bindings), routes };
}

/** Hold the VPS-wide edge lock around a read-modify-write of its config (projects share the edge). */
export async function withEdgeLock<T>(s: SshSession, body: () => Promise<T>): Promise<T> {
  const held = await holdWhileOpen(s, holdEdgeLock(120));
  if (!("release" in held)) {
    throw new PipelineError(
      "EDGE_FAILED",
      held.code === LOCK_BUSY_EXIT
        ? "another deploy kept the edge's lock for 120s"
        : `cannot take the edge's lock: ${tail(held.stderr, 2)}`,
      "another project's deploy is changing the edge; try again when it is done",
    );
  }
  try {
    return await body();
  } finally {
    await held.release();
  }
}

export async function loadRoutes(s: SshSession, routes: readonly EdgeRoute[]): Promise<void> {
  const r = await s.exec(loadEdgeConfig(), { stdin: JSON.stringify(caddyConfig(routes)) });
  if (r.code !== 0 && /unknown field "stream_close_delay"/.test(r.stderr))
    throw new PipelineError(
      "EDGE_FAILED",
      `the edge runs a Caddy older than ${OLDEST_CADDY}, which cannot keep WebSockets open through a config change (it keeps the old config)`,
      "replace its image with a current Caddy: `vps … edge --image=caddy:2` (pin it as caddy:2@sha256:…)",
    );
  if (r.code !== 0)
    throw new PipelineError(
      "EDGE_FAILED",
      `the edge refused its new config (it keeps the old one): ${tail(r.stderr, 3)}`,
      `\`docker logs ${EDGE_CONTAINER}\` on the VPS says more`,
    );
}

/**
 * The edge's routes from now on: loaded into it when it runs, else written where it resumes from, so that a route
 * removed while the edge was stopped does not come back with it.
 */
export async function putRoutes(s: SshSession, edge: EdgeView, image: string, routes: readonly EdgeRoute[]) {
  if (edge.state === "running") return loadRoutes(s, routes);
  const r = await s.exec(saveEdgeConfig(edge.image || image), { stdin: JSON.stringify(caddyConfig(routes)) });
  if (r.code !== 0)
    throw new PipelineError(
      "EDGE_FAILED",
      `the stopped edge's saved routes could not be rewritten: ${tail(r.stderr, 3)}`,
      `start the edge (\`docker start ${EDGE_CONTAINER}\`) and run again: a running edge takes the change at once`,
    );
}

/**
 * Start a stopped edge, make a missing one (with `publish`), or (`replace`)
 * swap it for a new one with `image` and `publish`: the new one starts the
 * moment the old one has let go of its ports, and the old one comes back when
 * it cannot. Returns how long nothing listened, in ms.
 */
export async function edgeUpOrFail(
  s: SshSession,
  image: string,
  mode: "start" | "replace",
  publish: readonly string[],
  /** replace: the routes the old edge serves, which the new one must serve too (and the old one again if not) */
  routes: readonly EdgeRoute[] = [],
): Promise<number> {
  const r = await s.exec(edgeUp(image, mode, publish, mode === "replace" ? edgeProbes(routes) : []));
  let kept = mode === "replace" ? "; the old edge is serving again with its config" : "";
  // a new image's Caddy may have saved a config of its own where the old edge resumes from: its routes go back in
  if (mode === "replace" && r.code !== 0 && routes.length) {
    const back = await loadRoutes(s, routes).then(
      () => undefined,
      (e: unknown) => (e instanceof PipelineError ? e.message : String(e)),
    );
    if (back !== undefined)
      kept = `; the old edge runs again, but its routes could not be put back (${back}): deploy each project again`;
  }
  if (r.code === EDGE_NOT_SERVING_EXIT)
    throw new PipelineError(
      "EDGE_FAILED",
      `the new edge (${image}) does not serve every route the old one served: ${tail(r.stderr, 1)}${kept}`,
      "the image must run our command (`caddy run --resume`: an entrypoint of its own that ignores it serves nothing of ours), as caddy:2 does",
    );
  if (r.code === EDGE_IMAGE_EXIT)
    throw new PipelineError(
      "EDGE_FAILED",
      `cannot pull the edge's image ${image}: ${tail(r.stderr, 2)}${kept}`,
      "the VPS must reach the image's registry (Docker Hub for caddy:2), or the edge must be given an image it can pull: `vps … edge --image=…`",
    );
  if (r.code === EDGE_PORT_TAKEN_EXIT)
    throw new PipelineError(
      "EDGE_PORT_TAKEN",
      `the edge cannot publish ${publish.map(hostPort).join(", ") || "its ports"}: ${tail(r.stderr, 2)}${kept}`,
      "a program outside docker (or a container started since the check) holds it: `sudo ss -ltnp` on the VPS shows which; free it, or publish the service on another port",
    );
  if (r.code === EDGE_NOT_READY_EXIT)
    throw new PipelineError(
      "EDGE_FAILED",
      `the new edge never answered: ${tail(r.stderr, 3)}${kept}`,
      "the image must run Caddy 2 (`caddy run --resume`) with wget in it, as caddy:2 does",
    );
  if (r.code !== 0)
    throw new PipelineError(
      "EDGE_FAILED",
      `the edge did not start: ${tail(r.stderr, 4)}${kept}`,
      `\`docker logs ${EDGE_CONTAINER}\` on the VPS says why`,
    );
  return Number(/^gap (\d+)$/m.exec(r.stdout)?.[1] ?? 0);
}

/**
 * Every deploy and rollback of every project, first: a stopped edge is started
 * again, a removed one made again from its volume (with the routes it had). An
 * edge that cannot be started is a note, not a failure, for a release that does
 * not need it.
 */
export async function reviveEdge(s: SshSession, opts: EdgeOptions): Promise<string> {
  return withEdgeLock(s, async () => (await reviveIfDown(s, opts, await readEdge(s, opts.image))).note);
}

/**
 * reviveEdge's work on the edge as just read, under the edge lock: whether it runs now, and the note to give ("" when
 * it ran already or never did).
 */
async function reviveIfDown(
  s: SshSession,
  opts: EdgeOptions,
  edge: EdgeView,
): Promise<{ running: boolean; note: string }> {
  if (edge.state === "running") return { running: true, note: "" };
  if (edge.state === "missing" && edge.routes.length === 0) return { running: false, note: "" };
  const what = `the edge was ${edge.state === "missing" ? "removed" : edge.state}`;
  try {
    await edgeUpOrFail(s, edge.image || opts.image, "start", edgePublish(edge.routes));
    return { running: true, note: `${what}: started again with its ${edge.routes.length} route(s)` };
  } catch (e) {
    return {
      running: false,
      note: `${what} and could not be started (${isPipelineError(e) ? `${e.code}: ${e.message.split("\n")[0]}` : String(e)}); services behind it get no traffic`,
    };
  }
}

const wantedRoutes = (project: string, shape: ReleaseShape, resolved: ResolvedRelease): EdgeRoute[] =>
  shape.http.map((h) => ({
    project,
    service: h.service,
    listen: resolved.listen[h.service] ?? [],
    ...(h.host ? { host: h.host } : {}),
    upstreams: [],
  }));

/**
 * The resolution checkEdge made of a release, for its switch: the release's folder and `.env` do not change between
 * the two (the jobs run between them touch neither), and `docker compose config` costs a third of a second.
 */
const checked = new WeakMap<object, ResolvedRelease>();
export const resolvedAtCheck = (release: object): ResolvedRelease | undefined => checked.get(release);

/** Routes claimed by deploys of other projects still in progress (see holdClaim). */
async function claimsOfOthers(s: SshSession, project: string): Promise<EdgeRoute[]> {
  const out = await s.run(liveClaims(), "reading the edge's claims");
  return out
    .split("\n")
    .filter((x) => x.startsWith("claim "))
    .flatMap((x) => {
      try {
        return (JSON.parse(x.slice(6)) as EdgeRoute[]).filter((r) => r.project !== project);
      } catch {
        return [];
      }
    });
}

/**
 * Before anything changes, under the edge lock: the edge (as it will be replaced:
 * read from its volume when stopped) and the deploys of other projects in
 * progress leave room for this release's routes, and every host port it must
 * newly publish is free (or held by this project's own containers, which the
 * rollover replaces). The routes are then claimed for as long as this deploy's
 * connection lasts: a concurrent deploy of another project wanting the same
 * port or hostname is refused here, before it changes anything.
 */
export async function checkEdge(
  c: Pick<Context, "s" | "l" | "project" | "edge">,
  release: Pick<Release, "id" | "shape">,
): Promise<{ newPorts: string[]; notes: string[] }> {
  const { s, l, project, edge: opts } = c;
  const { id, shape } = release;
  // compose resolves the release while the lock is taken and the edge read
  const resolving = resolveRelease(s, l, project, id, shape);
  resolving.catch(() => undefined);
  return withEdgeLock(s, async () => {
    const [resolved, edge, claimed] = await Promise.all([
      resolving,
      readEdge(s, opts.image),
      claimsOfOthers(s, project),
    ]);
    checked.set(release, resolved);
    const wanted = wantedRoutes(project, shape, resolved);
    const conflicts = routeConflicts([...edge.routes, ...claimed], project, wanted);
    if (conflicts.length)
      throw new PipelineError(
        "EDGE_CONFLICT",
        `the edge cannot serve this release:\n  ${conflicts.join("\n  ")}`,
        "give the service another host port or hostname in the production compose file (or its .env); nothing was changed",
      );
    const newPorts = edgePublish(replaceRoutes(edge.routes, project, [], wanted)).filter(
      (p) => !edge.publish.includes(p),
    );
    const image = edge.image || opts.image;
    if (newPorts.length) {
      const r = await s.exec(probePorts(image, project, newPorts));
      const holders = r.stdout
        .split("\n")
        .filter((x) => x.startsWith("holder "))
        .map((x) => x.split(" "));
      const foreign = holders.filter(([, , , proj]) => proj !== project);
      if (foreign.length) {
        throw new PipelineError(
          "EDGE_PORT_TAKEN",
          `host port(s) the edge needs are taken: ${foreign.map(([, spec, name, proj]) => `${hostPort(spec ?? "")} by container ${name}${proj ? ` (project ${proj})` : ""}`).join(", ")}; nothing was changed`,
          "stop that container or publish the service on another port",
        );
      }
      if (r.code === EDGE_IMAGE_EXIT)
        throw new PipelineError(
          "EDGE_FAILED",
          `cannot pull the edge's image ${image}: ${tail(r.stderr, 2)}`,
          "the VPS must reach the image's registry (Docker Hub for caddy:2), or the edge must be given an image it can pull: `vps … edge --image=…`",
        );
      if (r.code === EDGE_PORT_TAKEN_EXIT)
        throw new PipelineError(
          "EDGE_PORT_TAKEN",
          `host port(s) ${newPorts.map(hostPort).join(", ")} cannot be published by the edge: ${tail(r.stderr, 2)}; nothing was changed`,
          "a program outside docker holds it: `sudo ss -ltnp` on the VPS shows which; stop it or publish the service on another port",
        );
      if (r.code !== 0)
        throw new PipelineError(
          "EDGE_FAILED",
          `checking the edge's ports failed: ${tail(r.stderr, 3)}`,
          "read the output above",
        );
    }
    // released when this deploy's connection closes, however it ends
    const held = await holdWhileOpen(s, holdClaim(project), JSON.stringify(wanted));
    if (!("release" in held))
      throw new PipelineError(
        "EDGE_FAILED",
        `cannot claim the edge's routes: ${tail(held.stderr, 2)}`,
        "the VPS needs `flock` (package util-linux) and a writable /tmp",
      );
    const notes =
      edge.image && edge.image !== opts.image
        ? [
            `the edge runs ${edge.image}; a deploy does not change the edge's image (every project shares it): \`vps … edge --image=${opts.image}\` replaces it`,
          ]
        : [];
    return { newPorts, notes };
  });
}

export async function containersOf(s: SshSession, project: string): Promise<ServiceContainer[]> {
  return parseServiceContainers(await s.run(serviceContainers(project), "listing the project's containers"));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Wait until the new containers run, are healthy where they have a check, and answer the health path from the edge as
 * users' requests will reach them.
 */
async function waitAnswering(
  s: SshSession,
  project: string,
  names: readonly string[],
  h: HttpSpec,
  host: string,
  deadline: number,
  /** Set when the wait is no longer wanted (the release failed elsewhere): it ends at its next look. */
  cancelled: { now: boolean } = { now: false },
): Promise<HealthOutcome> {
  let last = "starting";
  for (;;) {
    if (cancelled.now) return { ok: false, reasons: [`${h.service}: no longer waited for`] };
    const out = (await s.exec(containerHealth(names))).stdout;
    const rows = out
      .split("\n")
      .filter((x) => x.trim())
      .map((x) => x.trim().replace(/^\//, "").split(" "));
    const bad = rows.find(([, state, health]) => state === "exited" || state === "dead" || health === "unhealthy");
    if (bad)
      return {
        ok: false,
        reasons: [
          `${h.service}: new container ${bad[0]} is ${bad[2] === "unhealthy" ? "unhealthy" : bad[1]}; it never got traffic`,
        ],
      };
    const ready =
      rows.length === names.length &&
      rows.every(
        ([, state, health]) => state === "running" && (health === undefined || health === "" || health === "healthy"),
      );
    if (ready) {
      const answers = await Promise.all(names.map((n) => s.exec(httpFromEdge(project, n, h.port, h.health, host))));
      const failing = answers.findIndex((a) => a.code !== 0);
      if (failing < 0) return { ok: true };
      last = `GET ${h.health} (Host: ${host}) on port ${h.port} from the edge failed: ${tail(answers[failing]!.stderr, 1) || "no answer"}`;
    } else last = rows.map(([n, state, health]) => `${n} ${state}${health ? ` (${health})` : ""}`).join(", ");
    if (Date.now() >= deadline)
      return { ok: false, reasons: [`${h.service}: new container not ready in time (${last}); it never got traffic`] };
    await sleep(250);
  }
}

/** One service behind the edge, rolled onto a release. */
interface Rollover {
  s: SshSession;
  l: Layout;
  project: string;
  id: string;
  h: HttpSpec;
  listen: Listen[];
  /** compose's config hash of the release's definition of the service */
  hash: string;
  replicas: number;
  opts: EdgeOptions;
  /** The server's address as users name it (the SSH host): the Host of a port route's probe. */
  server: string;
  deadline: number;
  timed: Timed;
  /** The switch left the edge running a moment ago: no need to look again before the probe. */
  edgeRunning: boolean;
  /**
   * The services not behind the edge, healthy (or not): awaited before any route changes, so that the new containers
   * start beside the old while those are still getting healthy, and get traffic only once all are.
   */
  gate: Promise<HealthOutcome>;
}

/** Run a part of the switch, adding its time under `switch.<name>` (the bench prints them). */
type Timed = <T>(name: string, f: () => Promise<T>) => Promise<T>;
const untimed: Timed = (_, f) => f();

/**
 * Put one project's route on the edge, under the edge lock, against the edge as
 * it is now: refused when another project took its port or hostname meanwhile;
 * the edge started when stopped and replaced (never left without a working
 * config) when it must publish a new port; the route keeps its project's
 * maintenance page; its own issuer for its hostname.
 */
async function putOnEdge(
  s: SshSession,
  opts: EdgeOptions,
  project: string,
  make: (maintenance: string | undefined) => EdgeRoute,
  before: () => Promise<void> = async () => {},
): Promise<void> {
  await withEdgeLock(s, async () => {
    await before();
    const edge = await readEdge(s, opts.image);
    const route = make(maintenanceOf(edge.routes, project));
    const conflicts = routeConflicts(edge.routes, route.project, [route]);
    if (conflicts.length)
      throw new PipelineError(
        "EDGE_CONFLICT",
        `the edge cannot serve ${route.service} any more:\n  ${conflicts.join("\n  ")}`,
        "another project took the port or hostname since this deploy began; give the service another one",
      );
    const routes = putRoute(edge.routes, route);
    const need = edgePublish(routes);
    const image = edge.image || opts.image;
    if (edge.state !== "running") await edgeUpOrFail(s, image, "start", edge.state === "missing" ? need : []);
    const now = edge.state === "missing" ? need : edge.publish;
    if (need.some((p) => !now.includes(p))) await edgeUpOrFail(s, image, "replace", need, edge.routes);
    const same =
      edge.state === "running" && JSON.stringify(caddyConfig(routes)) === JSON.stringify(caddyConfig(edge.routes));
    if (!same) await loadRoutes(s, routes);
  });
}

async function rollover(o: Rollover): Promise<HealthOutcome> {
  const { s, l, project, id, h, listen, opts, timed } = o;
  const old = (await containersOf(s, project)).filter((c) => c.service === h.service);
  const route =
    (upstreams: string[]) =>
    (maintenance: string | undefined): EdgeRoute => ({
      project,
      service: h.service,
      listen,
      ...(h.host ? { host: h.host, ...(opts.tls !== "acme" ? { tls: opts.tls } : {}) } : {}),
      ...(maintenance !== undefined ? { maintenance } : {}),
      upstreams: upstreams.map((n) => `${n}:${h.port}`),
    });
  const plan = planRollover(old, o.hash, o.replicas);
  if (plan.kind === "in-place") {
    const g = await o.gate;
    if (!g.ok) return g;
    // Only make sure they are on the project's network and the route says so.
    const c = await s.exec(connectToEdge(project, plan.current));
    if (c.code !== 0)
      return {
        ok: false,
        reasons: [`${h.service}: cannot attach its containers to the edge's network: ${tail(c.stderr, 1)}`],
      };
    await putOnEdge(s, opts, project, route(plan.current));
    return { ok: true };
  }
  const up = await timed("beside", () => s.exec(scaleBeside(l, project, id, h.service, plan.scaleTo)));
  const fresh = (await containersOf(s, project))
    .filter((c) => c.service === h.service && !old.some((o) => o.name === c.name))
    .map((c) => c.name);
  const discard = async (reasons: string[]): Promise<HealthOutcome> => {
    if (fresh.length) await s.exec(removeContainers(fresh, 0));
    return { ok: false, reasons };
  };
  if (up.code !== 0)
    return discard([`${h.service}: starting the new container beside the old failed: ${tail(up.stderr, 1)}`]);
  if (fresh.length === 0) return discard([`${h.service}: compose started no new container beside the old`]);
  const c = await timed("connect", () => s.exec(connectToEdge(project, fresh)));
  if (c.code !== 0)
    return discard([`${h.service}: cannot attach the new container to the edge's network: ${tail(c.stderr, 1)}`]);
  // The edge must run for the probe (first deploy, or removed by hand): made with the ports it already had.
  if (!o.edgeRunning)
    await timed("edge-up", () =>
      withEdgeLock(s, async () => {
        const edge = await readEdge(s, opts.image);
        if (edge.state !== "running")
          await edgeUpOrFail(s, edge.image || opts.image, "start", edgePublish(edge.routes));
      }),
    );
  // the others failing end the wait at once
  const cancelled = { now: false };
  const othersFailed = o.gate.then((g) => {
    if (g.ok) return new Promise<never>(() => {});
    cancelled.now = true;
    return g;
  });
  const ready = await timed("ready", () =>
    Promise.race([
      waitAnswering(s, project, fresh, h, hostHeader(h, listen, o.server), o.deadline, cancelled),
      othersFailed,
    ]),
  );
  cancelled.now = true;
  if (!ready.ok) return discard(ready.reasons);
  const g = await o.gate;
  if (!g.ok) return discard(g.reasons);
  // A service moving behind the edge: its old container holds the port the edge takes over (a short gap, once).
  await timed("route", () =>
    putOnEdge(s, opts, project, route(fresh), async () => {
      if (plan.migrating.length) await s.exec(removeContainers(plan.migrating, Math.min(h.drainSeconds, 10)));
    }),
  );
  // Drain: the config change returns at once; the edge's requests to the old containers (and streams opened on them)
  // get `drain` seconds to end, then what is still inside an old container is the app's to finish on SIGTERM.
  if (plan.leaving.length) {
    await timed("drain", () => s.exec(drainFromEdge(project, plan.leaving, h.port, h.drainSeconds)));
    await timed("stop-old", () => s.exec(removeContainers(plan.leaving, h.drainSeconds)));
  }
  return { ok: true };
}

/**
 * Switch to release `id` when the edge is involved (the release has services
 * behind it, or the one it replaces had): files into place; routes of this
 * project that the release drops leave the edge first when their port must be
 * let go of, else when their successor takes their port or hostname (a rename
 * moves traffic in one config change); the other services `up` (stop-first) and
 * healthy; each service behind the edge rolled over; then what the release no
 * longer has goes (routes, containers). Returns the first failure; what it
 * changed stays for the caller's rollback (which goes through here too).
 */
export async function switchWithEdge(o: {
  s: SshSession;
  l: Layout;
  project: string;
  id: string;
  shape: ReleaseShape;
  opts: EdgeOptions;
  timeoutSeconds: number;
  server: string;
  /** Waits for the services not behind the edge (the shape given has only those as long-running). */
  waitOthers: (shape: ReleaseShape) => Promise<HealthOutcome>;
  /** Times the switch's parts (seconds), e.g. into the deploy's durations as `switch.<part>`. */
  time?: (part: string, seconds: number) => void;
  /** The release as checkEdge resolved it (resolvedAtCheck): not resolved again. */
  resolved?: ResolvedRelease | undefined;
  /** Told when the switch brought a stopped or removed edge back (or could not): a note for the deploy. */
  revived?: (note: string) => void;
}): Promise<HealthOutcome> {
  const { s, l, project, id, shape, opts, timeoutSeconds, waitOthers } = o;
  const timed: Timed = o.time
    ? async (name, f) => {
        const t0 = performance.now();
        try {
          return await f();
        } finally {
          o.time!(name, (performance.now() - t0) / 1000);
        }
      }
    : untimed;
  const deadline = Date.now() + timeoutSeconds * 1000;
  const sw = await timed("files", () => s.exec(switchTo(l, id)));
  if (sw.code !== 0)
    return { ok: false, reasons: [`switching the files to release ${id} failed: ${tail(sw.stderr, 2)}`] };
  const resolved = o.resolved ?? (await timed("resolve", () => resolveRelease(s, l, project, id, shape)));
  const behind = shape.http.map((h) => h.service);
  const wanted = wantedRoutes(project, shape, resolved);
  // whether the edge runs once the networks are made, and whether routes of this project outside the release may be
  // left after the rollovers (one that a successor's route replaces goes with it)
  let edgeRunning = false;
  let mayLeave = false;
  await timed("networks", () =>
    withEdgeLock(s, async () => {
      const [edge, claims] = await Promise.all([readEdge(s, opts.image), claimsOfOthers(s, project)]);
      // a stopped edge is brought back first: the project network is joined by the edge container
      const revived = await reviveIfDown(s, opts, edge);
      if (revived.note) o.revived?.(revived.note);
      edgeRunning = revived.running;
      const busy = [project, ...edge.routes.map((r) => r.project), ...claims.map((r) => r.project)];
      const [j] = await Promise.all([
        behind.length ? s.exec(joinProjectNetwork(project)) : Promise.resolve({ code: 0, stderr: "" }),
        s.exec(pruneProjectNetworks([...new Set(busy)])),
      ]);
      if (j.code !== 0)
        throw new PipelineError(
          "EDGE_FAILED",
          `cannot make the edge's network for ${project}: ${tail(j.stderr, 2)}`,
          "`docker network ls` on the VPS; the deploy user must be able to create networks",
        );
      // A dropped route whose port or hostname nothing in the release takes: it goes now, so that a service
      // publishing that port itself again can have it (the edge lets go of it).
      const successor = (r: EdgeRoute) =>
        wanted.some(
          (w) =>
            (w.host !== undefined && w.host === r.host) ||
            w.listen.some((x) => r.listen.some((y) => y.port === x.port)),
        );
      const outside = edge.routes.filter((r) => r.project === project && !behind.includes(r.service));
      const stale = outside.filter((r) => !successor(r));
      mayLeave = !edgeRunning || outside.length > stale.length;
      if (!edgeRunning || stale.length === 0) return;
      const routes = edge.routes.filter((r) => !stale.includes(r));
      await loadRoutes(s, routes);
      const need = edgePublish(routes);
      // a removed edge brought back above publishes what its routes needed
      const published = edge.state === "missing" ? edgePublish(edge.routes) : edge.publish;
      if (published.some((p) => !need.includes(p)))
        await edgeUpOrFail(s, edge.image || opts.image, "replace", need, routes);
    }),
  );
  const others = resolved.enabled.filter((x) => !behind.includes(x) && !shape.jobs.some((j) => j.service === x));
  if (others.length) {
    const r = await timed("others-up", () => s.exec(upServices(l, project, id, others)));
    if (r.code !== 0)
      return { ok: false, reasons: [`docker compose up failed: ${tail(r.stderr, 1).trim() || `exit code ${r.code}`}`] };
  }
  // waited for beside the first rollover's new containers starting (each rollover awaits it before its route changes)
  const gate = timed("others-healthy", () =>
    waitOthers({ ...shape, long: shape.long.filter((x) => !behind.includes(x)) }),
  );
  // a failure to even look (a lost connection) is thrown where it is awaited, never left unhandled meanwhile
  gate.catch(() => undefined);
  for (const h of shape.http) {
    const r = await rollover({
      s,
      l,
      project,
      id,
      h,
      listen: resolved.listen[h.service] ?? [],
      hash: resolved.hashes[h.service] ?? "",
      replicas: resolved.replicas[h.service] ?? 1,
      opts,
      server: o.server,
      deadline: Math.max(deadline, Date.now() + 5000),
      timed,
      edgeRunning,
      gate,
    });
    if (!r.ok) {
      // nothing keeps running after the switch returns (its caller rolls back on this session); the others' failure,
      // when they failed, is the cause to report
      const g = await gate;
      return g.ok ? r : g;
    }
  }
  if (shape.http.length === 0) {
    const g = await gate;
    if (!g.ok) return g;
  }
  // what `up --remove-orphans` would have done, once every route has moved: the routes and containers of services the
  // release no longer has
  await timed("orphans", async () => {
    if (mayLeave)
      await withEdgeLock(s, async () => {
        const edge = await readEdge(s, opts.image);
        const left = edge.routes.filter((r) => r.project === project && !behind.includes(r.service));
        if (edge.state === "running" && left.length)
          await loadRoutes(
            s,
            edge.routes.filter((r) => !left.includes(r)),
          );
      });
    const orphans = (await containersOf(s, project)).filter((c) => !(c.service in shape.images)).map((c) => c.name);
    if (orphans.length) await s.exec(removeContainers(orphans, 10));
    if (behind.length === 0) await withEdgeLock(s, () => s.exec(leaveProjectNetwork(project)));
  });
  return { ok: true };
}
