/**
 * The edge: one Caddy container per VPS, owned by the pipeline, in front of every
 * service that opts in with `x-vps-pipeline: { http: … }`. It holds the host ports
 * those services published (and 80/443 for hostname routes) and proxies to one
 * release's containers by name, over one network per project (projects cannot
 * reach each other). Its config is the routing table: built here from routes and
 * read back from Caddy, so that several projects share one edge and a restarted
 * edge (`caddy run --resume`) keeps every route. Each route carries what its own
 * project asked for (a hostname's issuer, a maintenance page): no project's
 * choice applies to another's routes.
 */
import { isIP } from "node:net";
import { PipelineError } from "../errors.js";

export const EDGE_CONTAINER = "vps-pipeline-edge";
/** The edge's own network (containers of releases before per-project networks joined it). */
export const EDGE_NETWORK = "vps-pipeline-edge";
/** The network the edge shares with one project's containers only: projects cannot reach each other through it. */
export const projectNetwork = (project: string): string => `vps-pipeline-edge-${project}`;
/** Label on each project network, so that a replaced edge joins them all again. */
export const PROJECT_NETWORK_LABEL = "vps-pipeline.edge-network";
/** Caddy's config (autosave.json) and data (certificates) survive a recreated edge. */
export const EDGE_VOLUME = "vps-pipeline-edge";
/** Admin API inside the edge's own network namespace only: never published. */
export const EDGE_ADMIN = "localhost:2019";
/** The label holding the `ports:` of a service behind the edge (compose interpolates it on the VPS). */
export const PUBLISHED_LABEL = "vps-pipeline.edge.published";

/** A host address the edge listens on for a service: `[hostIp:]port`. */
export interface Listen {
  hostIp?: string;
  port: number;
}

/**
 * Who signs a hostname's certificate: `acme` (Caddy's defaults: Let's Encrypt,
 * then ZeroSSL), `internal` (Caddy's own CA), or the directory URL of another
 * ACME CA (`https://…/directory`, a staging or company CA).
 */
export type EdgeTls = string;

export interface EdgeRoute {
  project: string;
  service: string;
  listen: Listen[];
  host?: string;
  /** The issuer this route's project asked for its hostname (absent: `acme`). */
  tls?: EdgeTls;
  /** Set while the project is in maintenance: the page the edge answers with (503) instead of proxying. */
  maintenance?: string;
  /** `container:port` the edge proxies to (one per replica). */
  upstreams: string[];
}

/** Why `tls` is not an issuer the edge knows, or undefined. */
export function invalidEdgeTls(tls: string): string | undefined {
  if (tls === "acme" || tls === "internal") return undefined;
  let u: URL;
  try {
    u = new URL(tls);
  } catch {
    return "must be acme (Let's Encrypt/ZeroSSL), internal (Caddy's own CA) or the https:// directory URL of an ACME CA";
  }
  return u.protocol === "https:" && !u.username && !u.password && !/["\\\s]/.test(tls)
    ? undefined
    : "an ACME directory URL must be https:// without credentials in it";
}

/** A host IP the edge can bind: an IPv4 or IPv6 literal (brackets allowed), nothing else reaches a command line. */
export function validHostIp(ip: string): boolean {
  return isIP(ip.replace(/^\[|\]$/g, "")) !== 0;
}

const shown = (p: unknown) => (typeof p === "object" && p !== null ? JSON.stringify(p) : String(p));

/** Split `a:b:c` on the colons outside `${…}`. */
function splitColons(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === "$" && s[i + 1] === "{") depth++;
    if (ch === "}" && depth > 0) depth--;
    if (ch === ":" && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/**
 * The `ports:` of a service behind the edge as `[hostIp:]published:target`
 * strings (interpolation left to compose on the VPS), or the problems. Every
 * entry must publish the HTTP port on a fixed host port: the edge takes that
 * host port over, and two copies of the service cannot both hold it.
 */
export function edgePublished(
  where: string,
  ports: unknown,
  httpPort: number,
): { published: string[]; problems: string[] } {
  const problems: string[] = [];
  const published: string[] = [];
  const list = ports === undefined || ports === null ? [] : Array.isArray(ports) ? ports : [ports];
  for (const p of list) {
    let hostIp: string | undefined;
    let pub: string | undefined;
    let target: string;
    let proto = "tcp";
    if (typeof p === "string" || typeof p === "number") {
      let text = String(p);
      const slash = text.lastIndexOf("/");
      if (slash > text.lastIndexOf("}")) {
        proto = text.slice(slash + 1);
        text = text.slice(0, slash);
      }
      const parts = splitColons(text);
      target = parts.pop() ?? "";
      pub = parts.pop();
      hostIp = parts.length ? parts.join(":").replace(/^\[|\]$/g, "") : undefined;
    } else if (p && typeof p === "object") {
      const o = p as Record<string, unknown>;
      target = String(o.target ?? "");
      pub = o.published === undefined ? undefined : String(o.published);
      hostIp = typeof o.host_ip === "string" ? o.host_ip : undefined;
      proto = typeof o.protocol === "string" ? o.protocol : "tcp";
    } else {
      problems.push(`${where}.ports: \`${shown(p)}\` is not a port mapping`);
      continue;
    }
    const q = shown(p);
    if (proto !== "tcp") problems.push(`${where}.ports: \`${q}\` is ${proto}; the edge proxies HTTP over tcp only`);
    else if (target !== String(httpPort)) {
      problems.push(
        `${where}.ports: \`${q}\` publishes container port ${target}, but only the HTTP port ${httpPort} goes through the edge; drop it or move it to a service that is not behind the edge`,
      );
    } else if (pub === undefined || pub === "") {
      problems.push(
        `${where}.ports: \`${q}\` has no host port; write \`<host port>:${httpPort}\` (the edge listens there)`,
      );
    } else if (/^\d+-\d+$/.test(pub))
      problems.push(`${where}.ports: \`${q}\`: a port range cannot go through the edge; publish one port`);
    else if (hostIp !== undefined && !hostIp.includes("${") && !validHostIp(hostIp)) {
      problems.push(
        `${where}.ports: \`${q}\`: the host IP \`${hostIp}\` is not an IPv4 or IPv6 address; write one (e.g. 127.0.0.1) or leave it out to listen on every address`,
      );
    } else published.push(`${hostIp ? `${hostIp.includes(":") ? `[${hostIp}]` : hostIp}:` : ""}${pub}:${target}`);
  }
  return { published, problems };
}

/**
 * The listen addresses of a published label once compose has interpolated it
 * (`127.0.0.1:8080:8000,9090:8000`). A value that is not a port is an error
 * naming the service: it came from the `.env`.
 */
export function parseListen(service: string, label: string): Listen[] {
  if (label.trim() === "") return [];
  return label.split(",").map((entry) => {
    const parts = entry.trim().split(":");
    parts.pop(); // the container port
    const port = parts.pop() ?? "";
    const hostIp = parts.length ? parts.join(":").replace(/^\[|\]$/g, "") : undefined;
    if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65_535) {
      throw new PipelineError(
        "INVALID_INPUT",
        `services.${service}.ports: the host port \`${port}\` (after the .env was applied) is not a port number`,
        `set the variable used in ${service}'s ports in the production .env to a port between 1 and 65535`,
      );
    }
    if (hostIp !== undefined && hostIp !== "" && !validHostIp(hostIp)) {
      throw new PipelineError(
        "INVALID_INPUT",
        `services.${service}.ports: the host IP \`${hostIp}\` (after the .env was applied) is not an IPv4 or IPv6 address`,
        `set the variable used in ${service}'s ports in the production .env to an address such as 127.0.0.1, or leave the address out`,
      );
    }
    return hostIp && hostIp !== "0.0.0.0" ? { hostIp, port: Number(port) } : { port: Number(port) };
  });
}

const SERVER_PREFIX = "vps-pipeline|";
const HTTPS_SERVER = "vps-pipeline-https";
const ROUTE_PREFIX = "vps-pipeline|";

/** What the edge must publish: each route's ports, and 80/443 once any route has a hostname. */
export function edgePublish(routes: readonly EdgeRoute[]): string[] {
  const out = new Set<string>();
  for (const r of routes)
    for (const l of r.listen)
      out.add(`${l.hostIp ? `${l.hostIp.includes(":") ? `[${l.hostIp}]` : l.hostIp}:` : ""}${l.port}:${l.port}`);
  if (routes.some((r) => r.host)) {
    out.add("80:80");
    out.add("443:443");
  }
  return [...out].sort();
}

/** `docker inspect`'s HostConfig.PortBindings as the same strings edgePublish makes. */
export function publishedByEdge(bindingsJson: string): string[] {
  let b: Record<string, { HostIp?: string; HostPort?: string }[] | null> | null;
  try {
    b = JSON.parse(bindingsJson) as typeof b;
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const [key, list] of Object.entries(b ?? {})) {
    const port = key.split("/")[0];
    for (const x of list ?? []) {
      const ip = x.HostIp && x.HostIp !== "0.0.0.0" ? x.HostIp : "";
      out.push(`${ip ? `${ip.includes(":") ? `[${ip}]` : ip}:` : ""}${x.HostPort ?? port}:${port}`);
    }
  }
  return out.sort();
}

/**
 * How long an upgraded connection (a WebSocket) opened under a config outlives that config. Every route change of
 * any project unloads the whole config: without this Caddy closes every WebSocket on the server at once. They end
 * instead when their client or their container does (a project's own at its drain). Caddy ≥ 2.7.
 */
export const STREAM_CLOSE_DELAY = "24h";
/** The oldest Caddy the edge's config loads in (`stream_close_delay`). */
export const OLDEST_CADDY = "2.7";

function proxy(upstreams: readonly string[]): Record<string, unknown> {
  return {
    handler: "reverse_proxy",
    upstreams: upstreams.map((dial) => ({ dial })),
    stream_close_delay: STREAM_CLOSE_DELAY,
    // a replica that stops answering mid-rollover: the request goes to another instead of failing
    load_balancing: { selection_policy: { policy: "round_robin" }, try_duration: "5s", try_interval: "100ms" },
  };
}

/** What the edge answers while a project is in maintenance: the page, 503, never cached, come back in a minute. */
function maintenancePage(page: string): Record<string, unknown> {
  return {
    handler: "static_response",
    status_code: 503,
    headers: { "Content-Type": ["text/html; charset=utf-8"], "Retry-After": ["60"], "Cache-Control": ["no-store"] },
    body: page,
    close: false,
  };
}

/**
 * The handlers of a route: the proxy, behind the maintenance page when there is one (the proxy stays, holding the
 * upstreams).
 */
const handlers = (r: EdgeRoute) =>
  r.maintenance !== undefined ? [maintenancePage(r.maintenance), proxy(r.upstreams)] : [proxy(r.upstreams)];

/** The page shown in maintenance when the project gives none. */
export const DEFAULT_MAINTENANCE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Down for maintenance</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 20vh auto; padding: 0 1rem; color: #222">
<h1>Down for maintenance</h1><p>We are working on this site and will be back shortly. Please try again in a few minutes.</p>
</body></html>
`;

/** The issuer modules of one `EdgeTls`; undefined for `acme` (Caddy's defaults). */
function issuers(tls: EdgeTls): Record<string, unknown>[] | undefined {
  if (tls === "acme") return undefined;
  if (tls === "internal") return [{ module: "internal" }];
  return [{ module: "acme", ca: tls }];
}

/**
 * The whole Caddy config (JSON) for these routes. Each hostname gets the issuer
 * its own route asked for (a staging project's `internal` never reaches
 * production's hostname). Two routes on one host port or one hostname cannot
 * both be written: the second would silently replace the first.
 */
export function caddyConfig(routes: readonly EdgeRoute[]): Record<string, unknown> {
  const servers: Record<string, unknown> = {};
  const owner = new Map<string, string>();
  const claim = (key: string, r: EdgeRoute) => {
    const who = `${r.project}/${r.service}`;
    const had = owner.get(key);
    if (had !== undefined && had !== who)
      throw new PipelineError(
        "EDGE_CONFLICT",
        `${key} would be served for both ${had} and ${who}`,
        "a project's routes must not take another's host port or hostname; deploy the other project's release without it first",
      );
    owner.set(key, who);
  };
  const sorted = [...routes].sort((a, b) => `${a.project}/${a.service}`.localeCompare(`${b.project}/${b.service}`));
  for (const r of sorted) {
    for (const l of r.listen) {
      claim(`host port ${l.port}`, r);
      servers[`${SERVER_PREFIX}${l.hostIp ?? ""}|${l.port}`] = {
        listen: [`:${l.port}`],
        routes: [
          { "@id": `${ROUTE_PREFIX}${r.project}|${r.service}|port|${l.hostIp ?? ""}|${l.port}`, handle: handlers(r) },
        ],
        automatic_https: { disable: true },
      };
    }
    if (r.host) claim(`hostname ${r.host}`, r);
  }
  const hosts = sorted.filter((r) => r.host);
  if (hosts.length) {
    servers[HTTPS_SERVER] = {
      listen: [":443"],
      routes: hosts.map((r) => ({
        "@id": `${ROUTE_PREFIX}${r.project}|${r.service}|host`,
        match: [{ host: [r.host] }],
        handle: handlers(r),
        terminal: true,
      })),
    };
  }
  const apps: Record<string, unknown> = { http: { servers } };
  const byIssuer = new Map<string, string[]>();
  for (const r of hosts) {
    const tls = r.tls ?? "acme";
    if (tls !== "acme") byIssuer.set(tls, [...(byIssuer.get(tls) ?? []), r.host!]);
  }
  if (byIssuer.size) {
    apps.tls = {
      automation: { policies: [...byIssuer].map(([tls, subjects]) => ({ subjects, issuers: issuers(tls) })) },
    };
  }
  return { admin: { listen: EDGE_ADMIN }, apps };
}

interface CaddyHandler {
  handler?: string;
  upstreams?: { dial?: string }[];
  body?: string;
}
interface CaddyConf {
  apps?: {
    http?: {
      servers?: Record<
        string,
        { routes?: { "@id"?: string; match?: { host?: string[] }[]; handle?: CaddyHandler[] }[] }
      >;
    };
    tls?: { automation?: { policies?: { subjects?: string[]; issuers?: { module?: string; ca?: string }[] }[] } };
  };
}

/**
 * Read the routes back from the edge's config (its admin API, or the copy in its volume); anything not ours is ignored.
 */
export function routesFromCaddy(configJson: string): EdgeRoute[] {
  let conf: CaddyConf | null;
  try {
    conf = JSON.parse(configJson || "null") as CaddyConf | null;
  } catch {
    throw new PipelineError(
      "REMOTE_OUTPUT_INVALID",
      "the edge's config (Caddy admin API) is not JSON",
      "look at the edge: `docker logs vps-pipeline-edge` on the VPS",
    );
  }
  const issuerOf = new Map<string, EdgeTls>();
  for (const p of conf?.apps?.tls?.automation?.policies ?? []) {
    const i = p.issuers?.[0];
    const tls = i?.module === "internal" ? "internal" : i?.module === "acme" && i.ca ? i.ca : "acme";
    for (const subject of p.subjects ?? []) issuerOf.set(subject, tls);
  }
  const byKey = new Map<string, EdgeRoute>();
  for (const server of Object.values(conf?.apps?.http?.servers ?? {})) {
    for (const route of server.routes ?? []) {
      const id = route["@id"];
      if (!id?.startsWith(ROUTE_PREFIX)) continue;
      const [, project, service, kind, hostIp, port] = id.split("|");
      if (!project || !service) continue;
      const key = `${project}/${service}`;
      const r = byKey.get(key) ?? { project, service, listen: [], upstreams: [] };
      const handle = route.handle ?? [];
      r.upstreams = (handle.find((h) => h.handler === "reverse_proxy")?.upstreams ?? [])
        .map((u) => u.dial ?? "")
        .filter(Boolean);
      const page = handle.find((h) => h.handler === "static_response");
      if (page) r.maintenance = page.body ?? "";
      if (kind === "port" && port) r.listen.push(hostIp ? { hostIp, port: Number(port) } : { port: Number(port) });
      if (kind === "host") {
        const h = route.match?.[0]?.host?.[0];
        if (h) {
          r.host = h;
          const tls = issuerOf.get(h);
          if (tls && tls !== "acme") r.tls = tls;
        }
      }
      byKey.set(key, r);
    }
  }
  return [...byKey.values()];
}

/**
 * Why `wanted` (all of one project's routes in its new release) cannot go on an
 * edge that serves `all`: a port or hostname another project has, a port route
 * on 80/443 beside hostname routes (either way round). The project's current
 * routes do not count: its release replaces them all (a renamed service, a port
 * moved to another service). Empty when it fits.
 */
export function routeConflicts(all: readonly EdgeRoute[], project: string, wanted: readonly EdgeRoute[]): string[] {
  const problems: string[] = [];
  const others = all.filter((r) => r.project !== project);
  const after = [...others, ...wanted];
  const hostRoute = after.find((r) => r.host);
  const who = (r: EdgeRoute) => (r.project === project ? r.service : `${r.project}/${r.service}`);
  for (const w of wanted) {
    const ports = w.listen.map((l) => l.port);
    if (new Set(ports).size !== ports.length)
      problems.push(
        `${w.service}: publishes one host port twice (on two addresses); the edge listens on each host port once`,
      );
    for (const l of w.listen) {
      const holder = after.find((r) => r !== w && r.listen.some((x) => x.port === l.port));
      if (holder) problems.push(`${w.service}: host port ${l.port} is already routed by the edge to ${who(holder)}`);
      if (hostRoute && (l.port === 80 || l.port === 443))
        problems.push(
          `${w.service}: host port ${l.port} is the edge's own for hostname routes (HTTP→HTTPS and HTTPS; ${who(hostRoute)} has one); publish another port or give the service a \`host\``,
        );
    }
    if (w.host) {
      const holder = after.find((r) => r !== w && r.host === w.host);
      if (holder) problems.push(`${w.service}: hostname ${w.host} is already served by the edge for ${who(holder)}`);
      const onWeb = others.find((r) => r.listen.some((x) => x.port === 80 || x.port === 443));
      if (onWeb)
        problems.push(
          `${w.service}: a hostname needs the edge's ports 80 and 443, but ${who(onWeb)} has a port route on ${onWeb.listen.find((x) => x.port === 80 || x.port === 443)!.port}; serve it on another port first, or serve this one on a port`,
        );
    }
  }
  return [...new Set(problems)];
}

/** `all` with `project`'s routes replaced: only services in `keep` stay, and `set` is put in. */
export function replaceRoutes(
  all: readonly EdgeRoute[],
  project: string,
  keep: readonly string[],
  set: readonly EdgeRoute[] = [],
): EdgeRoute[] {
  const kept = all.filter(
    (r) =>
      (r.project !== project || keep.includes(r.service)) &&
      !set.some((s) => s.project === r.project && s.service === r.service),
  );
  return [...kept, ...set];
}

/**
 * `all` with one route put in: its service's old route goes, and so do its own
 * project's routes that hold its host port or hostname (a service renamed, or a
 * port moved to another service: traffic moves in the same config change).
 */
export function putRoute(all: readonly EdgeRoute[], route: EdgeRoute): EdgeRoute[] {
  const clashes = (r: EdgeRoute) =>
    (route.host !== undefined && r.host === route.host) ||
    r.listen.some((l) => route.listen.some((x) => x.port === l.port));
  return [...all.filter((r) => !(r.project === route.project && (r.service === route.service || clashes(r)))), route];
}

/** A project's maintenance page on the edge now (from any of its routes), or undefined. */
export function maintenanceOf(all: readonly EdgeRoute[], project: string): string | undefined {
  return all.find((r) => r.project === project && r.maintenance !== undefined)?.maintenance;
}

/**
 * The Host users send to a route: its hostname, or the published `host:port` (the bound address, else the server's own
 * name).
 */
export function hostHeader(h: { host?: string | undefined }, listen: readonly Listen[], server: string): string {
  if (h.host) return h.host;
  const l = listen[0];
  if (!l) return server;
  const name = l.hostIp ?? server;
  return `${name.includes(":") ? `[${name}]` : name}:${l.port}`;
}

/**
 * What judges a replacement edge (edgeUp): `port,Host` for each route — every port route on its port, a hostname
 * on port 80 (Caddy answers it with its redirect to HTTPS once it has the route).
 */
export function edgeProbes(routes: readonly EdgeRoute[]): string[] {
  const out = new Set<string>();
  for (const r of routes) {
    for (const l of r.listen)
      out.add(`${l.port},${l.hostIp?.includes(":") ? `[${l.hostIp}]` : (l.hostIp ?? "127.0.0.1")}:${l.port}`);
    if (r.host) out.add(`80,${r.host}`);
  }
  return [...out].sort();
}

/** The host port of a publish spec (`[ip:]host:container`). */
export function hostPort(spec: string): string {
  return spec.split(":").slice(-2, -1)[0] ?? "";
}
