import { describe, expect, it } from "vitest";
import {
  invalidImageReference,
  ociLabels,
  parseImageReference,
  pinned,
  repositoryOf,
  tagsFor,
} from "../../.dagger/src/core/registry/images.js";

const D = `sha256:${"ab".repeat(32)}`;

describe("image references", () => {
  it("splits host, path, tag and digest the way docker does", () => {
    expect(parseImageReference(`ghcr.io/acme/gold/api:v1@${D}`)).toEqual({
      registry: "ghcr.io",
      path: "acme/gold/api",
      tag: "v1",
      digest: D,
    });
    expect(parseImageReference("10.200.0.1:5443/acme/api")).toEqual({ registry: "10.200.0.1:5443", path: "acme/api" });
    expect(parseImageReference("postgres:16")).toEqual({ registry: "docker.io", path: "postgres", tag: "16" });
    expect(parseImageReference("localhost/app")).toEqual({ registry: "localhost", path: "app" });
    expect(repositoryOf(`ghcr.io/acme/gold/web@${D}`)).toBe("ghcr.io/acme/gold/web");
  });

  it("explains what breaks the OCI grammar", () => {
    expect(invalidImageReference("ghcr.io/Acme/api")).toMatch(/lowercase/);
    expect(invalidImageReference("ghcr.io/acme/-api")).toMatch(/component `-api`/);
    expect(invalidImageReference("ghcr.io/acme/api:bad tag")).toMatch(/tag/);
    expect(invalidImageReference("ghcr.io/acme/api@sha256:123")).toMatch(/digest/);
    expect(invalidImageReference("")).toMatch(/empty/);
    expect(invalidImageReference("ghcr.io/acme/gold-tracker/api:sha-0123456")).toBeUndefined();
  });

  it("pins only real digests", () => {
    expect(pinned("ghcr.io/acme/api", D)).toBe(`ghcr.io/acme/api@${D}`);
    expect(() => pinned("ghcr.io/acme/api", "latest")).toThrow(/not a sha256 digest/);
  });
});

describe("tags", () => {
  const sha = "0123456789abcdef0123456789abcdef01234567";
  it("always sha-<7>; latest only on the default branch", () => {
    expect(tagsFor({ sha, ref: "refs/heads/main", defaultBranch: "main" }).tags).toEqual(["sha-0123456", "latest"]);
    expect(tagsFor({ sha, ref: "refs/heads/feature/x", defaultBranch: "main" }).tags).toEqual(["sha-0123456"]);
    expect(tagsFor({ sha, defaultBranch: "main" })).toEqual({ tags: ["sha-0123456"], shaTag: "sha-0123456" });
    expect(tagsFor({ sha, ref: "refs/heads/trunk", defaultBranch: "trunk" }).tags).toContain("latest");
  });

  it("vX.Y.Z and X.Y on a release tag, no X.Y on a pre-release, nothing extra on other tags", () => {
    expect(tagsFor({ sha, ref: "refs/tags/v1.4.2", defaultBranch: "main" }).tags).toEqual([
      "sha-0123456",
      "v1.4.2",
      "1.4",
    ]);
    expect(tagsFor({ sha, ref: "refs/tags/2.0.0", defaultBranch: "main" }).tags).toEqual([
      "sha-0123456",
      "v2.0.0",
      "2.0",
    ]);
    expect(tagsFor({ sha, ref: "refs/tags/v2.0.0-rc.1", defaultBranch: "main" }).tags).toEqual([
      "sha-0123456",
      "v2.0.0-rc.1",
    ]);
    expect(tagsFor({ sha, ref: "refs/tags/nightly", defaultBranch: "main" }).tags).toEqual(["sha-0123456"]);
  });
});

describe("OCI labels", () => {
  it("names source, revision, created and version", () => {
    expect(
      ociLabels({
        source: "https://github.com/acme/gold",
        revision: "0123456789",
        created: new Date("2026-11-25T10:00:00Z"),
      }),
    ).toEqual({
      "org.opencontainers.image.source": "https://github.com/acme/gold",
      "org.opencontainers.image.revision": "0123456789",
      "org.opencontainers.image.created": "2026-11-25T10:00:00.000Z",
      "org.opencontainers.image.version": "0123456",
    });
  });
});
