import { describe, expect, it } from "vitest";
import { parseComposeStack, releaseShape, renderRelease } from "../../.dagger/src/core/compose.js";
import { PUBLISHED_LABEL, caddyConfig, edgePublish, hostPort, edgePublished, parseListen, publishedByEdge, replaceRoutes, routeConflicts, routesFromCaddy, type EdgeRoute } from "../../.dagger/src/core/edge.js";
import { parseServiceExtension } from "../../.dagger/src/core/extension.js";

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
    expect(parseServiceExtension("web", { http: { port: 8000 } }).http).toEqual({ service: "web", port: 8000, health: "/", drainSeconds: 10 });
    expect(parseServiceExtension("web", { http: { port: 80, health: "/up", host: "Gold.Example.com", drain: 3 } }).http).toEqual({ service: "web", port: 80, health: "/up", host: "gold.example.com", drainSeconds: 3 });
  });

  it("names the field of a bad value, and refuses job and http together", () => {
    expect(parseServiceExtension("web", { http: { port: 8000, health: "up" } }).problems[0]).toMatch(/^services\.web\.x-vps-pipeline\.http\.health: must be a path/);
    expect(parseServiceExtension("web", { http: { port: 0 } }).problems[0]).toMatch(/http\.port/);
    expect(parseServiceExtension("web", { http: { port: 8000, hots: "x" } }).problems[0]).toMatch(/known keys: job, http/);
    expect(parseServiceExtension("web", { job: true, http: { port: 8000 } }).problems[0]).toMatch(/either a release-phase job or an HTTP service/);
  });

  it("reads every ports syntax, keeping interpolation for compose on the VPS", () => {
    expect(edgePublished("s", ["${WEB_PORT:-8080}:8000", "127.0.0.1:9090:8000/tcp", { target: 8000, published: "${P}", host_ip: "::1" }], 8000)).toEqual({
      published: ["${WEB_PORT:-8080}:8000", "127.0.0.1:9090:8000", "[::1]:${P}:8000"], problems: [],
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

  it("refuses container_name, network_mode, profiles and a service the edge could not reach", () => {
    const bad = `services:
  web:
    image: x
    container_name: web
    network_mode: host
    profiles: [p]
    x-vps-pipeline: { http: { port: 8000 } }
`;
    expect(() => parseComposeStack(bad, "c.yml")).toThrow(/publishes no port and has no `host`[\s\S]*container_name[\s\S]*profiles[\s\S]*network_mode/);
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
    const text = web("").replace("    ports:", "    labels: [\"a=b\"]\n    ports:");
    expect(renderRelease(parseComposeStack(text, "c.yml", "ghcr.io/acme/gold"), { web: D })).toMatch(/labels: \[ "a=b", "vps-pipeline\.edge\.published=\$\{WEB_PORT:-8080\}:8000" \]|- a=b\n\s+- vps-pipeline\.edge\.published/);
  });

  it("resolves published labels after interpolation, and names a bad value", () => {
    expect(parseListen("web", "8080:8000,127.0.0.1:9090:8000,0.0.0.0:7070:8000")).toEqual([{ port: 8080 }, { hostIp: "127.0.0.1", port: 9090 }, { port: 7070 }]);
    expect(() => parseListen("web", "eighty:8000")).toThrow(/services\.web\.ports: the host port `eighty`/);
  });
});

describe("routes and Caddy's config", () => {
  const a: EdgeRoute = { project: "gold", service: "web", listen: [{ port: 8080 }], upstreams: ["gold-web-2:8000"] };
  const b: EdgeRoute = { project: "shop", service: "front", listen: [{ hostIp: "127.0.0.1", port: 9090 }], host: "shop.example.com", upstreams: ["shop-front-1:3000", "shop-front-2:3000"] };

  it("reads back exactly the routes it wrote", () => {
    const back = routesFromCaddy(JSON.stringify(caddyConfig([a, b], "acme")));
    expect(back.sort((x, y) => x.project.localeCompare(y.project))).toEqual([a, b]);
  });

  it("keeps the admin API on localhost, asks the internal CA only when told, and publishes 80/443 only for hostnames", () => {
    expect(caddyConfig([a], "internal")).toMatchObject({ admin: { listen: "localhost:2019" } });
    expect(JSON.stringify(caddyConfig([a, b], "acme"))).not.toContain("internal");
    expect(JSON.stringify(caddyConfig([a, b], "internal"))).toContain('"module":"internal"');
    expect(edgePublish([a])).toEqual(["8080:8080"]);
    expect(edgePublish([a, b])).toEqual(["127.0.0.1:9090:9090", "443:443", "8080:8080", "80:80"]);
    expect(["8080:8080", "127.0.0.1:9090:9090", "[::1]:7070:7070"].map(hostPort)).toEqual(["8080", "9090", "7070"]);
    expect(publishedByEdge('{"8080/tcp":[{"HostIp":"","HostPort":"8080"}],"9090/tcp":[{"HostIp":"127.0.0.1","HostPort":"9090"}]}')).toEqual(["127.0.0.1:9090:9090", "8080:8080"]);
  });

  it("finds a port or hostname another project has, and replaces only one project's routes", () => {
    const mine: EdgeRoute = { project: "new", service: "web", listen: [{ port: 8080 }], host: "shop.example.com", upstreams: [] };
    expect(routeConflicts([a, b], [mine])).toEqual([
      "web: host port 8080 is already routed by the edge to gold/web",
      "web: hostname shop.example.com is already served by the edge for shop/front",
    ]);
    expect(routeConflicts([a, b], [{ ...a, upstreams: [] }])).toEqual([]);
    expect(routeConflicts([b], [{ project: "x", service: "y", listen: [{ port: 443 }], upstreams: [] }])[0]).toMatch(/443 is the edge's own/);
    expect(routeConflicts([], [{ project: "x", service: "y", listen: [{ hostIp: "127.0.0.1", port: 80 }, { port: 80 }], upstreams: [] }])[0]).toMatch(/one host port twice/);
    expect(replaceRoutes([a, b], "gold", [])).toEqual([b]);
    expect(replaceRoutes([a, b], "gold", ["web"], [{ ...a, upstreams: ["gold-web-3:8000"] }])).toEqual([b, { ...a, upstreams: ["gold-web-3:8000"] }]);
  });
});
