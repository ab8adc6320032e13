/**
 * Multi-platform images on the test bed: an index with an amd64 and an arm64
 * entry, pushed to the test bed's registry, deploys and verifies with the index
 * digest pinned; an index without the server's platform is refused before
 * anything changes, naming the service, the platforms there and the server's.
 */
import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { parseComposeStack, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { verify } from "../../.dagger/src/remote/verify.js";
import { RegistryClient } from "../../.dagger/src/registry/client.js";
import { indexPlatforms } from "../../.dagger/src/registry/platforms.js";
import { auditSecrets } from "../testbed/audit.js";
import { bed, containers, deployRequest, freshProject, history, registryPassword, sh } from "../testbed/bed.js";
import { readFileSync } from "node:fs";

auditSecrets();
const P = "plat";
const login = { host: bed.registry.host, user: bed.registry.user, token: registryPassword };
const webPath = `${bed.registry.prefix}/web`.slice(bed.registry.host.length + 1);
const client = new RegistryClient({ host: bed.registry.host, user: login.user, token: login.token });

/**
 * Push an index of web:v1's manifest for these platforms (an entry per platform, all the same image: enough for a
 * pull); its digest.
 */
async function pushIndex(tag: string, platforms: string[]): Promise<string> {
  const child = await client.request("GET", webPath, `manifests/${bed.images["web:v1"]}`, ["pull"], {
    Accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
  });
  const type = child.headers.get("content-type")!;
  const bytes = Buffer.from(await child.arrayBuffer());
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  const listType = type.includes("oci")
    ? "application/vnd.oci.image.index.v1+json"
    : "application/vnd.docker.distribution.manifest.list.v2+json";
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: listType,
    manifests: platforms.map((p) => ({
      mediaType: type,
      digest,
      size: bytes.length,
      platform: { os: p.split("/")[0], architecture: p.split("/")[1] },
    })),
  });
  const put = await client.request(
    "PUT",
    webPath,
    `manifests/${tag}`,
    ["push", "pull"],
    { "Content-Type": listType },
    new Blob([index]),
  );
  await put.body?.cancel();
  return `sha256:${createHash("sha256").update(index).digest("hex")}`;
}

/** Push web:v1 again as a single-platform image whose config says `architecture` (a laptop's build); its digest. */
async function pushSinglePlatform(tag: string, architecture: string): Promise<string> {
  const got = await client.request("GET", webPath, `manifests/${bed.images["web:v1"]}`, ["pull"], {
    Accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
  });
  const type = got.headers.get("content-type")!;
  const manifest = JSON.parse(await got.text()) as { config: { digest: string; size: number } };
  const cfg = await client.request("GET", webPath, `blobs/${manifest.config.digest}`, ["pull"]);
  const bytes = Buffer.from(JSON.stringify({ ...(JSON.parse(await cfg.text()) as object), architecture }));
  const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
  const up = await client.request("POST", webPath, "blobs/uploads/", ["push", "pull"]);
  await up.body?.cancel();
  const url = new URL(up.headers.get("location")!, `https://${bed.registry.host}`);
  url.searchParams.set("digest", sha(bytes));
  const basic = `Basic ${Buffer.from(`${login.user}:${login.token}`).toString("base64")}`;
  const put = await fetch(url, { method: "PUT", headers: { Authorization: basic }, body: bytes });
  expect(put.status).toBe(201);
  const body = JSON.stringify({ ...manifest, config: { ...manifest.config, digest: sha(bytes), size: bytes.length } });
  const m = await client.request(
    "PUT",
    webPath,
    `manifests/${tag}`,
    ["push", "pull"],
    { "Content-Type": type },
    new Blob([body]),
  );
  await m.body?.cancel();
  return sha(body);
}

const compose = (web: string) => {
  const stack = parseComposeStack(
    readFileSync("compose/docker-compose.prod.yml", "utf8"),
    "compose/docker-compose.prod.yml",
    bed.registry.prefix,
  );
  return renderRelease(stack, { migrate: bed.images["migrate:v1"]!, api: bed.images["api:v1"]!, web });
};
const request = (web: string, log: (l: string) => void = () => {}) =>
  deployRequest(P, 18315, { compose: compose(web), platformsOf: (i) => indexPlatforms(i, login), log });

beforeAll(() => freshProject(P));

describe("multi-platform images", () => {
  it("an index with amd64 and arm64 deploys with its digest pinned, and verifies: the container runs the index, no drift", async () => {
    const index = await pushIndex("multi-v1", ["linux/amd64", "linux/arm64"]);
    expect(await client.manifestDigest(webPath, "multi-v1")).toBe(index); // the tag resolves to the index, not a child
    expect([...(await indexPlatforms([`${bed.registry.prefix}/web@${index}`], login)).values()]).toEqual([
      ["linux/amd64", "linux/arm64"],
    ]);
    const lines: string[] = [];
    const r = await deploy(request(index, (l) => lines.push(l)));
    expect(r.images.web).toBe(`${bed.registry.prefix}/web@${index}`);
    expect(lines.join("\n")).toMatch(/platforms .*linux\/amd64: every image has it/);
    expect(sh(`docker inspect --format '{{.Config.Image}}' ${containers(P).web}`).trim()).toBe(
      `${bed.registry.prefix}/web@${index}`,
    );
    const v = await verify({ ssh: deployRequest(P, 0).ssh, dir: `production/${P}`, project: P }, []);
    expect(v.problems).toEqual([]);
  });

  it("an index without the server's platform is refused before anything changes, naming the service and both sides", async () => {
    const before = containers(P);
    const armOnly = await pushIndex("arm-only-v1", ["linux/arm64", "linux/arm/v7"]);
    const err = await deploy(request(armOnly)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "PLATFORM_MISSING" });
    expect((err as Error).message).toContain(
      `services.web: ${bed.registry.prefix}/web@${armOnly} has linux/arm64, linux/arm; the VPS is linux/amd64`,
    );
    expect(containers(P)).toEqual(before);
    expect(history(P).at(-1)).toMatchObject({ result: "failed", code: "PLATFORM_MISSING" });
    expect(
      sh(
        `docker image inspect ${bed.registry.prefix}/web@${armOnly} >/dev/null 2>&1 && echo pulled || echo not-pulled`,
      ).trim(),
    ).toBe("not-pulled");
  });

  it("a single-platform image of another platform (an arm64 laptop's build) is refused before anything changes", async () => {
    const before = containers(P);
    const arm = await pushSinglePlatform("arm-single-v1", "arm64");
    expect([...(await indexPlatforms([`${bed.registry.prefix}/web@${arm}`], login)).values()]).toEqual([
      ["linux/arm64"],
    ]);
    const err = await deploy(request(arm)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "PLATFORM_MISSING" });
    expect((err as Error).message).toContain(
      `services.web: ${bed.registry.prefix}/web@${arm} has linux/arm64; the VPS is linux/amd64`,
    );
    expect(containers(P)).toEqual(before);
  });
});
