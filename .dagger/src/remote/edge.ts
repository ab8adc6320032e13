/**
 * Releases with services behind the edge (core/edge.ts): the check made before
 * anything changes, and the switch — the other services as today (stop-first),
 * then each service behind the edge rolled over: new containers beside the old,
 * healthy and answering from the edge's network before the edge moves traffic to
 * them in one config change, then the old ones drained and removed.
 */
import type { ReleaseShape } from "../core/compose.js";
import { PipelineError, parseJson, tail } from "../core/errors.js";
import {
  EDGE_IMAGE_EXIT, EDGE_PORT_TAKEN_EXIT, connectToEdge, containerHealth, edgeState, ensureEdge, holdEdgeLock, httpFromEdge,
  loadEdgeConfig, parseServiceContainers, planRollover, probePorts, releaseConfig, removeContainers, scaleBeside, serviceContainers, upServices,
  type ServiceContainer,
} from "../core/edge-commands.js";
import {
  EDGE_CONTAINER, PUBLISHED_LABEL, caddyConfig, edgePublish, hostPort, parseListen, publishedByEdge, replaceRoutes, routeConflicts, routesFromCaddy,
  type EdgeRoute, type Listen,
} from "../core/edge.js";
import type { HttpSpec } from "../core/extension.js";
import { LOCK_BUSY_EXIT, switchTo, type Layout } from "../core/remote-commands.js";
import { holdWhileOpen } from "./session.js";
import type { SshSession } from "./ssh.js";
import type { HealthOutcome } from "../core/health.js";
import type { EdgeOptions } from "./target.js";
import type { Context, Release } from "./targets/target.js";

/** How the VPS resolves a release: the services that `up` would start, and where each service behind the edge listens. */
export interface ResolvedRelease {
  enabled: string[];
  listen: Record<string, Listen[]>;
  /** service → compose's config hash: a container with this hash runs exactly this release's definition. */
  hashes: Record<string, string>;
}

export async function resolveRelease(s: SshSession, l: Layout, project: string, id: string, shape: ReleaseShape): Promise<ResolvedRelease> {
  const out = await s.run(releaseConfig(l, project, id), `resolving release ${id} with docker compose config`, { code: "COMPOSE_INVALID", hint: "the release's compose file or .env is not valid for the compose on the VPS; the output above says where" });
  const [, services = "", hashes = "", config = ""] = out.split(/^=== (?:services|hashes|config)$/m);
  const conf = parseJson<{ services?: Record<string, { labels?: Record<string, string> }> }>(config, "docker compose config --format json");
  const listen: Record<string, Listen[]> = {};
  for (const h of shape.http) listen[h.service] = parseListen(h.service, conf.services?.[h.service]?.labels?.[PUBLISHED_LABEL] ?? "");
  const lines = (t: string) => t.split("\n").map((x) => x.trim()).filter(Boolean);
  return { enabled: lines(services), listen, hashes: Object.fromEntries(lines(hashes).map((x) => x.split(/\s+/) as [string, string])) };
}

export interface EdgeView {
  /** `missing`, `running`, `exited`… */
  state: string;
  image: string;
  publish: string[];
  routes: EdgeRoute[];
}

export async function readEdge(s: SshSession): Promise<EdgeView> {
  const out = await s.run(edgeState(), "reading the edge's state", { code: "EDGE_FAILED", hint: `the edge runs but its admin API does not answer: \`docker logs ${EDGE_CONTAINER}\` on the VPS` });
  const nl = out.indexOf("\n");
  const head = (nl < 0 ? out : out.slice(0, nl)).replace(/^edge /, "").trim();
  if (head === "missing") return { state: "missing", image: "", publish: [], routes: [] };
  const [state = "", image = "", bindings = "{}"] = head.split("|");
  return { state, image, publish: publishedByEdge(bindings), routes: state === "running" ? routesFromCaddy(nl < 0 ? "" : out.slice(nl + 1)) : [] };
}

/** Hold the VPS-wide edge lock around a read-modify-write of its config (projects share the edge). */
export async function withEdgeLock<T>(s: SshSession, body: () => Promise<T>): Promise<T> {
  const held = await holdWhileOpen(s, holdEdgeLock(120));
  if (!("release" in held)) {
    throw new PipelineError("EDGE_FAILED", held.code === LOCK_BUSY_EXIT ? "another deploy kept the edge's lock for 120s" : `cannot take the edge's lock: ${tail(held.stderr, 2)}`, "another project's deploy is changing the edge; try again when it is done");
  }
  try {
    return await body();
  } finally {
    await held.release();
  }
}

async function loadRoutes(s: SshSession, routes: readonly EdgeRoute[], opts: EdgeOptions): Promise<void> {
  const r = await s.exec(loadEdgeConfig(), { stdin: JSON.stringify(caddyConfig(routes, opts.tls)) });
  if (r.code !== 0) throw new PipelineError("EDGE_FAILED", `the edge refused its new config (it keeps the old one): ${tail(r.stderr, 3)}`, `\`docker logs ${EDGE_CONTAINER}\` on the VPS says more`);
}

async function startEdge(s: SshSession, opts: EdgeOptions, recreate: boolean, publish: readonly string[]): Promise<void> {
  const r = await s.exec(ensureEdge(opts.image, recreate, publish));
  if (r.code === EDGE_IMAGE_EXIT) throw new PipelineError("EDGE_FAILED", `cannot pull the edge's image ${opts.image}: ${tail(r.stderr, 2)}`, "the VPS must reach Docker Hub for caddy:2, or pass --edge-image with an image it can pull");
  if (r.code === EDGE_PORT_TAKEN_EXIT) throw new PipelineError("EDGE_PORT_TAKEN", `the edge cannot publish ${publish.join(", ")}: ${tail(r.stderr, 2)}`, "free the port on the VPS (`sudo ss -ltnp` shows who holds it) or publish the service on another port");
  if (r.code !== 0) throw new PipelineError("EDGE_FAILED", `the edge did not start: ${tail(r.stderr, 4)}`, `\`docker logs ${EDGE_CONTAINER}\` on the VPS says why`);
}

const wantedRoutes = (project: string, shape: ReleaseShape, resolved: ResolvedRelease): EdgeRoute[] =>
  shape.http.map((h) => ({ project, service: h.service, listen: resolved.listen[h.service] ?? [], ...(h.host ? { host: h.host } : {}), upstreams: [] }));

/**
 * Before anything changes: the edge can take this release's routes — no port or
 * hostname of another project, and every host port it must newly publish is
 * free (or held by this project's own containers, which the rollover replaces).
 */
export async function checkEdge(c: Pick<Context, "s" | "l" | "project" | "edge">, release: Pick<Release, "id" | "shape">): Promise<{ newPorts: string[] }> {
  const { s, l, project, edge: opts } = c;
  const { id, shape } = release;
  const resolved = await resolveRelease(s, l, project, id, shape);
  const edge = await readEdge(s);
  const wanted = wantedRoutes(project, shape, resolved);
  const conflicts = routeConflicts(edge.routes, wanted);
  if (conflicts.length) throw new PipelineError("EDGE_CONFLICT", `the edge cannot serve this release:\n  ${conflicts.join("\n  ")}`, "give the service another host port or hostname in the production compose file (or its .env)");
  const newPorts = edgePublish(replaceRoutes(edge.routes, project, [], wanted)).filter((p) => !edge.publish.includes(p));
  if (newPorts.length === 0) return { newPorts };
  const r = await s.exec(probePorts(opts.image, newPorts));
  const foreign = r.stdout.split("\n").filter((x) => x.startsWith("holder ")).map((x) => x.split(" ")).filter(([, , , proj]) => proj !== project);
  if (foreign.length) {
    throw new PipelineError("EDGE_PORT_TAKEN", `host port(s) the edge needs are taken: ${foreign.map(([, spec, name, proj]) => `${hostPort(spec ?? "")} by container ${name}${proj ? ` (project ${proj})` : ""}`).join(", ")}; nothing was changed`, "stop that container or publish the service on another port");
  }
  if (r.code === EDGE_IMAGE_EXIT) throw new PipelineError("EDGE_FAILED", `cannot pull the edge's image ${opts.image}: ${tail(r.stderr, 2)}`, "the VPS must reach Docker Hub for caddy:2, or pass --edge-image with an image it can pull");
  if (r.code === EDGE_PORT_TAKEN_EXIT) throw new PipelineError("EDGE_PORT_TAKEN", `host port(s) ${newPorts.map(hostPort).join(", ")} cannot be published by the edge: ${tail(r.stderr, 2)}; nothing was changed`, "a program outside docker holds it: `sudo ss -ltnp` on the VPS shows which; stop it or publish the service on another port");
  if (r.code !== 0) throw new PipelineError("EDGE_FAILED", `checking the edge's ports failed: ${tail(r.stderr, 3)}`, "read the output above");
  return { newPorts };
}

export async function containersOf(s: SshSession, project: string): Promise<ServiceContainer[]> {
  return parseServiceContainers(await s.run(serviceContainers(project), "listing the project's containers"));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until the new containers run, are healthy where they have a check, and answer the health path from the edge. */
async function waitAnswering(s: SshSession, names: readonly string[], h: HttpSpec, deadline: number): Promise<HealthOutcome> {
  let last = "starting";
  for (;;) {
    const out = (await s.exec(containerHealth(names))).stdout;
    const rows = out.split("\n").filter((x) => x.trim()).map((x) => x.trim().replace(/^\//, "").split(" "));
    const bad = rows.find(([, state, health]) => state === "exited" || state === "dead" || health === "unhealthy");
    if (bad) return { ok: false, reasons: [`${h.service}: new container ${bad[0]} is ${bad[2] === "unhealthy" ? "unhealthy" : bad[1]}; it never got traffic`] };
    const ready = rows.length === names.length && rows.every(([, state, health]) => state === "running" && (health === undefined || health === "" || health === "healthy"));
    if (ready) {
      const answers = await Promise.all(names.map((n) => s.exec(httpFromEdge(n, h.port, h.health))));
      const failing = answers.findIndex((a) => a.code !== 0);
      if (failing < 0) return { ok: true };
      last = `GET ${h.health} on port ${h.port} from the edge failed: ${tail(answers[failing]!.stderr, 1) || "no answer"}`;
    } else last = rows.map(([n, state, health]) => `${n} ${state}${health ? ` (${health})` : ""}`).join(", ");
    if (Date.now() >= deadline) return { ok: false, reasons: [`${h.service}: new container not ready in time (${last}); it never got traffic`] };
    await sleep(250);
  }
}

/**
 * One service behind the edge onto release `id`: new containers beside the old
 * (`--no-recreate --scale`), ready, then the route moved in one config change,
 * then the old drained and removed. A new container that is not ready is
 * removed without ever having had traffic.
 */
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
  deadline: number;
}

async function rollover(o: Rollover): Promise<HealthOutcome> {
  const { s, l, project, id, h, listen, opts } = o;
  const old = (await containersOf(s, project)).filter((c) => c.service === h.service);
  const route = (upstreams: string[]): EdgeRoute => ({ project, service: h.service, listen, ...(h.host ? { host: h.host } : {}), upstreams: upstreams.map((n) => `${n}:${h.port}`) });
  const plan = planRollover(old, o.hash, o.replicas);
  if (plan.kind === "in-place") {
    // Only make sure the route says so.
    await withEdgeLock(s, async () => {
      const edge = await readEdge(s);
      const mine = edge.routes.find((r) => r.project === project && r.service === h.service);
      const want = route(plan.current);
      if (!mine || mine.upstreams.join() !== want.upstreams.join() || JSON.stringify(mine.listen) !== JSON.stringify(want.listen) || mine.host !== want.host) {
        await loadRoutes(s, replaceRoutes(edge.routes, project, edge.routes.filter((r) => r.project === project).map((r) => r.service), [want]), opts);
      }
    });
    return { ok: true };
  }
  // The edge must be there before a new container can join its network (first deploy, or removed by hand).
  await withEdgeLock(s, async () => {
    const edge = await readEdge(s);
    // Created with this service's ports unless its old container still holds them; restarted as it was when stopped.
    if (edge.state !== "running") await startEdge(s, opts, false, plan.migrating.length ? [] : edgePublish([route([])]));
  });
  const up = await s.exec(scaleBeside(l, project, id, h.service, plan.scaleTo));
  const fresh = (await containersOf(s, project)).filter((c) => c.service === h.service && !old.some((o) => o.name === c.name)).map((c) => c.name);
  const discard = async (reasons: string[]): Promise<HealthOutcome> => {
    if (fresh.length) await s.exec(removeContainers(fresh, 0));
    return { ok: false, reasons };
  };
  if (up.code !== 0) return discard([`${h.service}: starting the new container beside the old failed: ${tail(up.stderr, 1)}`]);
  if (fresh.length === 0) return discard([`${h.service}: compose started no new container beside the old`]);
  const c = await s.exec(connectToEdge(fresh));
  if (c.code !== 0) return discard([`${h.service}: cannot attach the new container to the edge's network: ${tail(c.stderr, 1)}`]);
  const ready = await waitAnswering(s, fresh, h, o.deadline);
  if (!ready.ok) return discard(ready.reasons);

  await withEdgeLock(s, async () => {
    // A service moving behind the edge: its old container holds the port the edge takes over (a short gap, once).
    if (plan.migrating.length) await s.exec(removeContainers(plan.migrating, Math.min(h.drainSeconds, 10)));
    const edge = await readEdge(s);
    const routes = replaceRoutes(edge.routes, project, edge.routes.filter((r) => r.project === project).map((r) => r.service), [route(fresh)]);
    const need = edgePublish(routes);
    if (edge.state !== "running" || need.some((p) => !edge.publish.includes(p))) await startEdge(s, opts, true, need);
    await loadRoutes(s, routes, opts);
  });
  // Drain: the reload returns once Caddy has finished the requests its old config sent (its grace period waits for
  // them); what is still inside an old container is the app's to finish on SIGTERM, within `drain` seconds.
  if (plan.leaving.length) await s.exec(removeContainers(plan.leaving, h.drainSeconds));
  return { ok: true };
}

/**
 * Switch to release `id` when the edge is involved (the release has services
 * behind it, or the one it replaces had): files into place; routes of this
 * project that the release no longer has leave the edge, with their ports;
 * the other services `up` (stop-first) and healthy; then each service behind the
 * edge rolled over. Returns the first failure; what it changed stays for the
 * caller's rollback (which goes through here too).
 */
export async function switchWithEdge(o: {
  s: SshSession; l: Layout; project: string; id: string; shape: ReleaseShape; opts: EdgeOptions; timeoutSeconds: number;
  /** Waits for the services not behind the edge (the shape given has only those as long-running). */
  waitOthers: (shape: ReleaseShape) => Promise<HealthOutcome>;
}): Promise<HealthOutcome> {
  const { s, l, project, id, shape, opts, timeoutSeconds, waitOthers } = o;
  const deadline = Date.now() + timeoutSeconds * 1000;
  const sw = await s.exec(switchTo(l, id));
  if (sw.code !== 0) return { ok: false, reasons: [`switching the files to release ${id} failed: ${tail(sw.stderr, 2)}`] };
  const resolved = await resolveRelease(s, l, project, id, shape);
  const behind = shape.http.map((h) => h.service);
  await withEdgeLock(s, async () => {
    const edge = await readEdge(s);
    const stale = edge.routes.filter((r) => r.project === project && !behind.includes(r.service));
    if (edge.state !== "running" || stale.length === 0) return;
    const routes = replaceRoutes(edge.routes, project, behind);
    await loadRoutes(s, routes, opts);
    // A service that left the edge publishes its port itself again: the edge lets go of it.
    const need = edgePublish(routes);
    if (edge.publish.some((p) => !need.includes(p))) await startEdge(s, opts, true, need);
  });
  const others = resolved.enabled.filter((x) => !behind.includes(x) && !shape.jobs.some((j) => j.service === x));
  if (others.length) {
    const r = await s.exec(upServices(l, project, id, others));
    if (r.code !== 0) return { ok: false, reasons: [`docker compose up failed: ${tail(r.stderr, 1).trim() || `exit code ${r.code}`}`] };
  } else {
    // what `up --remove-orphans` would have done: containers of services the release no longer has
    const orphans = (await containersOf(s, project)).filter((c) => !(c.service in shape.images)).map((c) => c.name);
    if (orphans.length) await s.exec(removeContainers(orphans, 10));
  }
  const first = await waitOthers({ ...shape, long: shape.long.filter((x) => !behind.includes(x)) });
  if (!first.ok) return first;
  for (const h of shape.http) {
    const r = await rollover({ s, l, project, id, h, listen: resolved.listen[h.service] ?? [], hash: resolved.hashes[h.service] ?? "", replicas: shape.replicas[h.service] ?? 1, opts, deadline: Math.max(deadline, Date.now() + 5000) });
    if (!r.ok) return r;
  }
  return { ok: true };
}
