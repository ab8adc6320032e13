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
import { parseComposeStack, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import { fileRefs, releaseFiles, type FileRef, type Found } from "../../.dagger/src/core/release/release-files.js";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { rollback } from "../../.dagger/src/remote/rollback.js";
import { auditSecrets } from "../testbed/audit.js";
import { bed, deployRequest, freshProject, history, releaseCompose, sh, webStatus } from "../testbed/bed.js";

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

afterAll(() => freshProject("shipped"));

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
