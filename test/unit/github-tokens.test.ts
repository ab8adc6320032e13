import { describe, expect, it } from "vitest";
import { failed, formatFindings } from "../../.dagger/src/core/findings.js";
import {
  parseOAuthScopes,
  scopeFinding,
  tokenKind,
  tokenKindFinding,
} from "../../.dagger/src/core/registry/github-tokens.js";

describe("GitHub token kinds", () => {
  it("are told by their prefix", () => {
    expect(tokenKind("ghp_" + "a".repeat(36))).toBe("classic-pat");
    expect(tokenKind("github_pat_11AAAA_" + "b".repeat(59))).toBe("fine-grained-pat");
    expect(tokenKind("ghs_" + "c".repeat(36))).toBe("installation");
    expect(tokenKind("gho_x")).toBe("oauth");
    expect(tokenKind("ghu_x")).toBe("user-to-server");
    expect(tokenKind("ghr_x")).toBe("refresh");
    expect(tokenKind("s3cr3t")).toBe("other");
  });

  it("say what breaks for each use", () => {
    expect(tokenKindFinding("fine-grained-pat", "pull", "pull")).toMatchObject({
      status: "fail",
      detail: expect.stringMatching(/GHCR does not accept/),
      fix: expect.stringMatching(/classic PAT with `read:packages`/),
    });
    expect(tokenKindFinding("installation", "push", "push").status).toBe("ok");
    expect(tokenKindFinding("installation", "pull", "pull")).toMatchObject({
      status: "warn",
      detail: expect.stringMatching(/expires when the job ends/),
    });
    expect(tokenKindFinding("classic-pat", "push", "push")).toMatchObject({
      status: "ok",
      detail: expect.stringMatching(/write:packages/),
    });
    expect(tokenKindFinding("other", "push", "push").status).toBe("skip");
  });
});

describe("X-OAuth-Scopes", () => {
  it("parses the recorded header of a classic token", () => {
    expect(parseOAuthScopes("read:packages, repo, workflow")).toEqual(["read:packages", "repo", "workflow"]);
    expect(parseOAuthScopes("")).toEqual([]);
    expect(parseOAuthScopes(null)).toBeUndefined();
  });

  it("judges the scopes for the use: write implies read, delete does not", () => {
    expect(scopeFinding(["write:packages"], "pull", "pull").status).toBe("ok");
    expect(scopeFinding(["read:packages"], "push", "push")).toMatchObject({
      status: "fail",
      detail: expect.stringMatching(/`write:packages` is missing/),
    });
    expect(scopeFinding(["delete:packages", "repo"], "pull", "pull").status).toBe("fail");
    expect(scopeFinding(undefined, "pull", "pull").status).toBe("skip");
  });
});

describe("findings", () => {
  it("fail when one fails, and print one line each with the fix", () => {
    const f = [
      { check: "a", status: "ok" as const, detail: "fine" },
      { check: "b", status: "fail" as const, detail: "broken", fix: "mend it" },
    ];
    expect(failed(f)).toBe(true);
    expect(failed([f[0]!])).toBe(false);
    expect(formatFindings(f)).toBe(
      "ok   a: fine\nFAIL b: broken\n     fix: mend it\ndoctor: 1 failed, 0 warning(s), 1 ok, 0 skipped",
    );
  });
});
