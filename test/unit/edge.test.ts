import { describe, expect, it } from "vitest";
import { parseComposeStack, releaseShape, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import {
  DEFAULT_MAINTENANCE_PAGE,
  PUBLISHED_LABEL,
  caddyConfig,
  edgeProbes,
  edgePublish,
  edgePublished,
  hostHeader,
  hostPort,
  invalidEdgeTls,
  maintenanceOf,
  parseListen,
  publishedByEdge,
  putRoute,
  replaceRoutes,
  routeConflicts,
  routesFromCaddy,
  type EdgeRoute,
} from "../../.dagger/src/core/edge/edge.js";
import { planRollover, type ServiceContainer } from "../../.dagger/src/core/edge/edge-commands.js";
import { parseServiceExtension } from "../../.dagger/src/core/compose/extension.js";

const D = `sha256:${"a".repeat(64)}`;
const web = (extra: string, ports = `["\${WEB_PORT:-8080}:8000"]`) => `services:
  web:
    build: ./web
    ports: ${ports}
    x-vps-pipeline:
      http: { port: 8000${extra} }
`;

describe("x-vps-pipeline http", () => {
  it("takes port, health, host and drain, with defaults", () => {
    expect(parseServiceExtension("web", { http: { port: 8000 } }).http).toEqual({
      service: "web",
      port: 8000,
      health: "/",
      drainSeconds: 10,
    });
    expect(
      parseServiceExtension("web", { http: { port: 80, health: "/up", host: "Gold.Example.com", drain: 3 } }).http,
    ).toEqual({ service: "web", port: 80, health: "/up", host: "gold.example.com", drainSeconds: 3 });
  });

  it("names the field of a bad value, and refuses job and http together", () => {
    expect(parseServiceExtension("web", { http: { port: 8000, health: "up" } }).problems[0]).toMatch(
      /^services\.web\.x-vps-pipeline\.http\.health: must be a path/,
    );
    expect(parseServiceExtension("web", { http: { port: 0 } }).problems[0]).toMatch(/http\.port/);
    expect(parseServiceExtension("web", { http: { port: 8000, hots: "x" } }).problems[0]).toMatch(
      /known keys: job, http/,
    );
    expect(parseServiceExtension("web", { job: true, http: { port: 8000 } }).problems[0]).toMatch(
      /either a release-phase job or an HTTP service/,
    );
  });

  it("reads every ports syntax, keeping interpolation for compose on the VPS", () => {
    expect(
      edgePublished(
        "s",
        ["${WEB_PORT:-8080}:8000", "127.0.0.1:9090:8000/tcp", { target: 8000, published: "${P}", host_ip: "::1" }],
        8000,
      ),
    ).toEqual({
      published: ["${WEB_PORT:-8080}:8000", "127.0.0.1:9090:8000", "[::1]:${P}:8000"],
      problems: [],
    });
  });

  it("refuses ports the edge cannot take over: another container port, no host port, udp, a range", () => {
    const { problems } = edgePublished("services.web", ["9000:9000", "8000", "53:8000/udp", "8000-8001:8000"], 8000);
    expect(problems).toHaveLength(4);
    expect(problems[0]).toMatch(/container port 9000, but only the HTTP port 8000/);
    expect(problems[1]).toMatch(/has no host port/);
    expect(problems[2]).toMatch(/udp/);
    expect(problems[3]).toMatch(/range/);
  });

  it("names a host IP that is not an address, and shows a long-syntax entry as written", () => {
    const { problems } = edgePublished(
      "services.web",
      [
        "0.0.0.0 -p 22:8080:8000",
        "localhost:8080:8000",
        { target: 8000, published: 8081, host_ip: "my host" },
        { target: 9000, published: 9000 },
      ],
      8000,
    );
    expect(problems[0]).toMatch(/the host IP `0\.0\.0\.0 -p 22` is not an IPv4 or IPv6 address/);
    expect(problems[1]).toMatch(/the host IP `localhost`/);
    expect(problems[2]).toMatch(/`\{"target":8000,"published":8081,"host_ip":"my host"\}`: the host IP `my host`/);
    expect(problems[3]).toMatch(/`\{"target":9000,"published":9000\}` publishes container port 9000/);
    expect(problems.join("\n")).not.toContain("[object Object]");
    expect(() => parseListen("web", "1.2.3.4 -v /:/x:8080:8000")).toThrow(/host IP .* is not an IPv4 or IPv6 address/);
    expect(parseListen("web", "[::1]:8080:8000")).toEqual([{ hostIp: "::1", port: 8080 }]);
  });

  it("refuses container_name, network_mode, profiles and a service the edge could not reach", () => {
    const bad = `services:
  web:
    image: x
    container_name: web
    network_mode: host
    profiles: [p]
    x-vps-pipeline: { http: { port: 8000 } }
`;
    expect(() => parseComposeStack(bad, "c.yml")).toThrow(
      /publishes no port and has no `host`[\s\S]*container_name[\s\S]*profiles[\s\S]*network_mode/,
    );
  });
});

describe("the release behind the edge", () => {
  it("has no host port for the service, and the published ports in a label", () => {
    const stack = parseComposeStack(web(", health: /up"), "c.yml", "ghcr.io/acme/gold");
    const rendered = renderRelease(stack, { web: D });
    expect(rendered).not.toContain("ports:");
    expect(rendered).toContain(`${PUBLISHED_LABEL}: \${WEB_PORT:-8080}:8000`);
    expect(releaseShape(rendered).http).toEqual([{ service: "web", port: 8000, health: "/up", drainSeconds: 10 }]);
  });

  it("adds the label to a KEY=value list too", () => {
    const text = web("").replace("    ports:", '    labels: ["a=b"]\n    ports:');
    expect(renderRelease(parseComposeStack(text, "c.yml", "ghcr.io/acme/gold"), { web: D })).toMatch(
      /labels: \[ "a=b", "vps-pipeline\.edge\.published=\$\{WEB_PORT:-8080\}:8000" \]|- a=b\n\s+- vps-pipeline\.edge\.published/,
    );
  });

  it("resolves published labels after interpolation, and names a bad value", () => {
    expect(parseListen("web", "8080:8000,127.0.0.1:9090:8000,0.0.0.0:7070:8000")).toEqual([
      { port: 8080 },
      { hostIp: "127.0.0.1", port: 9090 },
      { port: 7070 },
    ]);
    expect(() => parseListen("web", "eighty:8000")).toThrow(/services\.web\.ports: the host port `eighty`/);
  });
});

describe("routes and Caddy's config", () => {
  const a: EdgeRoute = { project: "gold", service: "web", listen: [{ port: 8080 }], upstreams: ["gold-web-2:8000"] };
  const b: EdgeRoute = {
    project: "shop",
    service: "front",
    listen: [{ hostIp: "127.0.0.1", port: 9090 }],
    host: "shop.example.com",
    upstreams: ["shop-front-1:3000", "shop-front-2:3000"],
  };

  it("reads back exactly the routes it wrote", () => {
    const back = routesFromCaddy(JSON.stringify(caddyConfig([a, b])));
    expect(back.sort((x, y) => x.project.localeCompare(y.project))).toEqual([a, b]);
  });

  it("keeps the admin API on localhost, gives each hostname its own issuer, and publishes 80/443 only for hostnames", () => {
    const staging: EdgeRoute = {
      project: "shop-staging",
      service: "front",
      listen: [],
      host: "staging.shop.example.com",
      tls: "internal",
      upstreams: ["s-1:3000"],
    };
    const company: EdgeRoute = {
      project: "intra",
      service: "app",
      listen: [],
      host: "app.corp.example",
      tls: "https://ca.corp.example/acme/directory",
      upstreams: ["i-1:80"],
    };
    expect(caddyConfig([a])).toMatchObject({ admin: { listen: "localhost:2019" } });
    expect(JSON.stringify(caddyConfig([a, b]))).not.toContain('"tls"');
    const conf = caddyConfig([a, b, staging, company]) as { apps: { tls: { automation: { policies: unknown[] } } } };
    // production's hostname keeps Caddy's public ACME defaults: no policy names it
    expect(conf.apps.tls.automation.policies).toEqual([
      { subjects: ["app.corp.example"], issuers: [{ module: "acme", ca: "https://ca.corp.example/acme/directory" }] },
      { subjects: ["staging.shop.example.com"], issuers: [{ module: "internal" }] },
    ]);
    const back = routesFromCaddy(JSON.stringify(conf));
    expect(back.find((r) => r.project === "shop")?.tls).toBeUndefined();
    expect(back.find((r) => r.project === "shop-staging")?.tls).toBe("internal");
    expect(back.find((r) => r.project === "intra")?.tls).toBe("https://ca.corp.example/acme/directory");
    expect(edgePublish([a])).toEqual(["8080:8080"]);
    expect(edgePublish([a, b])).toEqual(["127.0.0.1:9090:9090", "443:443", "8080:8080", "80:80"]);
    expect(["8080:8080", "127.0.0.1:9090:9090", "[::1]:7070:7070"].map(hostPort)).toEqual(["8080", "9090", "7070"]);
    expect(
      publishedByEdge(
        '{"8080/tcp":[{"HostIp":"","HostPort":"8080"}],"9090/tcp":[{"HostIp":"127.0.0.1","HostPort":"9090"}]}',
      ),
    ).toEqual(["127.0.0.1:9090:9090", "8080:8080"]);
  });

  it("takes acme, internal or an https ACME directory as the issuer, nothing else", () => {
    expect(["acme", "internal", "https://acme-staging-v02.api.letsencrypt.org/directory"].map(invalidEdgeTls)).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect(invalidEdgeTls("letsencrypt")).toMatch(/must be acme/);
    expect(invalidEdgeTls("http://ca.local/dir")).toMatch(/https/);
    expect(invalidEdgeTls("https://user:pw@ca.local/dir")).toMatch(/without credentials/);
  });

  it("never writes two routes on one host port or hostname: the second would silently replace the first", () => {
    expect(() => caddyConfig([a, { ...b, project: "other", listen: [{ port: 8080 }] }])).toThrow(
      /host port 8080 would be served for both gold\/web and other\/front/,
    );
    expect(() => caddyConfig([b, { ...a, host: "shop.example.com" }])).toThrow(/hostname shop.example.com/);
  });

  it("keeps a project's maintenance page with its upstreams, and reads both back", () => {
    const down = { ...a, maintenance: DEFAULT_MAINTENANCE_PAGE };
    const conf = caddyConfig([down, b]);
    expect(JSON.stringify(conf)).toContain('"status_code":503');
    const back = routesFromCaddy(JSON.stringify(conf));
    expect(back.find((r) => r.project === "gold")).toEqual(down);
    expect(maintenanceOf(back, "gold")).toBe(DEFAULT_MAINTENANCE_PAGE);
    expect(maintenanceOf(back, "shop")).toBeUndefined();
  });

  it("finds a port or hostname another project has, both ways round for 80/443, and ignores the project's own current routes", () => {
    const mine: EdgeRoute = {
      project: "new",
      service: "web",
      listen: [{ port: 8080 }],
      host: "shop.example.com",
      upstreams: [],
    };
    expect(routeConflicts([a, b], "new", [mine])).toEqual([
      "web: host port 8080 is already routed by the edge to gold/web",
      "web: hostname shop.example.com is already served by the edge for shop/front",
    ]);
    expect(routeConflicts([a, b], "gold", [{ ...a, upstreams: [] }])).toEqual([]);
    // a renamed service, and a port moved to another service of the same project
    expect(routeConflicts([a, b], "gold", [{ ...a, service: "site", upstreams: [] }])).toEqual([]);
    expect(
      routeConflicts([a, b], "gold", [
        { ...a, listen: [{ port: 9191 }] },
        { ...a, service: "admin", upstreams: [] },
      ]),
    ).toEqual([]);
    expect(
      routeConflicts([b], "x", [{ project: "x", service: "y", listen: [{ port: 443 }], upstreams: [] }])[0],
    ).toMatch(/443 is the edge's own for hostname routes .*shop\/front has one/);
    // the other way: a hostname where another project already routes port 80
    const onEighty: EdgeRoute = { project: "legacy", service: "site", listen: [{ port: 80 }], upstreams: [] };
    expect(routeConflicts([onEighty], "shop", [{ ...b, listen: [] }])[0]).toMatch(
      /needs the edge's ports 80 and 443, but legacy\/site has a port route on 80/,
    );
    expect(
      routeConflicts([], "x", [
        { project: "x", service: "y", listen: [{ hostIp: "127.0.0.1", port: 80 }, { port: 80 }], upstreams: [] },
      ])[0],
    ).toMatch(/one host port twice/);
  });

  it("puts a route in place of its project's route on the same port or hostname (a rename in one config change)", () => {
    const site: EdgeRoute = { ...a, service: "site", upstreams: ["gold-site-1:8000"] };
    expect(putRoute([a, b], site)).toEqual([b, site]);
    const other: EdgeRoute = { ...a, project: "other", service: "x", listen: [{ port: 7070 }] };
    expect(putRoute([a, other], { ...a, listen: [{ port: 9090 }] })).toEqual([
      other,
      { ...a, listen: [{ port: 9090 }] },
    ]);
  });

  it("replaces only one project's routes", () => {
    expect(replaceRoutes([a, b], "gold", [])).toEqual([b]);
    expect(replaceRoutes([a, b], "gold", ["web"], [{ ...a, upstreams: ["gold-web-3:8000"] }])).toEqual([
      b,
      { ...a, upstreams: ["gold-web-3:8000"] },
    ]);
  });
});

describe("rollover plans and probes", () => {
  const c = (name: string, hash = "h1", state = "running", publishes = false): ServiceContainer => ({
    name,
    state,
    hash,
    publishes,
    service: "web",
  });

  it("rolls over a changed replica count even when the definition is the same (compose's hash ignores replicas)", () => {
    expect(planRollover([c("w-1")], "h1", 1)).toEqual({ kind: "in-place", current: ["w-1"] });
    expect(planRollover([c("w-1")], "h1", 3)).toEqual({ kind: "beside", migrating: [], leaving: ["w-1"], scaleTo: 4 });
    expect(planRollover([c("w-1"), c("w-2"), c("w-3")], "h1", 1)).toEqual({
      kind: "beside",
      migrating: [],
      leaving: ["w-1", "w-2", "w-3"],
      scaleTo: 4,
    });
    expect(planRollover([c("w-1", "h0")], "h1", 1)).toMatchObject({ kind: "beside", leaving: ["w-1"] });
  });

  it("asks the health path with the Host users send: the hostname, else the published address and port", () => {
    expect(hostHeader({ host: "gold.example.com" }, [{ port: 8080 }], "203.0.113.7")).toBe("gold.example.com");
    expect(hostHeader({}, [{ port: 8080 }], "vps.example.com")).toBe("vps.example.com:8080");
    expect(hostHeader({}, [{ hostIp: "127.0.0.1", port: 9090 }], "vps.example.com")).toBe("127.0.0.1:9090");
    expect(hostHeader({}, [{ hostIp: "::1", port: 9090 }], "vps.example.com")).toBe("[::1]:9090");
  });
});

describe("long-lived connections and a judged replacement", () => {
  const routes = [
    { project: "a", service: "web", listen: [{ port: 8080 }], upstreams: ["a-web-1:8000"] },
    { project: "b", service: "admin", listen: [{ hostIp: "127.0.0.1", port: 9000 }], upstreams: ["b-admin-1:8000"] },
    { project: "c", service: "site", listen: [], host: "shop.example.com", upstreams: ["c-site-1:8000"] },
  ];
  it("every proxy keeps its WebSockets open through a config change (another project's route change unloads it)", () => {
    const proxies: Record<string, unknown>[] = [];
    JSON.stringify(caddyConfig(routes), (_, v: unknown) => {
      if ((v as { handler?: string } | null)?.handler === "reverse_proxy") proxies.push(v as Record<string, unknown>);
      return v;
    });
    expect(proxies.map((p) => p.stream_close_delay)).toEqual(["24h", "24h", "24h"]);
  });
  it("a replacement is judged on each port route on its port and each hostname on port 80, with the Host users send", () => {
    expect(edgeProbes(routes)).toEqual(["80,shop.example.com", "8080,127.0.0.1:8080", "9000,127.0.0.1:9000"]);
  });
});
