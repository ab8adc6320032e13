/**
 * The edge: one Caddy container per VPS, owned by the pipeline, in front of every
 * service that opts in with `x-vps-pipeline: { http: … }`. It holds the host ports
 * those services published (and 80/443 for hostname routes) and proxies to one
 * release's containers by name on the `vps-pipeline-edge` network. Its config is
 * the routing table: built here from routes and read back from Caddy, so that
 * several projects share one edge and a restarted edge (`caddy run --resume`)
 * keeps every route.
 */
import { PipelineError } from "./errors.js";

export const EDGE_CONTAINER = "vps-pipeline-edge";
export const EDGE_NETWORK = "vps-pipeline-edge";
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

export interface EdgeRoute {
  project: string;
  service: string;
  listen: Listen[];
  host?: string;
  /** `container:port` the edge proxies to (one per replica). */
  upstreams: string[];
}

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
export function edgePublished(where: string, ports: unknown, httpPort: number): { published: string[]; problems: string[] } {
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
      problems.push(`${where}.ports: \`${String(p)}\` is not a port mapping`);
      continue;
    }
    if (proto !== "tcp") problems.push(`${where}.ports: \`${String(p)}\` is ${proto}; the edge proxies HTTP over tcp only`);
    else if (target !== String(httpPort)) {
      problems.push(`${where}.ports: \`${String(p)}\` publishes container port ${target}, but only the HTTP port ${httpPort} goes through the edge; drop it or move it to a service that is not behind the edge`);
    } else if (pub === undefined || pub === "") {
      problems.push(`${where}.ports: \`${String(p)}\` has no host port; write \`<host port>:${httpPort}\` (the edge listens there)`);
    } else if (/^\d+-\d+$/.test(pub)) problems.push(`${where}.ports: \`${String(p)}\`: a port range cannot go through the edge; publish one port`);
    else published.push(`${hostIp ? `${hostIp.includes(":") ? `[${hostIp}]` : hostIp}:` : ""}${pub}:${target}`);
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
      throw new PipelineError("INVALID_INPUT", `services.${service}.ports: the host port \`${port}\` (after the .env was applied) is not a port number`, `set the variable used in ${service}'s ports in the production .env to a port between 1 and 65535`);
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
  for (const r of routes) for (const l of r.listen) out.add(`${l.hostIp ? `${l.hostIp.includes(":") ? `[${l.hostIp}]` : l.hostIp}:` : ""}${l.port}:${l.port}`);
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

function proxy(upstreams: readonly string[]): Record<string, unknown> {
  return {
    handler: "reverse_proxy",
    upstreams: upstreams.map((dial) => ({ dial })),
    // a replica that stops answering mid-rollover: the request goes to another instead of failing
    load_balancing: { selection_policy: { policy: "round_robin" }, try_duration: "5s", try_interval: "100ms" },
  };
}

/** The whole Caddy config (JSON) for these routes. `tls`: who signs hostname certificates. */
export function caddyConfig(routes: readonly EdgeRoute[], tls: "acme" | "internal"): Record<string, unknown> {
  const servers: Record<string, unknown> = {};
  const sorted = [...routes].sort((a, b) => `${a.project}/${a.service}`.localeCompare(`${b.project}/${b.service}`));
  for (const r of sorted) {
    for (const l of r.listen) {
      servers[`${SERVER_PREFIX}${l.hostIp ?? ""}|${l.port}`] = {
        listen: [`:${l.port}`],
        routes: [{ "@id": `${ROUTE_PREFIX}${r.project}|${r.service}|port|${l.hostIp ?? ""}|${l.port}`, handle: [proxy(r.upstreams)] }],
        automatic_https: { disable: true },
      };
    }
  }
  const hosts = sorted.filter((r) => r.host);
  if (hosts.length) {
    servers[HTTPS_SERVER] = {
      listen: [":443"],
      routes: hosts.map((r) => ({ "@id": `${ROUTE_PREFIX}${r.project}|${r.service}|host`, match: [{ host: [r.host] }], handle: [proxy(r.upstreams)], terminal: true })),
    };
  }
  const apps: Record<string, unknown> = { http: { servers } };
  if (hosts.length && tls === "internal") {
    apps.tls = { automation: { policies: [{ subjects: hosts.map((r) => r.host), issuers: [{ module: "internal" }] }] } };
  }
  return { admin: { listen: EDGE_ADMIN }, apps };
}

/** Read the routes back from the edge's running config (`GET /config/`); anything not ours is ignored. */
export function routesFromCaddy(configJson: string): EdgeRoute[] {
  let conf: { apps?: { http?: { servers?: Record<string, { routes?: { "@id"?: string; match?: { host?: string[] }[]; handle?: { upstreams?: { dial?: string }[] }[] }[] }> } } } | null;
  try {
    conf = JSON.parse(configJson || "null") as typeof conf;
  } catch {
    throw new PipelineError("REMOTE_OUTPUT_INVALID", "the edge's config (Caddy admin API) is not JSON", "look at the edge: `docker logs vps-pipeline-edge` on the VPS");
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
      r.upstreams = (route.handle?.[0]?.upstreams ?? []).map((u) => u.dial ?? "").filter(Boolean);
      if (kind === "port" && port) r.listen.push(hostIp ? { hostIp, port: Number(port) } : { port: Number(port) });
      if (kind === "host") {
        const h = route.match?.[0]?.host?.[0];
        if (h) r.host = h;
      }
      byKey.set(key, r);
    }
  }
  return [...byKey.values()];
}

/**
 * Why `wanted` (one project's routes) cannot go on an edge that serves `all`:
 * a port or hostname another project or service already has, a port route on
 * 80/443 beside hostname routes. Empty when it fits.
 */
export function routeConflicts(all: readonly EdgeRoute[], wanted: readonly EdgeRoute[]): string[] {
  const problems: string[] = [];
  const others = all.filter((r) => !wanted.some((w) => w.project === r.project && w.service === r.service));
  const after = [...others, ...wanted];
  const anyHost = after.some((r) => r.host);
  for (const w of wanted) {
    const ports = w.listen.map((l) => l.port);
    if (new Set(ports).size !== ports.length) problems.push(`${w.service}: publishes one host port twice (on two addresses); the edge listens on each host port once`);
    for (const l of w.listen) {
      const holder = after.find((r) => r !== w && r.listen.some((x) => x.port === l.port));
      if (holder) problems.push(`${w.service}: host port ${l.port} is already routed by the edge to ${holder.project}/${holder.service}`);
      if (anyHost && (l.port === 80 || l.port === 443)) problems.push(`${w.service}: host port ${l.port} is the edge's own for hostname routes (HTTP→HTTPS and HTTPS); publish another port or give the service a \`host\``);
    }
    if (w.host) {
      const holder = after.find((r) => r !== w && r.host === w.host);
      if (holder) problems.push(`${w.service}: hostname ${w.host} is already served by the edge for ${holder.project}/${holder.service}`);
    }
  }
  return [...new Set(problems)];
}

/** `all` with `project`'s routes replaced: only services in `keep` stay, and `set` is put in. */
export function replaceRoutes(all: readonly EdgeRoute[], project: string, keep: readonly string[], set: readonly EdgeRoute[] = []): EdgeRoute[] {
  const kept = all.filter((r) => (r.project !== project || keep.includes(r.service)) && !set.some((s) => s.project === r.project && s.service === r.service));
  return [...kept, ...set];
}

/** The host port of a publish spec (`[ip:]host:container`). */
export function hostPort(spec: string): string {
  return spec.split(":").slice(-2, -1)[0] ?? "";
}

