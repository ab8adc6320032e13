/**
 * Preview stacks on the test bed (real Caddy with its own CA, real compose):
 * production and two previews of one app on one VPS, each at its own hostname
 * over HTTPS and on its own digests; a push upgrades only its preview with no
 * failed request; preview-down leaves nothing of it; production serves
 * throughout; the limit evicts or refuses; the TTL; what a preview may not share.
 */
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseComposeStack, releaseShape, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import { EDGE_CONTAINER, projectNetwork } from "../../.dagger/src/core/edge/edge.js";
import { previewRelease } from "../../.dagger/src/core/preview/preview-release.js";
import {
  previewDir,
  previewEnv,
  previewProject,
  type PreviewSettings,
} from "../../.dagger/src/core/preview/preview.js";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { deployPreview, previewDown } from "../../.dagger/src/remote/preview/preview.js";
import { status, verify } from "../../.dagger/src/remote/verify.js";
import { auditSecrets } from "../testbed/audit.js";
import {
  bed,
  deployRequest,
  edgeRoutes,
  freshProject,
  printed,
  releaseCompose,
  sh,
  sshOptions,
  steadyLoad,
  testEdge,
  webStatus,
  closedUnanswered,
  testPreviews,
} from "../testbed/bed.js";

auditSecrets();
const PROD = "pv";
const PORT = 18311;
const DOMAIN = "preview.vps-testbed.internal";
const HOME = "/home/deploy";
const settings: PreviewSettings = testPreviews;
const production = {
  ssh: sshOptions(),
  dir: `production/${PROD}`,
  project: PROD,
  // a preview waits for the one pushed beside it to deploy (the previews' lock)
  lockTimeoutSeconds: 180,
  edge: testEdge,
};
const CA = "/tmp/vps-testbed/edge-root.crt";

/** The request deploying `version` as preview `pr`: production's compose made a preview's, with the preview .env. */
function previewRequest(pr: number, version: "v1" | "v2", compose = releaseCompose(version), seed = "") {
  const p = previewRelease(compose, pr, { ...settings, seed, project: PROD });
  const env = previewEnv("GOLD_API_KEY=not-a-real-key\nPUBLIC_URL=${VPS_PREVIEW_URL}\n", {
    VPS_PREVIEW_PR: String(pr),
    VPS_PREVIEW_URL: p.url!,
    VPS_PREVIEW_HOST: new URL(p.url!).host,
  });
  return {
    ...deployRequest(previewProject(PROD, pr), 0, { dir: previewDir(production.dir, pr), compose: p.compose, env }),
    confined: p.hostPaths,
  };
}
const deployPr = (pr: number, version: "v1" | "v2", s: Partial<PreviewSettings> = {}) =>
  deployPreview(production, pr, { ...settings, ...s }, previewRequest(pr, version));
const host = (pr: number) => `pr-${pr}.${DOMAIN}`;

/**
 * GET https://pr-<n>.<domain>/ from this machine as a browser would (SNI and Host, the edge's CA), each on a new
 * connection.
 */
let ca: Buffer | undefined;
function httpsGet(name: string): Promise<{ status: number; body: string; error?: string }> {
  ca ??= readFileSync(CA);
  return new Promise((resolve) => {
    const req = request(
      {
        host: bed.vps.hostIp,
        port: 443,
        path: "/",
        servername: name,
        headers: { host: name },
        ca,
        agent: false,
        timeout: 4000,
      },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", (e) => resolve({ status: 0, body: "", error: e.message }));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

/** Until the edge has a certificate for `name` and the page says `version`. */
async function servedAt(name: string, version: string): Promise<string> {
  let r = { status: 0, body: "" };
  for (let i = 0; i < 40 && !r.body.includes(`Version ${version}.`); i++) {
    r = await httpsGet(name);
    if (!r.body.includes(`Version ${version}.`)) await new Promise((x) => setTimeout(x, 250));
  }
  return r.body;
}

/**
 * Steady HTTPS GETs on a hostname, counting every failure (no answer, or not 200). A connection closed before any
 * answer (Node's "socket hang up": the edge's old config closing it at a config change, see LoadResult.unanswered)
 * is sent once more and counted apart.
 */
function httpsLoad(name: string, rate: number) {
  let sent = 0;
  let unanswered = 0;
  const errors: string[] = [];
  const inflight = new Set<Promise<void>>();
  const timer = setInterval(() => {
    sent++;
    const p = httpsGet(name)
      .then((r) => (r.error !== undefined && closedUnanswered(r.error) ? (unanswered++, httpsGet(name)) : r))
      .then((r) => void (r.status !== 200 && errors.push(r.error ?? String(r.status))));
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }, 1000 / rate);
  return { stop: async () => (clearInterval(timer), await Promise.all(inflight), { sent, unanswered, errors }) };
}

/** Everything of a compose project on the VPS, as a user would list it. */
function leftovers(project: string) {
  const f = `--filter label=com.docker.compose.project=${project}`;
  return {
    containers: sh(`docker ps -aq ${f}`).trim(),
    volumes: sh(`docker volume ls -q ${f}`).trim(),
    networks: sh(`docker network ls -q ${f}; docker network ls -q --filter name=^${projectNetwork(project)}$`).trim(),
    routes: edgeRoutes().filter((r) => r.project === project).length,
    folder: sh(`test -e ${HOME}/production/${project} && echo present || true`).trim(),
  };
}
const nothing = { containers: "", volumes: "", networks: "", routes: 0, folder: "" };
const OTHER = "pvx";
const PROJECTS = [PROD, OTHER, ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13].map((n) => previewProject(PROD, n))];
const removedImages: string[] = [];

beforeAll(() => {
  PROJECTS.forEach(freshProject);
  // hostname routes need the edge's 80/443: no port route of an earlier file may hold them
  sh(`docker rm -f ${EDGE_CONTAINER} >/dev/null 2>&1; docker volume rm vps-pipeline-edge >/dev/null 2>&1; true`);
});
afterAll(() => {
  PROJECTS.forEach(freshProject);
  // the test bed's later files expect every image it built to be there by digest
  for (const ref of removedImages) sh(`docker pull -q ${ref} >/dev/null 2>&1 || true`);
});

describe("previews beside production", () => {
  it("production and two previews, each at its own hostname over HTTPS on its own digests; status lists them; production keeps its port", async () => {
    await deploy(deployRequest(PROD, PORT));
    // The first hostname on this VPS: the edge is made again to publish 80/443 (the one gap a preview costs
    // the others, once per VPS: README). From then on production sees no failure.
    await deployPr(1, "v1");
    sh(`docker exec ${EDGE_CONTAINER} cat /vps-pipeline/data/caddy/pki/authorities/local/root.crt > ${CA}`);
    const load = steadyLoad(`http://${bed.vps.hostIp}:${PORT}/`, 40);
    const p2 = await deployPr(2, "v2");
    const prod = await load.stop();
    expect([prod.failed, prod.errors]).toEqual([0, []]);
    expect(await servedAt(host(1), "v1")).toContain("Version v1.");
    expect(await servedAt(host(2), "v2")).toContain("Version v2.");
    expect((await webStatus(PORT)).body).toContain("Version v1.");
    // its own digests, its own project: nothing of production's
    expect(p2.images.web).toBe(releaseShape(releaseCompose("v2")).images.web);
    expect(
      sh(`docker ps --filter label=com.docker.compose.project=${previewProject(PROD, 2)} --format '{{.Ports}}'`)
        .trim()
        .split("\n")
        .every((p) => !p.includes("->")),
    ).toBe(true);
    const routes = edgeRoutes();
    expect(routes.filter((r) => r.project === previewProject(PROD, 2)).map((r) => [r.host, r.listen])).toEqual([
      [host(2), []],
    ]);
    expect(routes.filter((r) => r.project === PROD).map((r) => r.listen.map((l) => l.port))).toEqual([[PORT]]);
    // the .env a preview gets: its own variables, the secret's values with them filled in
    expect(sh(`cat ${HOME}/production/${previewProject(PROD, 2)}/.env`)).toContain(`PUBLIC_URL=https://${host(2)}`);
    const v = await verify({ ...production, project: previewProject(PROD, 2), dir: previewDir(production.dir, 2) }, []);
    expect(v.problems).toEqual([]);
    // 3 MB written in preview 2's api: its size says so, preview 1's does not
    sh(
      `docker exec $(docker ps -q --filter label=com.docker.compose.project=${previewProject(PROD, 2)} --filter label=com.docker.compose.service=api | head -n 1) dd if=/dev/zero of=/tmp/fill bs=1M count=3 2>/dev/null`,
    );
    const st = await status(production);
    expect(st.previews?.map((p) => [p.pr, p.url, p.release.length > 0])).toEqual([
      [1, `https://${host(1)}`, true],
      [2, `https://${host(2)}`, true],
    ]);
    expect(st.previews?.map((p) => p.bytes >= 3_000_000)).toEqual([false, true]);
  });

  it("preview-down removes everything the preview had, and the images no other release on the VPS names; production and the other preview serve on", async () => {
    const project = previewProject(PROD, 2);
    const v2 = [...new Set(Object.values(releaseShape(releaseCompose("v2")).images).filter(Boolean))];
    const webV2 = releaseShape(releaseCompose("v2")).images.web!;
    // another project on the VPS has uploaded a release that runs web v2 and is about to pull it: web v2 is not the
    // preview's to remove
    await deploy(deployRequest(OTHER, 18316));
    const next = `${HOME}/production/${OTHER}/.releases/20991231T000000.000Z-abcdef0`;
    sh(
      `mkdir -p ${next} && printf 'services:\n  web:\n    image: ${webV2}\n' > ${next}/docker-compose.yml && chown -R deploy ${HOME}/production/${OTHER}`,
    );
    expect(leftovers(project).containers).not.toBe("");
    const load = steadyLoad(`http://${bed.vps.hostIp}:${PORT}/`, 40);
    const log: string[] = [];
    const [r] = await previewDown({ ...production, log: (l) => log.push(l), by: "vitest" }, { prs: [2] });
    const prod = await load.stop();
    expect([prod.failed, prod.errors]).toEqual([0, []]);
    expect(leftovers(project)).toEqual(nothing);
    expect(r!.images.sort()).toEqual(v2.filter((i) => i !== webV2).sort());
    removedImages.push(...r!.images);
    for (const ref of v2)
      expect(`${ref} ${sh(`docker image inspect ${ref} >/dev/null 2>&1 && echo kept || echo gone`).trim()}`).toBe(
        `${ref} ${ref === webV2 ? "kept" : "gone"}`,
      );
    expect(log.join("\n")).toMatch(
      /^preview #2 removed: [1-9]\d* container\(s\), 0 volume\(s\), [1-9]\d* network\(s\), 1 edge route\(s\), 2 image\(s\) no other release uses, its folder$/m,
    );
    expect((await httpsGet(host(1))).body).toContain("Version v1.");
    expect((await status(production)).previews?.map((p) => p.pr)).toEqual([1]);
    // production's images are production's: still there
    for (const ref of Object.values(releaseShape(releaseCompose("v1")).images).filter(Boolean))
      expect(sh(`docker image inspect ${ref} >/dev/null 2>&1 && echo kept`).trim()).toBe("kept");
    freshProject(OTHER);
  });

  it("a push to a pull request upgrades only its preview, with 0 failed requests on it and on production", async () => {
    const before = sh(`docker ps -q --filter label=com.docker.compose.project=${PROD} | sort`).trim();
    const onPreview = httpsLoad(host(1), 20);
    const onProd = steadyLoad(`http://${bed.vps.hostIp}:${PORT}/`, 40);
    await new Promise((r) => setTimeout(r, 500));
    await deployPr(1, "v2");
    await new Promise((r) => setTimeout(r, 500));
    const [p, prod] = [await onPreview.stop(), await onProd.stop()];
    expect(p.errors).toEqual([]);
    expect(p.sent).toBeGreaterThan(20);
    expect([prod.failed, prod.errors]).toEqual([0, []]);
    expect(await servedAt(host(1), "v2")).toContain("Version v2.");
    expect(sh(`docker ps -q --filter label=com.docker.compose.project=${PROD} | sort`).trim()).toBe(before);
    expect((await webStatus(PORT)).body).toContain("Version v1.");
  });

  it("the limit: a new preview is refused (nothing made) or evicts the one pushed longest ago; the TTL removes idle ones", async () => {
    await deployPr(3, "v1");
    const refused = await deployPr(4, "v1", { whenFull: "refuse" }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: "PREVIEW_LIMIT" });
    expect((refused as Error).message).toMatch(/2 previews are live \(#1, #3\), the limit is 2/);
    expect(leftovers(previewProject(PROD, 4))).toEqual(nothing);
    const evicting = await deployPr(4, "v1");
    expect(evicting.removed.map((r) => r.pr)).toEqual([1]);
    expect(leftovers(previewProject(PROD, 1))).toEqual(nothing);
    expect((await status(production)).previews?.map((p) => p.pr)).toEqual([3, 4]);
    // preview 3 idle for three days: the next preview-down --expired removes it, and only it
    sh(`touch -d '3 days ago' ${HOME}/production/${previewProject(PROD, 3)}/.releases/history.jsonl`);
    const gone = await previewDown({ ...production, log: () => {}, by: "vitest" }, { prs: [], ttlHours: 48 });
    expect(gone.map((r) => r.pr)).toEqual([3]);
    expect((await status(production)).previews?.map((p) => p.pr)).toEqual([4]);
    expect((await webStatus(PORT)).body).toContain("Version v1.");
  });

  it("a preview cannot name production's volume, and production's port in its file is not published: refused or dropped before anything runs", async () => {
    const named = releaseCompose("v1", "v1", (t) => `${t}\nvolumes:\n  data: { name: ${PROD}_data }\n`);
    expect(() => previewRequest(5, "v1", named)).toThrow(
      /volumes\.data\.name: a fixed name is production's volume too/,
    );
    // the release publishes production's port: the preview does not, production keeps it
    // …and it names a seed: a service production never starts (its profile), the preview's last job
    const seeded = `${readFileSync("compose/docker-compose.prod.yml", "utf8").replace("${WEB_PORT:-8080}", String(PORT))}
  seed:
    image: ${bed.registry.prefix}/api
    command: ["sh", "-c", "echo seeding preview $$PR"]
    environment: { PR: "\${VPS_PREVIEW_PR:-none}" }
    profiles: [seed]
`;
    const samePort = parseComposeStack(seeded, "compose/docker-compose.prod.yml", bed.registry.prefix);
    const compose = renderRelease(samePort, {
      migrate: bed.images["migrate:v1"]!,
      api: bed.images["api:v1"]!,
      web: bed.images["web:v1"]!,
    });
    expect(releaseShape(compose).jobs.map((j) => j.service)).toEqual(["migrate"]);
    const log: string[] = [];
    await deployPreview(production, 5, settings, {
      ...previewRequest(5, "v1", compose, "seed"),
      log: (l) => log.push(l),
    });
    expect(log.join("\n")).toMatch(/jobs .*migrate, seed done/);
    expect(
      edgeRoutes()
        .filter((r) => r.listen.some((l) => l.port === PORT))
        .map((r) => r.project),
    ).toEqual([PROD]);
    expect(await servedAt(host(5), "v1")).toContain("Version v1.");
    expect(printed.join("\n")).not.toContain("not-a-real-key");
  });

  it("a production project named like a preview (pv-pr-6, made before such names were refused) survives status, expiry, an eviction and preview --pr=6", async () => {
    const twin = previewProject(PROD, 6);
    freshProject(twin);
    // deployed as production is: no mark, its own folder production/pv-pr-6, compose project pv-pr-6
    await deploy(deployRequest(twin, 18317));
    sh(`touch -d '9 days ago' ${HOME}/production/${twin}/.releases/history.jsonl`);
    const before = leftovers(twin);
    expect(before.containers).not.toBe("");
    expect((await status(production)).previews?.map((p) => p.pr)).not.toContain(6);
    // expiry (it looks nine days idle) and an eviction at the limit leave it be
    await previewDown({ ...production, log: () => {}, by: "vitest" }, { prs: [], ttlHours: 48 });
    const evict = await deployPr(7, "v1", { limit: 1 });
    expect(evict.removed.map((r) => r.pr)).not.toContain(6);
    // named by hand: refused, nothing touched
    await expect(previewDown({ ...production, log: () => {}, by: "vitest" }, { prs: [6] })).rejects.toMatchObject({
      code: "PREVIEW_NOT_OURS",
    });
    await expect(deployPr(6, "v1")).rejects.toMatchObject({ code: "PREVIEW_NOT_OURS" });
    expect(leftovers(twin)).toEqual(before);
    expect((await webStatus(18317)).body).toContain("Version v1.");
    await previewDown({ ...production, log: () => {}, by: "vitest" }, { prs: [7] });
    freshProject(twin);
  });

  it("two previews pushed at once at the limit: never one too many (one refused, or the oldest evicted once each); production serves throughout", async () => {
    const onProd = steadyLoad(`http://${bed.vps.hostIp}:${PORT}/`, 20);
    await deployPr(8, "v1");
    // one slot left: two pull requests pushed at the same moment are counted one after the other
    const refusing = await Promise.allSettled([
      deployPr(9, "v1", { whenFull: "refuse" }),
      deployPr(10, "v1", { whenFull: "refuse" }),
    ]);
    const landed = refusing.flatMap((r, i) => (r.status === "fulfilled" ? [9 + i] : []));
    expect(landed).toHaveLength(1);
    expect(refusing.find((r) => r.status === "rejected")).toMatchObject({ reason: { code: "PREVIEW_LIMIT" } });
    const refused = landed[0] === 9 ? 10 : 9;
    expect(leftovers(previewProject(PROD, refused))).toEqual(nothing);
    expect((await status(production)).previews?.map((p) => p.pr)).toEqual([8, landed[0]]);
    // evicting: both land, each evicts one, and two are live after
    const evicting = await Promise.all([deployPr(11, "v1"), deployPr(12, "v1")]);
    expect(evicting.flatMap((d) => d.removed.map((r) => r.pr)).sort()).toEqual([8, landed[0]!].sort());
    expect((await status(production)).previews?.map((p) => p.pr)).toEqual([11, 12]);
    const prod = await onProd.stop();
    expect([prod.failed, prod.errors]).toEqual([0, []]);
    expect(await servedAt(host(11), "v1")).toContain("Version v1.");
    expect(await servedAt(host(12), "v1")).toContain("Version v1.");
  });

  it("preview-down while the edge is stopped: the preview's routes do not come back when the edge starts", async () => {
    sh(`docker stop ${EDGE_CONTAINER} >/dev/null`);
    const gone = await previewDown({ ...production, log: () => {}, by: "vitest" }, { prs: [11] });
    expect(gone.map((r) => [r.pr, r.routes])).toEqual([[11, 1]]);
    sh(`docker start ${EDGE_CONTAINER} >/dev/null`);
    let routes = edgeRoutes();
    for (let i = 0; i < 40 && routes.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      routes = edgeRoutes();
    }
    expect(routes.filter((r) => r.project === previewProject(PROD, 11))).toEqual([]);
    expect(routes.filter((r) => r.project === previewProject(PROD, 12)).map((r) => r.host)).toEqual([host(12)]);
    expect(leftovers(previewProject(PROD, 11))).toEqual(nothing);
    // closing it again (or a pull request that never had a preview): nothing to do, no error
    const again = await previewDown({ ...production, log: () => {}, by: "vitest" }, { prs: [11] });
    expect(again.map((r) => [r.pr, r.containers, r.folder ?? false])).toEqual([[11, 0, false]]);
    expect(await servedAt(host(12), "v1")).toContain("Version v1.");
    let prod = await webStatus(PORT);
    for (let i = 0; i < 40 && prod.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 250));
      prod = await webStatus(PORT);
    }
    expect(prod.body).toContain("Version v1.");
    await previewDown({ ...production, log: () => {}, by: "vitest" }, { prs: [12] });
  });

  it("from inside a preview's container: no Docker socket, nothing of production's .env, no way into its folder; a symlink it leaves is refused before the next release starts", async () => {
    const prodEnv = `${HOME}/production/${PROD}/.env`;
    const token = `prod-only-${Math.random().toString(36).slice(2)}`;
    sh(`cp ${prodEnv} /tmp/pv-env.keep && echo PROD_ONLY_TOKEN=${token} >> ${prodEnv}`);
    // production's files but the previews' lock (whose holder line each preview deploy rewrites)
    const prodFiles = () =>
      sh(`cd ${HOME}/production/${PROD} && find . -type f ! -name '.previews.lock*' | sort | xargs sha256sum`);
    const before = prodFiles();
    const onProd = steadyLoad(`http://${bed.vps.hostIp}:${PORT}/`, 20);
    try {
      // the api writes ./data (a bind of its folder: allowed)
      const withData = releaseCompose("v1", "v1", (t) =>
        t.replace(
          "    init: true            # busybox",
          "    volumes: ['./data:/data']\n    init: true            # busybox",
        ),
      );
      await deployPreview(production, 13, settings, previewRequest(13, "v1", withData));
      const api = sh(
        `docker ps -q --filter label=com.docker.compose.project=${previewProject(PROD, 13)} --filter label=com.docker.compose.service=api | head -n 1`,
      ).trim();
      const inside = (script: string) => sh(`docker exec ${api} sh -c '${script}' 2>&1 || true`);
      expect(inside("find / -name docker.sock 2>/dev/null; ls /var/run /run 2>/dev/null | grep -c docker")).toBe("0\n");
      // every file it can read: none holds production's .env
      expect(
        inside(
          `find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -type f -print 2>/dev/null | xargs grep -l PROD_ONLY_TOKEN 2>/dev/null | wc -l`,
        ).trim(),
      ).toBe("0");
      // what it can write: its own folder; a link to production's folder leads nowhere in the container…
      expect(inside(`ln -s ${HOME}/production/${PROD} /data/prod && echo x > /data/prod/.env; echo done`)).toMatch(
        /can.t create|No such file|nonexistent/,
      );
      // …and the next release that binds through it (./data now read-only) is refused on the server before it starts
      const through = releaseCompose("v1", "v1", (t) =>
        t.replace(
          "    init: true            # busybox",
          "    volumes: ['./data:/data:ro', './data/prod/.env:/prod.env:ro', './data/conf:/etc/conf:ro']\n    init: true            # busybox",
        ),
      );
      const err = await deployPreview(production, 13, settings, previewRequest(13, "v1", through)).catch(
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: "PREVIEW_ESCAPE" });
      expect((err as Error).message).toContain(`./data/prod/.env leads to ${HOME}/production/${PROD}/.env`);
      expect((err as Error).message).toContain(
        `./data/conf lies inside ${HOME}/production/${previewProject(PROD, 13)}/data, which a running container may write`,
      );
      expect(sh(`docker exec ${api} cat /proc/1/cmdline >/dev/null && echo running`).trim()).toBe("running");
      expect(await servedAt(host(13), "v1")).toContain("Version v1.");
      // preview-down takes what its container wrote (root's files) with the folder
      await previewDown({ ...production, log: () => {}, by: "vitest" }, { prs: [13] });
      expect(leftovers(previewProject(PROD, 13))).toEqual(nothing);
    } finally {
      const prod = await onProd.stop();
      expect([prod.failed, prod.errors]).toEqual([0, []]);
      expect(prodFiles()).toBe(before);
      sh(`cp /tmp/pv-env.keep ${prodEnv} && rm -f /tmp/pv-env.keep`);
    }
  });
});
