/**
 * Real compose files on the server. A release carries its files: a page mounted
 * from the repository reaches the server with the release, a change to it recreates exactly the service that
 * mounts it, a rollback brings the old page back; a directory that is not in
 * the repository is the server's data and keeps what it holds throughout. And a
 * file written with anchors and merge keys deploys as compose reads it.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseComposeStack, releaseShape, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import { envValues } from "../../.dagger/src/core/compose/env-file.js";
import { assertSubstitutable } from "../../.dagger/src/core/compose/substituted.js";
import { fileRefs, releaseFiles, type FileRef, type Found } from "../../.dagger/src/core/release/release-files.js";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { rollback } from "../../.dagger/src/remote/rollback.js";
import { auditSecrets } from "../testbed/audit.js";
import { status, verify } from "../../.dagger/src/remote/verify.js";
import {
  bed,
  deployRequest,
  freshProject,
  history,
  releaseCompose,
  sh,
  sshOptions,
  webStatus,
} from "../testbed/bed.js";

auditSecrets();

const FILE = "compose/docker-compose.prod.yml";
const PORT = 18243;
const DIR = "/home/deploy/production/shipped";
const source = mkdtempSync(join(tmpdir(), "shipped-source-"));

/** What the module's reader gives (inputs/source-files.ts), read here from a checkout on disk. */
function found(refs: readonly FileRef[]): Map<string, Found> {
  const out = new Map<string, Found>();
  for (const r of refs) {
    const p = r.sourcePath && join(source, r.sourcePath);
    if (!p || !existsSync(p)) continue;
    if (statSync(p).isFile()) out.set(r.sourcePath!, { type: "file", content: readFileSync(p, "utf8") });
    else
      out.set(r.sourcePath!, {
        type: "dir",
        files: readdirSync(p, { recursive: true })
          .map(String)
          .filter((f) => statSync(join(p, f)).isFile())
          .map((f) => ({ path: relative(p, join(p, f)), content: readFileSync(join(p, f), "utf8") })),
      });
  }
  return out;
}

/**
 * The example's production file with web serving a page from the repository and keeping data in a folder that is not.
 */
function release(page: string) {
  mkdirSync(join(source, "compose/pages"), { recursive: true });
  writeFileSync(join(source, "compose/pages/extra.html"), page);
  const text = readFileSync(FILE, "utf8").replace(
    "    x-vps-pipeline:\n      http:",
    "    volumes:\n      - ./pages/extra.html:/www/extra.html:ro\n      - ./webdata:/data\n    x-vps-pipeline:\n      http:",
  );
  const stack = parseComposeStack(text, FILE, bed.registry.prefix);
  const refs = fileRefs(stack.doc.toJS(), FILE);
  const files = releaseFiles(refs, found(refs));
  const compose = renderRelease(
    stack,
    { migrate: bed.images["migrate:v1"]!, api: bed.images["api:v1"]!, web: bed.images["web:v1"]! },
    files.rewrites,
  );
  return deployRequest("shipped", PORT, { compose, files: files.files, env: `WEB_PORT=${PORT}\n` });
}

const releaseComposeEdited = (edit: (t: string) => string) => releaseCompose("v1", "v1", edit);

const containerId = (service: string) =>
  sh(
    `docker ps -q --filter label=com.docker.compose.project=shipped --filter label=com.docker.compose.service=${service}`,
  ).trim();

afterAll(() => {
  freshProject("shipped");
  freshProject("envdriven");
});

describe("a release carries its files", () => {
  it("ships a page, recreates only what mounts it when it changes, brings the old one back on rollback; the data folder stays", async () => {
    freshProject("shipped");
    const first = release("<p>first page</p>\n");
    expect(first.files?.map((f) => f.path)).toEqual([
      expect.stringMatching(/^\.releases\/files\/[0-9a-f]{16}\/extra\.html$/),
    ]);
    await deploy(first);
    expect((await webStatus(PORT, "/extra.html")).body).toContain("first page");
    // the server's own data: not in the repository, never copied, never pruned
    expect(first.compose).toContain("./webdata:/data");
    sh(`echo kept > ${DIR}/webdata/keep.txt`);

    const api = containerId("api");
    const again = await deploy(release("<p>first page</p>\n"));
    expect(containerId("api")).toBe(api);
    expect(again.durations).toBeDefined();

    const web = containerId("web");
    await deploy(release("<p>second page</p>\n"));
    expect((await webStatus(PORT, "/extra.html")).body).toContain("second page");
    expect(containerId("api")).toBe(api); // exactly the service that mounts the page was recreated
    expect(containerId("web")).not.toBe(web);

    await rollback({ ...first, by: "vitest" });
    expect((await webStatus(PORT, "/extra.html")).body).toContain("first page");
    expect(readFileSync(`${DIR}/webdata/keep.txt`, "utf8")).toBe("kept\n");
    expect(history("shipped").map((h) => `${h.action} ${h.result}`)).toEqual([
      "deploy ok",
      "deploy ok",
      "deploy ok",
      "rollback ok",
    ]);
    // both pages are on the server, once each, readable by the containers
    expect(sh(`find ${DIR}/.releases/files -type f | wc -l`).trim()).toBe("2");
    expect(sh(`stat -c %a ${DIR}/.releases/files/*/extra.html | sort -u`).trim()).toBe("644");
  }, 300_000);
});

describe("YAML as people write it, on the server", () => {
  it("a stack whose services take their settings from an anchor with merge keys deploys and runs as written", async () => {
    freshProject("anchored");
    const anchored = (t: string) =>
      `x-app: &app\n  init: true\n  restart: unless-stopped\n${t.replace(/ {4}init: true( +#[^\n]*)?\n {4}restart: unless-stopped\n/g, "    <<: *app\n")}`;
    const compose = releaseComposeEdited(anchored);
    expect(compose).not.toContain("<<");
    await deploy(deployRequest("anchored", 18244, { compose, env: "WEB_PORT=18244\n" }));
    expect((await webStatus(18244)).body).toContain("Version v1.");
    expect(
      sh("docker inspect --format '{{.HostConfig.Init}} {{.HostConfig.RestartPolicy.Name}}' anchored-api-1").trim(),
    ).toBe("true unless-stopped");
    freshProject("anchored");
  });
});

describe("a stack that takes its settings from the .env (issue 32)", () => {
  /** Images, a build argument, a bind source and a replica count, each a variable, as people write them. */
  const text = `services:
  api:
    image: \${REGISTRY}/api:\${API_TAG:-v1}
    init: true
    restart: unless-stopped
    deploy:
      replicas: \${API_REPLICAS:-1}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/health"]
      interval: 1s
      timeout: 2s
      retries: 3
  web:
    build:
      context: ../test/fixtures/app/web
      args:
        BASE_IMAGE: \${WEB_BASE:?the base image}
    init: true
    restart: unless-stopped
    volumes:
      - \${WEB_PAGE:-./pages/default.html}:/www/extra.html:ro
    ports:
      - "\${WEB_PORT}:8000"
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/"]
      interval: 1s
      timeout: 2s
      retries: 3
`;
  const PORT2 = 18245;
  const envFor = (tag: string) =>
    `REGISTRY=${bed.registry.prefix}\nAPI_TAG=${tag}\nAPI_REPLICAS=2\nWEB_PAGE="./pages/chosen.html"\nWEB_PORT=${PORT2}\n`;

  function releaseWith(env: string) {
    mkdirSync(join(source, "compose/pages"), { recursive: true });
    writeFileSync(join(source, "compose/pages/default.html"), "<p>the default page</p>\n");
    writeFileSync(join(source, "compose/pages/chosen.html"), "<p>the page the .env chose</p>\n");
    // the build's variables are --build-args (a build never sees the production .env)
    const stack = parseComposeStack(text, FILE, bed.registry.prefix, new Map([["WEB_BASE", "busybox:1.36"]]), true);
    expect(stack.builds.map((b) => [b.service, b.args])).toEqual([["web", { BASE_IMAGE: "busybox:1.36" }]]);
    const refs = fileRefs(stack.doc.toJS(), FILE, envValues(env));
    const files = releaseFiles(refs, found(refs));
    const compose = renderRelease(stack, { web: bed.images["web:v1"]! }, files.rewrites);
    assertSubstitutable(FILE, compose, env, "envFile");
    return deployRequest("envdriven", PORT2, { compose, files: files.files, env });
  }

  const apiVersions = () =>
    sh(
      `for c in $(docker ps -q --filter label=com.docker.compose.project=envdriven --filter label=com.docker.compose.service=api); do docker exec $c cat /www/health; echo; done`,
    )
      .trim()
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean)
      .sort();

  it("deploys and verifies as the .env makes it, and an unhealthy tag from the .env is rolled back to it", async () => {
    freshProject("envdriven");
    // a build that is not given its required argument is refused, naming it
    expect(() => parseComposeStack(text, FILE, bed.registry.prefix, new Map(), true)).toThrow(
      /services\.web\.build\.args\.BASE_IMAGE: required variable WEB_BASE is missing a value: the base image/,
    );
    const first = releaseWith(envFor("v1"));
    // the page the .env names is the one shipped; the default is not
    expect(first.files?.map((f) => f.path)).toEqual([expect.stringMatching(/\/chosen\.html$/)]);
    expect(releaseShape(first.compose, first.env).images.api).toBe(`${bed.registry.prefix}/api:v1`);
    expect(releaseShape(first.compose, first.env).replicas).toEqual({ api: 2 });
    await deploy(first);
    expect((await webStatus(PORT2, "/extra.html")).body).toContain("the page the .env chose");
    expect(apiVersions()).toHaveLength(2);
    expect(apiVersions()[0]).toMatch(/v1/);
    // verify and status judge the images as the release's .env makes them: both api containers on v1's digest
    const target = { ssh: sshOptions(), dir: "production/envdriven", project: "envdriven" };
    const checked = await verify(target, [
      { url: `http://${bed.vps.hostIp}:${PORT2}/extra.html`, expectStatus: 200, retries: 2 },
    ]);
    expect(checked.problems).toEqual([]);
    expect(checked.services.filter((x) => x.service === "api")).toHaveLength(2);
    expect((await status(target)).releases.every((r) => r.missing.length === 0)).toBe(true);

    const broken = releaseWith(envFor("v3"));
    const err = await deploy({ ...broken, healthTimeoutSeconds: 40 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "DEPLOY_ROLLED_BACK" });
    // back on the .env's first choice: two healthy v1 replicas, the chosen page
    expect(apiVersions()).toHaveLength(2);
    expect(apiVersions().every((v) => /v1/.test(v))).toBe(true);
    expect((await webStatus(PORT2, "/extra.html")).body).toContain("the page the .env chose");
    expect(history("envdriven").map((h) => `${h.action} ${h.result}`)).toEqual(["deploy ok", "deploy rolled-back"]);
    expect((await verify(target, [])).problems).toEqual([]);
    // a replica gone is drift that verify names
    sh(
      `docker stop $(docker ps -q --filter label=com.docker.compose.project=envdriven --filter label=com.docker.compose.service=api | head -n 1) >/dev/null`,
    );
    expect((await verify(target, [])).problems).toEqual([
      expect.stringMatching(/service `api` runs 1 container\(s\), release \S+ asks for 2/),
    ]);
    freshProject("envdriven");
  }, 300_000);

  it("a .env that leaves the bind's or the replicas' variable without a value is refused before anything is sent", () => {
    const unset = `REGISTRY=${bed.registry.prefix}\nWEB_PORT=${PORT2}\n`;
    const stack = parseComposeStack(
      text.replace("${WEB_PAGE:-./pages/default.html}", "${WEB_PAGE}").replace("${API_REPLICAS:-1}", "${API_REPLICAS}"),
      FILE,
      bed.registry.prefix,
    );
    const compose = renderRelease(stack, { web: bed.images["web:v1"]! });
    expect(() => assertSubstitutable(FILE, compose, unset, "envFile")).toThrow(
      /services\.api\.deploy\.replicas: .*not a whole number \(API_REPLICAS unset.*\n.*services\.web\.volumes\[0\]: .*empty part \(WEB_PAGE unset/s,
    );
  });
});
