/**
 * Zero-downtime through the edge (the real Caddy, made from Debian's package):
 * upgrades and rollbacks under steady load, an unhealthy release that never gets
 * traffic, two projects on one edge, the edge restarted or removed, a host port
 * taken by something else, a service moving behind the edge and back, HTTPS.
 *
 * The load opens one connection per request: a config change of Caddy closes
 * its idle keep-alive connections, and a client that reuses one at that instant
 * sees a reset (browsers retry such a request; the bench counts it both ways).
 */
import { createServer } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { EDGE_CONTAINER } from "../../.dagger/src/core/edge/edge.js";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { rollback } from "../../.dagger/src/remote/rollback.js";
import { status, verify } from "../../.dagger/src/remote/verify.js";
import { auditSecrets } from "../testbed/audit.js";
import {
  bed,
  deployRequest,
  edgeRoutes,
  freshProject,
  history,
  loadEdge,
  releaseCompose,
  sh,
  sshOptions,
  steadyLoad,
  testEdge,
  webStatus,
} from "../testbed/bed.js";

auditSecrets();
// Stacks with 1 s healthchecks left running slow every later test file down.
afterAll(() => ["edge-up", "edge-deaf", "edge-back", "edge-taken", "edge-clash", "edge-move"].forEach(freshProject));

const HOME = "/home/deploy";
const url = (port: number) => `http://${bed.vps.hostIp}:${port}/`;
/** `name image` of the project's web containers. */
const webContainers = (project: string) =>
  sh(
    `ids=$(docker ps -aq --filter label=com.docker.compose.project=${project} --filter label=com.docker.compose.service=web); [ -z "$ids" ] || docker inspect --format '{{.Name}} {{.Config.Image}}' $ids`,
  )
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((x) => x.replace(/^\//, ""));
const webImage = (v: "v1" | "v2") => `${bed.registry.prefix}/web@${bed.images[`web:${v}`]}`;
const settle = () => new Promise((r) => setTimeout(r, 700));
/** The example release with web's health path swapped: the new web container runs but never answers it. */
const deafWeb = (version: "v1" | "v2") =>
  releaseCompose(version, version, (t) =>
    t.replace("http: { port: 8000, health: /, drain: 5 }", "http: { port: 8000, health: /not-here, drain: 5 }"),
  );
/** The example release without the edge (web publishes its port itself, stop-first). */
const inPlace = (version: "v1" | "v2") =>
  releaseCompose(version, version, (t) => t.replace(/\n\s+x-vps-pipeline:\n\s+http: \{[^}]*\}/, ""));

describe("zero-downtime through the edge", () => {
  it("an upgrade under 60 requests/s fails none of them; the edge then routes to the new release only", async () => {
    freshProject("edge-up");
    await deploy(deployRequest("edge-up", 18231));
    const load = steadyLoad(url(18231), 60);
    await settle();
    await deploy(deployRequest("edge-up", 18231, { compose: releaseCompose("v2") }));
    await settle();
    const res = await load.stop();
    expect(res.errors).toEqual([]);
    expect(res.failed).toBe(0);
    expect(res.sent).toBeGreaterThan(100);
    expect([...res.bodies.keys()].sort()).toEqual(["v1", "v2"]);
    expect(webContainers("edge-up")).toEqual([expect.stringMatching(new RegExp(` ${webImage("v2")}$`))]);
    expect(edgeRoutes().find((x) => x.project === "edge-up")?.upstreams).toEqual([
      `${webContainers("edge-up")[0]!.split(" ")[0]}:8000`,
    ]);
    const v = await verify({ ssh: sshOptions(), dir: "production/edge-up", project: "edge-up" }, []);
    expect(v.problems).toEqual([]);
  });

  it("a new web that never answers its health path gets no request; the deploy fails, v1 keeps serving, nothing is left over", async () => {
    freshProject("edge-deaf");
    const first = await deploy(deployRequest("edge-deaf", 18232));
    const before = webContainers("edge-deaf");
    const load = steadyLoad(url(18232), 60);
    await settle();
    const err = await deploy(
      deployRequest("edge-deaf", 18232, { compose: deafWeb("v2"), healthTimeoutSeconds: 6 }),
    ).catch((e: unknown) => e);
    await settle();
    const res = await load.stop();
    expect(err).toMatchObject({ code: "DEPLOY_ROLLED_BACK" });
    expect(String((err as Error).message)).toMatch(/web: new container not ready in time .*it never got traffic/);
    expect(res.failed).toBe(0);
    expect([...res.bodies.keys()]).toEqual(["v1"]);
    expect(webContainers("edge-deaf")).toEqual(before);
    expect(sh(`cat ${HOME}/production/edge-deaf/.releases/current`).trim()).toBe(first.release);
  });

  it("an automatic rollback after the rollover (api unhealthy in v3) fails no request either", async () => {
    freshProject("edge-back");
    await deploy(deployRequest("edge-back", 18233, { compose: releaseCompose("v2") }));
    const load = steadyLoad(url(18233), 60);
    await settle();
    // web v3 is healthy and rolls over, api v3 is not: everything goes back to v2, web through the edge again
    const err = await deploy(
      deployRequest("edge-back", 18233, { compose: releaseCompose("v3", "v3"), healthTimeoutSeconds: 20 }),
    ).catch((e: unknown) => e);
    await settle();
    const res = await load.stop();
    expect(err).toMatchObject({ code: "DEPLOY_ROLLED_BACK" });
    expect(res.errors).toEqual([]);
    expect(res.failed).toBe(0);
    expect((await webStatus(18233)).body).toContain("Version v2.");
    expect(history("edge-back").at(-1)).toMatchObject({ result: "rolled-back", rollbackHealthy: true });
  });

  it("a manual rollback rolls web over too, without a failed request", async () => {
    const load = steadyLoad(url(18231), 60);
    await settle();
    await rollback({
      ssh: sshOptions(),
      dir: "production/edge-up",
      project: "edge-up",
      lockTimeoutSeconds: 10,
      healthTimeoutSeconds: 30,
      edge: testEdge,
      by: "vitest",
      log: () => {},
    });
    await settle();
    const res = await load.stop();
    expect(res.failed).toBe(0);
    expect((await webStatus(18231)).body).toContain("Version v1.");
    expect(webContainers("edge-up")).toEqual([expect.stringMatching(new RegExp(` ${webImage("v1")}$`))]);
  });
});

describe("stacks with more behind the edge", () => {
  it("two services of one project, one with two replicas, roll over together under load without a failed request", async () => {
    freshProject("edge-many");
    const many = (v: "v1" | "v2") =>
      releaseCompose(
        v,
        v,
        (
          t,
        ) => `${t.replace("    init: true\n    restart: unless-stopped\n    depends_on:", "    init: true\n    deploy: { replicas: 2 }\n    restart: unless-stopped\n    depends_on:")}
  status:
    image: ${bed.registry.prefix}/api
    init: true
    ports: ["127.0.0.1:\${STATUS_PORT:-18240}:8000"]
    x-vps-pipeline:
      http: { port: 8000, health: /health, drain: 2 }
`,
      );
    const env = "WEB_PORT=18238\nSTATUS_PORT=18239\n";
    await deploy(deployRequest("edge-many", 18238, { compose: many("v1"), env }));
    expect(webContainers("edge-many")).toHaveLength(2);
    const web = steadyLoad(url(18238), 40);
    const status = steadyLoad("http://127.0.0.1:18239/health", 40);
    await settle();
    await deploy(deployRequest("edge-many", 18238, { compose: many("v2"), env }));
    await settle();
    const [w, st] = [await web.stop(), await status.stop()];
    expect([w.failed, st.failed, w.errors, st.errors]).toEqual([0, 0, [], []]);
    expect(webContainers("edge-many")).toEqual([
      expect.stringContaining(webImage("v2")),
      expect.stringContaining(webImage("v2")),
    ]);
    const routes = edgeRoutes().filter((r) => r.project === "edge-many");
    expect(routes.find((r) => r.service === "web")?.upstreams).toHaveLength(2);
    expect(routes.find((r) => r.service === "status")).toMatchObject({
      listen: [{ hostIp: "127.0.0.1", port: 18239 }],
      upstreams: [expect.stringMatching(/^edge-many-status-\d+:8000$/)],
    });
    expect(sh(`curl -s http://127.0.0.1:18239/health`)).toContain("ok v2");
    const v = await verify({ ssh: sshOptions(), dir: "production/edge-many", project: "edge-many" }, []);
    expect(v.problems).toEqual([]);
    freshProject("edge-many");
  });
});

describe("the edge itself", () => {
  it("two projects share one edge; a restarted edge keeps both routes; a removed one comes back with the next deploy", async () => {
    expect((await webStatus(18231)).status).toBe(200);
    expect((await webStatus(18233)).status).toBe(200);
    expect(sh(`docker ps -a --filter label=vps-pipeline.edge=1 --format '{{.Names}}'`).trim()).toBe(EDGE_CONTAINER);
    const projects = edgeRoutes().map((r) => r.project);
    expect(projects).toEqual(expect.arrayContaining(["edge-up", "edge-back"]));

    sh(`docker restart ${EDGE_CONTAINER} >/dev/null`);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await webStatus(18231)).status).toBe(200);
    expect((await webStatus(18233)).status).toBe(200);

    sh(`docker rm -f ${EDGE_CONTAINER} >/dev/null`);
    expect((await webStatus(18231)).status).toBe(0);
    await deploy(deployRequest("edge-up", 18231, { compose: releaseCompose("v2") }));
    expect((await webStatus(18231)).body).toContain("Version v2.");
    // the other project's route was in the edge's volume: it is served again too
    expect((await webStatus(18233)).body).toContain("Version v2.");
    const st = await status({ ssh: sshOptions(), dir: "production/edge-up", project: "edge-up" }, 3);
    expect(st.edge).toMatchObject({
      state: "running",
      routes: [expect.objectContaining({ service: "web", listen: [{ port: 18231 }] })],
    });
  });

  it("a host port taken by another container or by a program is a clear error before anything changes", async () => {
    freshProject("edge-taken");
    sh(
      `docker run -d --name edge-squatter -p 18234:8000 ${bed.registry.prefix}/web@${bed.images["web:v1"]} >/dev/null`,
    );
    try {
      const err = await deploy(deployRequest("edge-taken", 18234)).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "EDGE_PORT_TAKEN" });
      expect(String((err as Error).message)).toMatch(/18234 by container edge-squatter.*nothing was changed/);
    } finally {
      sh("docker rm -f edge-squatter >/dev/null");
    }
    const server = createServer().listen(18235, "0.0.0.0");
    await new Promise((r) => server.once("listening", r));
    try {
      const err = await deploy(deployRequest("edge-taken", 18235)).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "EDGE_PORT_TAKEN", hint: expect.stringMatching(/ss -ltnp/) });
    } finally {
      server.close();
    }
    expect(sh("docker ps -a --filter label=com.docker.compose.project=edge-taken -q").trim()).toBe("");
    expect(edgeRoutes().some((r) => r.project === "edge-taken")).toBe(false);
    expect(history("edge-taken").map((h) => h.code)).toEqual(["EDGE_PORT_TAKEN", "EDGE_PORT_TAKEN"]);
  });

  it("a port another project routes is refused by name", async () => {
    freshProject("edge-clash");
    const err = await deploy(deployRequest("edge-clash", 18231)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "EDGE_CONFLICT" });
    expect(String((err as Error).message)).toContain("host port 18231 is already routed by the edge to edge-up/web");
  });

  it("a service moves behind the edge (one short gap) and back out to publishing its port itself", async () => {
    freshProject("edge-move");
    await deploy(deployRequest("edge-move", 18236, { compose: inPlace("v1") }));
    expect(sh(`docker ps --filter name=edge-move-web --format '{{.Ports}}'`)).toContain("18236->8000");
    await deploy(deployRequest("edge-move", 18236, { compose: releaseCompose("v2") }));
    expect((await webStatus(18236)).body).toContain("Version v2.");
    expect(sh(`docker ps --filter name=edge-move-web --format '{{.Ports}}'`)).not.toContain("->");
    await deploy(deployRequest("edge-move", 18236, { compose: inPlace("v1") }));
    expect((await webStatus(18236)).body).toContain("Version v1.");
    expect(sh(`docker ps --filter name=edge-move-web --format '{{.Ports}}'`)).toContain("18236->8000");
    expect(edgeRoutes().some((r) => r.project === "edge-move")).toBe(false);
    expect(sh(`docker port ${EDGE_CONTAINER}`)).not.toContain("18236");
  });

  it("verify finds a route that points at a container of another release", async () => {
    const routes = edgeRoutes();
    const mine = routes.find((r) => r.project === "edge-up")!;
    const other = routes.find((r) => r.project === "edge-back")!;
    loadEdge(routes.map((r) => (r === mine ? { ...r, upstreams: other.upstreams } : r)));
    try {
      const v = await verify({ ssh: sshOptions(), dir: "production/edge-up", project: "edge-up" }, []);
      expect(v.problems.join("\n")).toMatch(
        /edge routes web to edge-back-web-\d+, not a container of release \S+ \(no such container of this project\)/,
      );
    } finally {
      loadEdge(routes);
    }
  });

  it("a hostname route is served over HTTPS with the edge's certificate (Caddy's internal CA on the test bed)", async () => {
    freshProject("edge-https");
    const hosted = releaseCompose("v1", "v1", (t) =>
      t.replace(
        "http: { port: 8000, health: /, drain: 5 }",
        "http: { port: 8000, health: /, drain: 5, host: gold.vps-testbed.internal }",
      ),
    );
    await deploy(deployRequest("edge-https", 18237, { compose: hosted }));
    sh(
      `docker exec ${EDGE_CONTAINER} cat /vps-pipeline/data/caddy/pki/authorities/local/root.crt > /tmp/vps-testbed/edge-root.crt`,
    );
    let body = "";
    for (let i = 0; i < 20 && !body.includes("Version v1."); i++) {
      body = sh(
        `curl -s --cacert /tmp/vps-testbed/edge-root.crt --resolve gold.vps-testbed.internal:443:${bed.vps.hostIp} https://gold.vps-testbed.internal/ || true`,
      );
      if (!body.includes("Version v1.")) await new Promise((r) => setTimeout(r, 500));
    }
    expect(body).toContain("Version v1.");
    expect(
      sh(
        `curl -s -o /dev/null -w '%{http_code}' --resolve gold.vps-testbed.internal:80:${bed.vps.hostIp} http://gold.vps-testbed.internal/`,
      ),
    ).toBe("308");
    freshProject("edge-https");
  });
});
