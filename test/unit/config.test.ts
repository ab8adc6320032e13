import { describe, expect, it } from "vitest";
import { deployOptionsSchema, gitInfoSchema, parseHostKeyPin, parseInput, registrySchema, vpsTargetSchema } from "../../.dagger/src/core/config.js";
import { PipelineError } from "../../.dagger/src/core/errors.js";

const KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
const FP = "SHA256:" + "a".repeat(43);

function vps(over: Record<string, unknown> = {}) {
  return { host: "203.0.113.7", user: "deploy", dir: "~/production/gold", hostKey: `203.0.113.7 ssh-ed25519 ${KEY}`, ...over };
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
    expect(parseHostKeyPin(`[vps.example]:2222 ssh-ed25519 ${KEY} comment`)).toEqual({ kind: "key", keyType: "ssh-ed25519", keyBase64: KEY });
    expect(parseHostKeyPin(`ecdsa-sha2-nistp256 ${KEY}`)).toEqual({ kind: "key", keyType: "ecdsa-sha2-nistp256", keyBase64: KEY });
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
    expect(t).toMatchObject({ host: "203.0.113.7", port: 22, user: "deploy", dir: "production/gold", hostKey: { kind: "key", keyType: "ssh-ed25519" } });
    expect(parseInput(vpsTargetSchema, vps({ dir: "/srv/app/", port: 2222 }), "vps")).toMatchObject({ dir: "/srv/app", port: 2222 });
  });

  it("lists every problem at once as path: message", () => {
    const msg = problemsOf(() => parseInput(vpsTargetSchema, vps({ host: "https://vps/", user: "Root User", dir: "../etc", hostKey: "yes", port: 70000 }), "vps"));
    expect(msg).toMatch(/vps\.host: must be a host name or an IP address/);
    expect(msg).toMatch(/vps\.user: must be a POSIX user name/);
    expect(msg).toMatch(/vps\.dir: must not contain `\.\.`/);
    expect(msg).toMatch(/vps\.hostKey: must be a known_hosts line/);
    expect(msg).toMatch(/vps\.port: /);
  });

  it("says a missing host key must be pinned", () => {
    expect(problemsOf(() => parseInput(vpsTargetSchema, vps({ hostKey: "" }), "vps"))).toMatch(/vps\.hostKey: is required: pin the server's host key/);
  });
});

describe("registry and git inputs", () => {
  it("lowercases the image prefix (GitHub names may have upper case, GHCR refuses it)", () => {
    expect(parseInput(registrySchema, { user: "octo", imagePrefix: "ghcr.io/Acme/Gold-Tracker/" }, "registry")).toEqual({ host: "ghcr.io", user: "octo", imagePrefix: "ghcr.io/acme/gold-tracker" });
  });

  it("refuses a prefix that is not host/owner/repo or breaks the OCI grammar", () => {
    expect(problemsOf(() => parseInput(registrySchema, { user: "octo", imagePrefix: "ghcr.io" }, "registry"))).toMatch(/registry\.imagePrefix: must look like `ghcr\.io\/<owner>\/<repo>`/);
    expect(problemsOf(() => parseInput(registrySchema, { user: "", imagePrefix: "ghcr.io/acme/gold..tracker" }, "registry"))).toMatch(/registry\.user: .*\n.*registry\.imagePrefix: component `gold\.\.tracker`/s);
  });

  it("checks the sha and the ref", () => {
    expect(parseInput(gitInfoSchema, { sha: "abc1234", ref: "refs/tags/v1.2.3" }, "git")).toEqual({ sha: "abc1234", ref: "refs/tags/v1.2.3", defaultBranch: "main" });
    const msg = problemsOf(() => parseInput(gitInfoSchema, { sha: "ABC", ref: "main" }, "git"));
    expect(msg).toMatch(/git\.sha: must be a git commit sha/);
    expect(msg).toMatch(/git\.ref: must be a full git ref/);
  });

  it("keeps at least two releases and checks the compose project name", () => {
    expect(parseInput(deployOptionsSchema, { project: "gold-tracker" }, "deploy")).toEqual({ project: "gold-tracker", keepReleases: 5, healthTimeoutSeconds: 120, lockTimeoutSeconds: 300 });
    const msg = problemsOf(() => parseInput(deployOptionsSchema, { project: "Gold Tracker", keepReleases: 1 }, "deploy"));
    expect(msg).toMatch(/deploy\.project: must be a compose project name/);
    expect(msg).toMatch(/deploy\.keepReleases: must keep at least 2 releases/);
  });
});
