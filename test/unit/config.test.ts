import { describe, expect, it } from "vitest";
import {
  gitInfoSchema,
  invalidRegistryHost,
  registryHost,
  releaseIdSchema,
  parseHostKeyPin,
  parseInput,
  registrySchema,
  vpsTargetSchema,
} from "../../.dagger/src/core/config.js";
import { PipelineError } from "../../.dagger/src/core/errors.js";

const KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
const FP = "SHA256:" + "a".repeat(43);

function vps(over: Record<string, unknown> = {}) {
  return {
    host: "203.0.113.7",
    user: "deploy",
    project: "gold",
    dir: "~/production/gold",
    hostKey: `203.0.113.7 ssh-ed25519 ${KEY}`,
    ...over,
  };
}

function problemsOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PipelineError);
    expect((e as PipelineError).code).toBe("INVALID_INPUT");
    expect((e as PipelineError).hint).toMatch(/nothing was sent/);
    return (e as PipelineError).message;
  }
  throw new Error("expected an INVALID_INPUT error");
}

describe("host key pins", () => {
  it("reads known_hosts lines with or without a host field, and fingerprints", () => {
    expect(parseHostKeyPin(`[vps.example]:2222 ssh-ed25519 ${KEY} comment`)).toEqual({
      kind: "key",
      keyType: "ssh-ed25519",
      keyBase64: KEY,
    });
    expect(parseHostKeyPin(`ecdsa-sha2-nistp256 ${KEY}`)).toEqual({
      kind: "key",
      keyType: "ecdsa-sha2-nistp256",
      keyBase64: KEY,
    });
    expect(parseHostKeyPin(`  ${FP}\n`)).toEqual({ kind: "fingerprint", fingerprint: FP });
  });

  it("refuses what is neither", () => {
    expect(parseHostKeyPin("SHA256:short")).toBeUndefined();
    expect(parseHostKeyPin("MD5:aa:bb")).toBeUndefined();
    expect(parseHostKeyPin(`vps ssh-unknown ${KEY}`)).toBeUndefined();
    expect(parseHostKeyPin("")).toBeUndefined();
  });
});

describe("the VPS target", () => {
  it("parses with defaults; `~/` becomes relative to the deploy user's home", () => {
    const t = parseInput(vpsTargetSchema, vps(), "vps");
    expect(t).toMatchObject({
      host: "203.0.113.7",
      port: 22,
      user: "deploy",
      dir: "production/gold",
      hostKey: { kind: "key", keyType: "ssh-ed25519" },
    });
    expect(parseInput(vpsTargetSchema, vps({ dir: "/srv/app/", port: 2222 }), "vps")).toMatchObject({
      dir: "/srv/app",
      port: 2222,
    });
  });

  it("refuses a project or folder named like one the pipeline derives (a preview's, a backup check's): identity is a mark, never a name", () => {
    for (const [over, want] of [
      [{ project: "app-pr-5" }, /vps\.project: ends like a preview's name/],
      [{ project: "app-backup-check" }, /vps\.project: ends like the scratch copy of a backup check/],
      [{ project: "vps-pipeline-edge" }, /vps\.project: starts like the pipeline's own containers/],
      [{ dir: "/srv/app-pr-12/" }, /vps\.dir: ends like a preview's folder/],
    ] as const)
      expect(problemsOf(() => parseInput(vpsTargetSchema, vps(over), "vps"))).toMatch(want);
    expect(parseInput(vpsTargetSchema, vps({ project: "app-pr", dir: "/srv/pr-5-app" }), "vps")).toMatchObject({
      project: "app-pr",
    });
  });

  it("lists every problem at once as path: message", () => {
    const msg = problemsOf(() =>
      parseInput(
        vpsTargetSchema,
        vps({ host: "https://vps/", user: "Root User", dir: "../etc", hostKey: "yes", port: 70000 }),
        "vps",
      ),
    );
    expect(msg).toMatch(/vps\.host: must be a host name or an IP address/);
    expect(msg).toMatch(/vps\.user: must be a POSIX user name/);
    expect(msg).toMatch(/vps\.dir: must not contain `\.\.`/);
    expect(msg).toMatch(/vps\.hostKey: must be a known_hosts line/);
    expect(msg).toMatch(/vps\.port: /);
  });

  it("defaults the directory to ~/production/<project>; refuses `/`, a leading `-` and a bad project", () => {
    expect(parseInput(vpsTargetSchema, vps({ dir: undefined }), "vps")).toMatchObject({
      dir: "production/gold",
      keepReleases: 5,
      healthTimeoutSeconds: 120,
      lockTimeoutSeconds: 300,
      by: "",
      keepSnapshots: 10,
      keepOffsiteSnapshots: 30,
      keepOffsiteSnapshotDays: 0,
    });
    expect(problemsOf(() => parseInput(vpsTargetSchema, vps({ dir: "/" }), "vps"))).toMatch(
      /vps\.dir: must not be `\/`/,
    );
    expect(problemsOf(() => parseInput(vpsTargetSchema, vps({ dir: "-rf" }), "vps"))).toMatch(
      /vps\.dir: .*must not start with `-`/,
    );
    const msg = problemsOf(() =>
      parseInput(vpsTargetSchema, vps({ project: "Gold Tracker", keepReleases: 1, by: "a\nb" }), "vps"),
    );
    expect(msg).toMatch(/vps\.project: must be a compose project name/);
    expect(msg).toMatch(/vps\.keepReleases: must keep at least 2 releases/);
    expect(msg).toMatch(/vps\.by: must be one line/);
    expect(problemsOf(() => parseInput(vpsTargetSchema, vps({ keepOffsiteSnapshots: 0 }), "vps"))).toMatch(
      /vps\.keepOffsiteSnapshots: must keep at least 1 snapshot off-site/,
    );
  });

  it("says a missing host key must be pinned", () => {
    expect(problemsOf(() => parseInput(vpsTargetSchema, vps({ hostKey: "" }), "vps"))).toMatch(
      /vps\.hostKey: is required: pin the server's host key/,
    );
  });
});

describe("registry and git inputs", () => {
  it("lowercases the image prefix (GitHub names may have upper case, GHCR refuses it)", () => {
    expect(parseInput(registrySchema, { user: "octo", imagePrefix: "ghcr.io/Acme/Gold-Tracker/" }, "registry")).toEqual(
      { host: "ghcr.io", user: "octo", imagePrefix: "ghcr.io/acme/gold-tracker" },
    );
  });

  it("refuses a prefix that is not host/owner/repo or breaks the OCI grammar", () => {
    expect(problemsOf(() => parseInput(registrySchema, { user: "octo", imagePrefix: "ghcr.io" }, "registry"))).toMatch(
      /registry\.imagePrefix: must look like `ghcr\.io\/<owner>\/<repo>`/,
    );
    expect(
      problemsOf(() => parseInput(registrySchema, { user: "", imagePrefix: "ghcr.io/acme/gold..tracker" }, "registry")),
    ).toMatch(/registry\.user: .*\n.*registry\.imagePrefix: component `gold\.\.tracker`/s);
  });

  it("checks the sha and the ref", () => {
    expect(parseInput(gitInfoSchema, { sha: "abc1234", ref: "refs/tags/v1.2.3" }, "git")).toEqual({
      sha: "abc1234",
      ref: "refs/tags/v1.2.3",
      defaultBranch: "main",
    });
    const msg = problemsOf(() => parseInput(gitInfoSchema, { sha: "ABC", ref: "main" }, "git"));
    expect(msg).toMatch(/git\.sha: must be a git commit sha/);
    expect(msg).toMatch(/git\.ref: must be a full git ref/);
  });

  it("takes the commit time as the created label's source, and refuses anything but RFC 3339", () => {
    expect(
      parseInput(
        gitInfoSchema,
        { sha: "abc1234", commitTime: "2026-11-25T12:00:00+01:00" },
        "git",
      ).commitTime?.toISOString(),
    ).toBe("2026-11-25T11:00:00.000Z");
    expect(problemsOf(() => parseInput(gitInfoSchema, { sha: "abc1234", commitTime: "yesterday" }, "git"))).toMatch(
      /git\.commitTime: must be an RFC 3339 time.*%cI/,
    );
  });

  it("takes a registry with a port everywhere a registry is named, and refuses schemes and paths", () => {
    for (const ok of ["ghcr.io", "registry.example.com:5000", "10.200.0.1:5443", "localhost:5000", "[::1]:5000"])
      expect(invalidRegistryHost(ok), ok).toBeUndefined();
    expect(invalidRegistryHost("https://ghcr.io")).toMatch(/no scheme, no path/);
    expect(invalidRegistryHost("ghcr.io/acme")).toMatch(/no scheme, no path/);
    expect(invalidRegistryHost("reg.example.com:99999")).toMatch(/port 99999/);
    expect(problemsOf(() => parseInput(registryHost, "bad host", "registry"))).toMatch(
      /^invalid registry:\n  registry: must be a host name/,
    );
    expect(
      parseInput(registrySchema, { host: "registry.example.com:5000", user: "robot$ci" }, "registry"),
    ).toMatchObject({ host: "registry.example.com:5000" });
    expect(problemsOf(() => parseInput(registrySchema, { user: 'a"b' }, "registry"))).toMatch(
      /registry\.user: must not contain/,
    );
  });

  it("reads release ids as status prints them", () => {
    expect(parseInput(releaseIdSchema, "20261125T212233.123Z-abc1234", "rollback.to")).toBe(
      "20261125T212233.123Z-abc1234",
    );
    expect(problemsOf(() => parseInput(releaseIdSchema, "last", "rollback.to"))).toMatch(
      /rollback\.to: must be a release id/,
    );
  });
});
