/**
 * One edge, many projects (the real Caddy on the test bed): nothing one project
 * does can take the edge down for another or take over another's port,
 * hostname or certificate issuer. A program holding :80, two deploys racing
 * for one port, a stopped edge, per-hostname issuers, an app that checks its
 * Host, a renamed service, replica changes, isolation between projects,
 * maintenance mode and an explicit edge replacement.
 */
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EDGE_CONTAINER, projectNetwork } from "../../.dagger/src/core/edge/edge.js";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { replaceEdgeImage, setMaintenance } from "../../.dagger/src/remote/edge/edge-admin.js";
import { status, verify } from "../../.dagger/src/remote/verify.js";
import { auditSecrets } from "../testbed/audit.js";
import { readFileSync } from "node:fs";
import {
  bed,
  captureLog,
  deployRequest,
  edgeRoutes,
  freshProject,
  loadEdge,
  releaseCompose,
  sh,
  sshOptions,
  steadyLoad,
  testEdge,
  webStatus,
  closedUnanswered,
} from "../testbed/bed.js";

auditSecrets();
const composeSource = readFileSync(new URL("../../compose/docker-compose.prod.yml", import.meta.url), "utf8");
const PROJECTS = [
  "sh-a",
  "sh-b",
  "sh-c1",
  "sh-c2",
  "sh-stop",
  "sh-stg",
  "sh-prod",
  "sh-host",
  "sh-ren",
  "sh-rep",
  "sh-iso",
  "sh-mnt",
];
const url = (port: number) => `http://${bed.vps.hostIp}:${port}/`;
const settle = () => new Promise((r) => setTimeout(r, 700));
const target = (project: string) => ({
  ssh: sshOptions(),
  dir: `production/${project}`,
  project,
  lockTimeoutSeconds: 30,
  edge: testEdge,
});
const withHost = (host: string) => (t: string) =>
  t.replace("http: { port: 8000, health: /, drain: 5 }", `http: { port: 8000, health: /, drain: 5, host: ${host} }`);
const edgeId = () => sh(`docker inspect --format '{{.Id}}' ${EDGE_CONTAINER}`).trim();
/** `name` of a project's containers of one service. */
const names = (project: string, service = "web") =>
  sh(
    `docker ps -a --filter label=com.docker.compose.project=${project} --filter label=com.docker.compose.service=${service} --format '{{.Names}}'`,
  )
    .trim()
    .split("\n")
    .filter(Boolean)
    .sort();
/** The edge's loaded TLS policies (subjects → issuer modules). */
const policies = () => {
  const conf = JSON.parse(sh(`docker exec ${EDGE_CONTAINER} wget -qO- http://localhost:2019/config/`)) as {
    apps?: {
      tls?: { automation?: { policies?: { subjects: string[]; issuers: { module: string; ca?: string }[] }[] } };
    };
  };
  return conf.apps?.tls?.automation?.policies ?? [];
};

beforeAll(() => {
  // an edge that publishes 80/443 from an earlier file would hide what the first test checks
  sh(
    `docker rm -f ${EDGE_CONTAINER} ${EDGE_CONTAINER}-next >/dev/null 2>&1; docker volume rm vps-pipeline-edge >/dev/null 2>&1; true`,
  );
  PROJECTS.forEach(freshProject);
});
afterAll(() => {
  PROJECTS.forEach(freshProject);
  // a second tag on the edge's image: `docker image prune -a` (a later file) would keep it and drop vps-testbed/caddy:2
  sh("docker rmi vps-testbed/caddy:2-next vps-testbed/caddy:own-entrypoint >/dev/null 2>&1 || true");
});

describe("nothing one project does takes the edge down for another", () => {
  it("a program holding :80 while a project adds a hostname: refused before anything changes, the other project keeps serving", async () => {
    await deploy(deployRequest("sh-a", 18261));
    const before = edgeId();
    const squatter = createServer().listen(80, "0.0.0.0");
    await new Promise((r) => squatter.once("listening", r));
    const load = steadyLoad(url(18261), 60);
    try {
      await settle();
      const err = await deploy(
        deployRequest("sh-b", 18262, { compose: releaseCompose("v1", "v1", withHost("b.vps-testbed.internal")) }),
      ).catch((e: unknown) => e);
      await settle();
      const res = await load.stop();
      expect(err).toMatchObject({ code: "EDGE_PORT_TAKEN" });
      expect(String((err as Error).message)).toMatch(
        /host port\(s\) .*\b80\b.* cannot be published by the edge: .*(already in use|already allocated)[\s\S]*nothing was changed/,
      );
      expect([res.failed, res.errors]).toEqual([0, []]);
      expect(res.sent).toBeGreaterThan(60);
    } finally {
      squatter.close();
    }
    expect(edgeId()).toBe(before);
    expect(names("sh-b")).toEqual([]);
    expect(edgeRoutes().map((r) => r.project)).toEqual(["sh-a"]);
  });

  it("two projects deploying the same port at the same moment: exactly one EDGE_CONFLICT, before it changed anything; the other serves", async () => {
    const results = await Promise.allSettled([
      deploy(deployRequest("sh-c1", 18263)),
      deploy(deployRequest("sh-c2", 18263)),
    ]);
    const lost = results.filter((r) => r.status === "rejected");
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toMatchObject({ code: "EDGE_CONFLICT" });
    expect(String((lost[0] as PromiseRejectedResult).reason.message)).toMatch(
      /host port 18263 is already routed by the edge to sh-c[12]\/web/,
    );
    const [winner, loser] = results[0]!.status === "fulfilled" ? ["sh-c1", "sh-c2"] : ["sh-c2", "sh-c1"];
    expect(names(loser, "api")).toEqual([]);
    expect(
      edgeRoutes()
        .filter((r) => r.listen.some((l) => l.port === 18263))
        .map((r) => r.project),
    ).toEqual([winner]);
    expect((await webStatus(18263)).body).toContain("Version v1.");
  });

  it("a stopped edge still owns its routes (read from its volume), and a deploy that changes only api starts it again", async () => {
    sh(`docker stop ${EDGE_CONTAINER} >/dev/null`);
    const clash = await deploy(deployRequest("sh-stop", 18261)).catch((e: unknown) => e);
    expect(clash).toMatchObject({ code: "EDGE_CONFLICT" });
    expect(String((clash as Error).message)).toContain("host port 18261 is already routed by the edge to sh-a/web");
    expect(sh(`docker inspect --format '{{.State.Status}}' ${EDGE_CONTAINER}`).trim()).toBe("exited");
    const log = captureLog();
    await deploy(deployRequest("sh-a", 18261, { compose: releaseCompose("v1", "v2"), log: log.log }));
    expect(log.lines.join("\n")).toMatch(/the edge was exited: started again with its \d+ route\(s\)/);
    expect((await webStatus(18261)).body).toContain("Version v1.");
    expect((await webStatus(18263)).status).toBe(200);
    const v = await verify(target("sh-a"), []);
    expect(v.problems).toEqual([]);
  });

  it("each hostname keeps the issuer its own project asked for (staging internal, production an ACME CA on this machine)", async () => {
    // nothing listens there: Caddy's attempts stay on this machine
    const localCa = "https://127.0.0.1:14000/acme/directory";
    await deploy(
      deployRequest("sh-prod", 18264, {
        compose: releaseCompose("v1", "v1", withHost("prod.vps-testbed.internal")),
        edge: { ...testEdge, tls: localCa },
      }),
    );
    await deploy(
      deployRequest("sh-stg", 18265, {
        compose: releaseCompose("v1", "v1", withHost("stg.vps-testbed.internal")),
        edge: { ...testEdge, tls: "internal" },
      }),
    );
    // staging deploys again: production's issuer is still its own
    await deploy(
      deployRequest("sh-stg", 18265, {
        compose: releaseCompose("v2", "v2", withHost("stg.vps-testbed.internal")),
        edge: { ...testEdge, tls: "internal" },
      }),
    );
    const p = policies();
    expect(p.find((x) => x.subjects.includes("prod.vps-testbed.internal"))?.issuers).toEqual([
      { module: "acme", ca: localCa },
    ]);
    expect(p.find((x) => x.subjects.includes("stg.vps-testbed.internal"))?.issuers).toEqual([{ module: "internal" }]);
    expect(p.flatMap((x) => x.subjects).sort()).toEqual(["prod.vps-testbed.internal", "stg.vps-testbed.internal"]);
    sh(
      `docker exec ${EDGE_CONTAINER} cat /vps-pipeline/data/caddy/pki/authorities/local/root.crt > /tmp/vps-testbed/edge-root.crt`,
    );
    let body = "";
    for (let i = 0; i < 20 && !body.includes("Version v2."); i++) {
      body = sh(
        `curl -s --cacert /tmp/vps-testbed/edge-root.crt --resolve stg.vps-testbed.internal:443:${bed.vps.hostIp} https://stg.vps-testbed.internal/ || true`,
      );
      if (!body.includes("Version v2.")) await new Promise((r) => setTimeout(r, 500));
    }
    expect(body).toContain("Version v2.");
  });
});

describe("routes as users reach them", () => {
  it("an app that answers only its own Host rolls over: the probe sends the Host users send", async () => {
    const allowed = `${bed.vps.host}:18266`;
    const checksHost = (v: "v1" | "v2") =>
      releaseCompose(v, v, (t) =>
        t
          // a function, not a string: a replacement string would turn compose's `$$` into `$`
          .replace(
            "    init: true\n    restart: unless-stopped\n    depends_on:",
            () => `    init: true
    entrypoint: ["sh", "-c"]
    command:
      - |
        cp -r /www /tmp/w && mkdir -p /tmp/w/cgi-bin
        printf '#!/bin/sh\\ncase "$$HTTP_HOST" in ${allowed}) printf "Content-Type: text/plain\\\\r\\\\n\\\\r\\\\nok ${v}\\\\n";; *) printf "Status: 400 Bad Request\\\\r\\\\n\\\\r\\\\nunknown host\\\\n";; esac\\n' > /tmp/w/cgi-bin/app
        chmod +x /tmp/w/cgi-bin/app && exec httpd -f -p 8000 -h /tmp/w
    restart: unless-stopped
    depends_on:`,
          )
          .replace("http: { port: 8000, health: /, drain: 5 }", "http: { port: 8000, health: /cgi-bin/app, drain: 1 }"),
      );
    await deploy(deployRequest("sh-host", 18266, { compose: checksHost("v1") }));
    await deploy(deployRequest("sh-host", 18266, { compose: checksHost("v2") }));
    expect(sh(`curl -s -H 'Host: ${allowed}' http://${bed.vps.hostIp}:18266/cgi-bin/app`)).toBe("ok v2\n");
    expect(
      sh(`curl -s -o /dev/null -w '%{http_code}' -H 'Host: elsewhere' http://${bed.vps.hostIp}:18266/cgi-bin/app`),
    ).toBe("400");
  });

  it("a renamed service takes over its predecessor's port in one config change: no failed request, nothing of the old name left", async () => {
    await deploy(deployRequest("sh-ren", 18267));
    const load = steadyLoad(url(18267), 60);
    await settle();
    // `site` runs web's published image (pinned here: no image of that name was built)
    const site = (t: string) =>
      t.replace(
        "\n  web:\n    build:\n      context: ../test/fixtures/app/web\n      args:\n        BASE_IMAGE: busybox:1.36\n",
        `\n  site:\n    image: ${bed.registry.prefix}/web@${bed.images["web:v2"]}\n`,
      );
    expect(site(composeSource)).toContain("\n  site:\n");
    await deploy(deployRequest("sh-ren", 18267, { compose: releaseCompose("v2", "v2", site) }));
    await settle();
    const res = await load.stop();
    expect([res.failed, res.errors]).toEqual([0, []]);
    expect([...res.bodies.keys()].sort()).toEqual(["v1", "v2"]);
    expect(names("sh-ren", "web")).toEqual([]);
    expect(names("sh-ren", "site")).toHaveLength(1);
    expect(
      edgeRoutes()
        .filter((r) => r.project === "sh-ren")
        .map((r) => r.service),
    ).toEqual(["site"]);
  });

  it("replicas 1→3→1 of a service behind the edge are rolled over, and verify reports a count that differs from the release", async () => {
    const replicas = (n: number) =>
      releaseCompose("v1", "v1", (t) =>
        t.replace(
          "    init: true\n    restart: unless-stopped\n    depends_on:",
          `    init: true\n    deploy: { replicas: ${n} }\n    restart: unless-stopped\n    depends_on:`,
        ),
      );
    await deploy(deployRequest("sh-rep", 18268, { compose: replicas(1) }));
    const load = steadyLoad(url(18268), 60);
    await settle();
    await deploy(deployRequest("sh-rep", 18268, { compose: replicas(3) }));
    expect(names("sh-rep")).toHaveLength(3);
    expect(edgeRoutes().find((r) => r.project === "sh-rep")?.upstreams).toHaveLength(3);
    await deploy(deployRequest("sh-rep", 18268, { compose: replicas(1) }));
    await settle();
    const res = await load.stop();
    expect([res.failed, res.errors]).toEqual([0, []]);
    expect(names("sh-rep")).toHaveLength(1);
    expect((await verify(target("sh-rep"), [])).problems).toEqual([]);
    // a second container routed by hand: verify says the count differs from the release
    loadEdge(
      edgeRoutes().map((r) => (r.project === "sh-rep" ? { ...r, upstreams: [...r.upstreams, r.upstreams[0]!] } : r)),
    );
    const v = await verify(target("sh-rep"), []);
    expect(v.problems.join("\n")).toMatch(/the edge routes web to 2 container\(s\), but release \S+ runs 1/);
  });

  it("projects do not share a network: a container of one cannot reach another's by name or address; a removed project's network goes", async () => {
    // a project removed by hand (`docker compose down`): its network with the edge stays behind, with the edge alone on
    // it
    sh(
      `docker network create --label vps-pipeline.edge-network=sh-gone ${projectNetwork("sh-gone")} >/dev/null && docker network connect ${projectNetwork("sh-gone")} ${EDGE_CONTAINER}`,
    );
    await deploy(deployRequest("sh-iso", 18269));
    expect(sh(`docker network ls -q --filter name=^${projectNetwork("sh-gone")}$`).trim()).toBe("");
    expect(sh(`docker network ls -q --filter name=^${projectNetwork("sh-a")}$`).trim()).not.toBe("");
    const [a] = names("sh-a");
    const [b] = names("sh-iso");
    const aIp = sh(
      `docker inspect --format '{{(index .NetworkSettings.Networks "${projectNetwork("sh-a")}").IPAddress}}' ${a}`,
    ).trim();
    expect(aIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(
      sh(`docker inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' ${b}`),
    ).not.toContain("vps-pipeline-edge ");
    expect(
      sh(`docker exec ${b} wget -q -T 2 -O - http://${a}:8000/ >/dev/null 2>&1 && echo reached || echo refused`).trim(),
    ).toBe("refused");
    expect(
      sh(
        `docker exec ${b} wget -q -T 2 -O - http://${aIp}:8000/ >/dev/null 2>&1 && echo reached || echo refused`,
      ).trim(),
    ).toBe("refused");
    // the edge reaches both
    expect((await webStatus(18261)).status).toBe(200);
    expect((await webStatus(18269)).status).toBe(200);
  });
});

describe("the edge's own settings", () => {
  it("maintenance on and off under load: 503 with the page, then 200, never a connection error; a deploy keeps it; status shows it", async () => {
    await deploy(deployRequest("sh-mnt", 18270));
    const seen: (number | string)[] = [];
    let unanswered = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        seen.push(
          await fetch(url(18270), { headers: { connection: "close" }, signal: AbortSignal.timeout(5000) }).then(
            (r) => r.status,
            // closed unanswered at a config change: counted apart, as steadyLoad does (see LoadResult.unanswered)
            (e: unknown) =>
              closedUnanswered(e) ? (unanswered++, 0) : ((e as { cause?: { code?: string } }).cause?.code ?? String(e)),
          ),
        );
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    await settle();
    await setMaintenance(target("sh-mnt"), true, "<h1>Back soon (sh-mnt)</h1>");
    const down = await fetch(url(18270));
    expect([down.status, down.headers.get("retry-after"), await down.text()]).toEqual([
      503,
      "60",
      "<h1>Back soon (sh-mnt)</h1>",
    ]);
    expect((await status(target("sh-mnt"))).edge?.maintenance).toBe(true);
    expect((await verify(target("sh-mnt"), [])).problems.join("\n")).toMatch(/sh-mnt is in maintenance/);
    // another project is untouched
    expect((await webStatus(18261)).status).toBe(200);
    // a deploy behind the page keeps the page up
    await deploy(deployRequest("sh-mnt", 18270, { compose: releaseCompose("v2") }));
    expect((await fetch(url(18270))).status).toBe(503);
    await setMaintenance(target("sh-mnt"), false);
    await settle();
    stop = true;
    await loop;
    expect(seen.filter((x) => typeof x === "string")).toEqual([]);
    expect(unanswered).toBeLessThan(5);
    expect([...new Set(seen.filter((x) => typeof x === "number" && x !== 0))].sort()).toEqual([200, 503]);
    expect(seen.at(-1)).toBe(200);
    expect((await webStatus(18270)).body).toContain("Version v2.");
    expect((await status(target("sh-mnt"))).edge?.maintenance).toBe(false);
  });

  it("only `edge --image` changes the edge's image: a deploy with another says so; a replacement keeps every route, and one that cannot start puts the old edge back", async () => {
    sh("docker tag vps-testbed/caddy:2 vps-testbed/caddy:2-next");
    const log = captureLog();
    await deploy(
      deployRequest("sh-a", 18261, { edge: { ...testEdge, image: "vps-testbed/caddy:2-next" }, log: log.log }),
    );
    expect(log.lines.join("\n")).toMatch(
      /the edge runs vps-testbed\/caddy:2; a deploy does not change the edge's image .*edge --image=vps-testbed\/caddy:2-next/,
    );
    expect(sh(`docker inspect --format '{{.Config.Image}}' ${EDGE_CONTAINER}`).trim()).toBe("vps-testbed/caddy:2");

    const routes = edgeRoutes().length;
    const r = await replaceEdgeImage(target("sh-a"), "vps-testbed/caddy:2-next");
    expect(r).toMatchObject({ from: "vps-testbed/caddy:2", to: "vps-testbed/caddy:2-next", routes });
    expect(r.gapMs).toBeGreaterThan(0);
    expect(sh(`docker inspect --format '{{.Config.Image}}' ${EDGE_CONTAINER}`).trim()).toBe("vps-testbed/caddy:2-next");
    expect((await webStatus(18261)).status).toBe(200);
    expect((await webStatus(18270)).status).toBe(200);

    // an image that does not run Caddy: the new edge never starts, the old one serves again with its routes
    const before = edgeId();
    const err = await replaceEdgeImage(target("sh-a"), "vps-testbed/busybox:1").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "EDGE_FAILED" });
    expect(String((err as Error).message)).toMatch(/the old edge is serving again/);
    expect(edgeId()).toBe(before);
    expect(sh(`docker ps -a --filter label=vps-pipeline.edge=1 --format '{{.Names}}'`).trim()).toBe(EDGE_CONTAINER);
    expect((await webStatus(18261)).status).toBe(200);
    expect(edgeRoutes()).toHaveLength(routes);

    // a Caddy image with an entrypoint of its own that ignores our command (and saves its own config where the
    // edge resumes from): it starts and answers its admin API, but serves none of our routes; judged on them, the
    // old edge serves again with every route
    sh(
      [
        "d=$(mktemp -d)",
        `printf '%s\\n' '{"admin":{"listen":"localhost:2019"},"apps":{"http":{"servers":{"own":{"listen":[":8999"],"routes":[{"handle":[{"handler":"static_response","body":"own"}]}]}}}}}' > $d/own.json`,
        `printf '#!/bin/sh\\nexec caddy run --config /etc/own.json\\n' > $d/entrypoint; chmod 0755 $d/entrypoint`,
        `printf '%s\\n' 'FROM vps-testbed/caddy:2' 'COPY own.json /etc/own.json' 'COPY entrypoint /entrypoint' 'ENTRYPOINT ["/entrypoint"]' > $d/Dockerfile`,
        "DOCKER_BUILDKIT=0 docker build -q -t vps-testbed/caddy:own-entrypoint $d >/dev/null; rm -rf $d",
      ].join("; "),
    );
    const own = await replaceEdgeImage(target("sh-a"), "vps-testbed/caddy:own-entrypoint").catch((e: unknown) => e);
    expect(own).toMatchObject({ code: "EDGE_FAILED" });
    expect(String((own as Error).message)).toMatch(
      /does not serve every route the old one served: .*18261[\s\S]*the old edge is serving again/,
    );
    expect(edgeId()).toBe(before);
    expect(edgeRoutes()).toHaveLength(routes);
    expect((await webStatus(18261)).status).toBe(200);
    expect((await webStatus(18270)).status).toBe(200);
    await replaceEdgeImage(target("sh-a"), "vps-testbed/caddy:2");
  });
});
