/**
 * Publishing without an engine: the build plan's containers are stood in for by
 * fakes with the same surface (sync, withRegistryAuth, publish), the registry by
 * a fake tag store. What is checked is the pipeline's own logic around them.
 */
import type { Container, Secret } from "@dagger.io/dagger";
import { describe, expect, it } from "vitest";
import { publishImages, type BuiltImage, type TagStore } from "../../.dagger/src/build/images.js";
import { parseComposeStack } from "../../.dagger/src/core/compose/compose.js";
import { ociLabels, pinnedImagesRegistry, tagsFor } from "../../.dagger/src/core/registry/images.js";
import { classifyRegistryOutput, registryError } from "../../.dagger/src/core/registry/registry-errors.js";
import { stackRegistry } from "../../.dagger/src/inputs/inputs.js";

const D = (c: string) => `sha256:${c.repeat(64)}`;
const stack = parseComposeStack(
  "services:\n  api: { build: ./api }\n  web: { build: ./web, image: registry.example.com:5000/acme/web }\n",
  "compose/prod.yml",
  "registry.example.com:5000/acme",
);

function fakeContainer(o: { fails?: string; digest?: string } = {}) {
  const pushed: string[] = [];
  const variants: unknown[][] = [];
  const c = {
    sync: async () => {
      if (o.fails) throw new Error(o.fails);
      return c;
    },
    withRegistryAuth: () => c,
    publish: async (ref: string, opts?: { platformVariants?: unknown[] }) => {
      pushed.push(ref);
      variants.push(opts?.platformVariants ?? []);
      return `${ref.split(":").slice(0, -1).join(":")}@${o.digest ?? D("1")}`;
    },
  };
  return { container: c as unknown as Container, pushed, variants };
}

const SHA = "abc1234def5678abc1234def5678abc1234def56";

/**
 * A registry holding `existing` tags (path:tag → digest), each image labelled with `revisions[digest]` (default: the
 * commit published here).
 */
function fakeStore(
  existing: Record<string, string> = {},
  revisions: Record<string, string | undefined> = {},
): TagStore & { tagged: string[] } {
  const tagged: string[] = [];
  return {
    tagged,
    digestOf: async (path, tag) => existing[`${path}:${tag}`],
    revisionOf: async (_path, digest) => (digest in revisions ? revisions[digest] : SHA),
    tag: async (path, digest, tag) => void tagged.push(`${path}:${tag}=${digest}`),
  };
}
const rel = (...tags: string[]) => ({ tags, revision: SHA });

const auth = { host: "registry.example.com:5000", user: "ci", token: {} as Secret };

describe("publish", () => {
  it("several platforms: every platform's build runs first, then one push of an index whose digest is the one printed and pinned", async () => {
    const amd = fakeContainer({ digest: D("c") });
    const arm = fakeContainer();
    const built: BuiltImage[] = [{ target: stack.builds[0]!, container: amd.container, variants: [arm.container] }];
    const out = await publishImages(built, rel("sha-abc1234"), auth, fakeStore());
    expect(amd.pushed).toEqual(["registry.example.com:5000/acme/api:sha-abc1234"]);
    expect(amd.variants).toEqual([[arm.container]]);
    expect(arm.pushed).toEqual([]);
    expect(out.map((p) => p.pinned)).toEqual([`registry.example.com:5000/acme/api@${D("c")}`]);
    // a platform whose build fails stops everything before any push
    const broken = fakeContainer({ fails: "exec format error" });
    const amd2 = fakeContainer();
    const err = await publishImages(
      [{ target: stack.builds[0]!, container: amd2.container, variants: [broken.container] }],
      rel("sha-abc1234"),
      auth,
      fakeStore(),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "BUILD_FAILED", message: expect.stringContaining("exec format error") });
    expect(amd2.pushed).toEqual([]);
  });

  it("--platforms is checked: os/arch[/variant], each once", async () => {
    const { platformList } = await import("../../.dagger/src/inputs/inputs.js");
    expect(platformList(["linux/amd64", "linux/arm64", "linux/arm/v7"])).toEqual([
      "linux/amd64",
      "linux/arm64",
      "linux/arm/v7",
    ]);
    expect(() => platformList(["amd64"])).toThrow(/platforms: `amd64` is not os\/arch/);
    expect(() => platformList(["linux/amd64", "linux/amd64"])).toThrow(/twice/);
  });

  it("pushes every tag of a new commit, sha-<7> first, and prints repo@digest", async () => {
    const api = fakeContainer({ digest: D("a") });
    const web = fakeContainer({ digest: D("b") });
    const built: BuiltImage[] = [
      { target: stack.builds[0]!, container: api.container },
      { target: stack.builds[1]!, container: web.container },
    ];
    const store = fakeStore();
    const out = await publishImages(built, rel("sha-abc1234", "latest"), auth, store);
    expect(api.pushed).toEqual(["registry.example.com:5000/acme/api:sha-abc1234"]);
    expect(store.tagged).toEqual([`acme/api:latest=${D("a")}`, `acme/web:latest=${D("b")}`]);
    expect(out.map((p) => [p.pinned, p.reused])).toEqual([
      [`registry.example.com:5000/acme/api@${D("a")}`, false],
      [`registry.example.com:5000/acme/web@${D("b")}`, false],
    ]);
  });

  it("never moves sha-<7>: a commit already published is reused, its other tags pointed at the same digest, nothing rebuilt", async () => {
    const api = fakeContainer({ fails: "must not be built" });
    const store = fakeStore({ "acme/api:sha-abc1234": D("e") });
    const out = await publishImages(
      [{ target: stack.builds[0]!, container: api.container }],
      rel("sha-abc1234", "latest", "v1.2.3"),
      auth,
      store,
    );
    expect(out[0]).toMatchObject({ digest: D("e"), reused: true });
    expect(api.pushed).toEqual([]);
    expect(store.tagged).toEqual([`acme/api:latest=${D("e")}`, `acme/api:v1.2.3=${D("e")}`]);
  });

  it("reports a failing Dockerfile step as BUILD_FAILED naming the service and the step's output, before any push", async () => {
    const api = fakeContainer({
      fails:
        'process "/bin/sh -c npm ci" did not complete successfully: exit code: 1\nnpm ERR! missing: left-pad@1.3.0',
    });
    const err = await publishImages(
      [{ target: stack.builds[0]!, container: api.container }],
      rel("sha-abc1234"),
      auth,
      fakeStore(),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "BUILD_FAILED",
      message: expect.stringMatching(
        /services\.api \(compose\/api\/Dockerfile\) failed:[\s\S]*npm ERR! missing: left-pad/,
      ),
      hint: expect.stringMatching(/Nothing was pushed/),
    });
    expect(api.pushed).toEqual([]);
  });

  it("is all or nothing: when the second service fails to build, the first is not pushed and latest does not move", async () => {
    const api = fakeContainer({ digest: D("a") });
    const web = fakeContainer({ fails: "exit code: 1" });
    const store = fakeStore();
    const err = await publishImages(
      [
        { target: stack.builds[0]!, container: api.container },
        { target: stack.builds[1]!, container: web.container },
      ],
      rel("sha-abc1234", "latest"),
      auth,
      store,
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "BUILD_FAILED", message: expect.stringMatching(/services\.web/) });
    expect(api.pushed).toEqual([]);
    expect(store.tagged).toEqual([]);
  });

  it("never reuses another commit's sha-<7>: two commits sharing 7 hex digits stop before any push", async () => {
    const api = fakeContainer({ digest: D("a") });
    const other = "abc1234999999999999999999999999999999999";
    const err = await publishImages(
      [{ target: stack.builds[0]!, container: api.container }],
      rel("sha-abc1234", "latest"),
      auth,
      fakeStore({ "acme/api:sha-abc1234": D("e") }, { [D("e")]: other }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "TAG_TAKEN",
      message: expect.stringContaining(`already holds commit ${other}, not ${SHA}; nothing was pushed`),
    });
    expect(api.pushed).toEqual([]);
    const unlabelled = await publishImages(
      [{ target: stack.builds[0]!, container: api.container }],
      rel("sha-abc1234"),
      auth,
      fakeStore({ "acme/api:sha-abc1234": D("e") }, { [D("e")]: undefined }),
    ).catch((e: unknown) => e);
    expect(unlabelled).toMatchObject({
      code: "TAG_TAKEN",
      message: expect.stringContaining("an image without a revision label"),
    });
    // the same commit given short (7 hex) is the same commit
    const short = await publishImages(
      [{ target: stack.builds[0]!, container: api.container }],
      { tags: ["sha-abc1234"], revision: "abc1234" },
      auth,
      fakeStore({ "acme/api:sha-abc1234": D("e") }),
    );
    expect(short[0]).toMatchObject({ reused: true, digest: D("e") });
  });

  it("labels the image with the commit's time, so the same commit gives the same image; without one, no created label", () => {
    const git = { sha: "abc1234def", defaultBranch: "main" };
    const at = new Date("2026-11-25T12:00:00Z");
    expect(ociLabels({ source: "s", revision: git.sha, created: at })["org.opencontainers.image.created"]).toBe(
      "2026-11-25T12:00:00.000Z",
    );
    expect(ociLabels({ source: "s", revision: git.sha, created: at })).toEqual(
      ociLabels({ source: "s", revision: git.sha, created: new Date(at) }),
    );
    expect(Object.keys(ociLabels({ source: "s", revision: git.sha }))).not.toContain(
      "org.opencontainers.image.created",
    );
    expect(tagsFor(git).shaTag).toBe("sha-abc1234");
  });

  it("refuses an image prefix on another host than the registry, before anything is pushed", () => {
    expect(stackRegistry(stack, "registry.example.com:5000")).toBe("registry.example.com:5000");
    const other = parseComposeStack("services:\n  api: { build: ./api }\n", "compose/prod.yml", "ghcr.io/acme");
    expect(() => stackRegistry(other, "registry.example.com:5000")).toThrow(
      /the registry is registry\.example\.com:5000, but services\.api is ghcr\.io\/acme\/api/,
    );
  });

  it("sends tokens only to the registry of the built images: taken from them when --registry is not given", () => {
    expect(stackRegistry(stack, "")).toBe("registry.example.com:5000");
    const ghcr = parseComposeStack(
      "services:\n  api: { build: ./api }\n  db: { image: postgres:16 }\n",
      "compose/prod.yml",
      "ghcr.io/acme",
    );
    expect(stackRegistry(ghcr, "")).toBe("ghcr.io");
    const nothingBuilt = parseComposeStack("services:\n  db: { image: postgres:16 }\n", "compose/prod.yml");
    expect(stackRegistry(nothingBuilt, "")).toBe("ghcr.io");
    expect(stackRegistry(nothingBuilt, "10.0.0.5:5000")).toBe("10.0.0.5:5000");
    const two = parseComposeStack(
      "services:\n  api: { build: ./api, image: ghcr.io/acme/api }\n  web: { build: ./web, image: registry.example.com:5000/acme/web }\n",
      "compose/prod.yml",
    );
    expect(() => stackRegistry(two, "")).toThrow(
      /built images are on 2 registries \(services\.api → ghcr\.io, services\.web → registry\.example\.com:5000\)/,
    );
  });

  it("a rollback learns the registry from the release's pinned images, never from a guess", () => {
    const d = "@sha256:" + "1".repeat(64);
    expect(pinnedImagesRegistry([`10.0.0.5:5000/acme/api${d}`, "postgres:16"])).toBe("10.0.0.5:5000");
    expect(pinnedImagesRegistry(["postgres:16"])).toBeUndefined();
    expect(pinnedImagesRegistry([`ghcr.io/acme/api${d}`, `docker.io/library/postgres${d}`])).toBeUndefined();
  });
});

describe("what docker and containerd print, classified", () => {
  it("`no basic auth credentials` is missing credentials (401), not a refusal (403)", () => {
    expect(
      classifyRegistryOutput("failed to push ghcr.io/acme/api:sha-1: failed to authorize: no basic auth credentials"),
    ).toBe("unauthorized");
    expect(registryError("push", "ghcr.io", "no basic auth credentials")).toMatchObject({
      code: "REGISTRY_UNAUTHORIZED",
    });
  });

  it("an untrusted certificate is its own failure, naming the registry docker talked to", () => {
    const out =
      'Error response from daemon: Get "https://10.0.0.5:5000/v2/": tls: failed to verify certificate: x509: certificate signed by unknown authority';
    expect(classifyRegistryOutput(out)).toBe("certificate");
    expect(registryError("pull", "ghcr.io", out)).toMatchObject({
      code: "REGISTRY_CERT_UNTRUSTED",
      message: expect.stringMatching(/10\.0\.0\.5:5000/),
      hint: expect.stringMatching(/certs\.d\/10\.0\.0\.5:5000\/ca\.crt/),
    });
  });
});
