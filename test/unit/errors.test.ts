import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import {
  ERROR_CODES,
  EXIT_CLASSES,
  PipelineError,
  exitCodeOf,
  failureJson,
  isPipelineError,
  tail,
} from "../../.dagger/src/core/errors.js";
import { classifyRegistryOutput, registryError } from "../../.dagger/src/core/registry/registry-errors.js";

describe("PipelineError", () => {
  it("carries code, hint and cause, and describes itself on one block", () => {
    const cause = new Error("ECONNREFUSED");
    const e = new PipelineError("SSH_UNREACHABLE", "cannot reach vps", "check the port", { cause });
    expect(e).toBeInstanceOf(Error);
    expect([e.code, e.hint, e.cause]).toEqual(["SSH_UNREACHABLE", "check the port", cause]);
    expect(e.describe()).toBe("SSH_UNREACHABLE: cannot reach vps\n  hint: check the port");
    expect(isPipelineError(e, "SSH_UNREACHABLE")).toBe(true);
    expect(isPipelineError(e, "SSH_FAILED")).toBe(false);
    expect(isPipelineError(cause)).toBe(false);
  });
});

describe("exit codes and JSON failures", () => {
  it("puts every error code in exactly one class, each class its own exit code", () => {
    const classed = EXIT_CLASSES.flatMap((c) => [...c.codes]);
    expect([...classed].sort()).toEqual([...ERROR_CODES].sort());
    expect(new Set(EXIT_CLASSES.map((c) => c.exit)).size).toBe(EXIT_CLASSES.length);
    expect([exitCodeOf("INVALID_INPUT"), exitCodeOf("SSH_AUTH_FAILED"), exitCodeOf("DEPLOY_ROLLED_BACK")]).toEqual([
      2, 5, 8,
    ]);
    expect(exitCodeOf("INTERNAL")).toBe(1);
  });

  it("gives a failure as one JSON object: code, exit code, message, hint, and the history line when there is one", () => {
    const e = new PipelineError(
      "DEPLOY_ROLLED_BACK",
      "release r2 failed (api unhealthy); rolled back to r1",
      "read api's logs",
    );
    expect(JSON.parse(failureJson(e))).toEqual({
      error: {
        code: "DEPLOY_ROLLED_BACK",
        exitCode: 8,
        message: "release r2 failed (api unhealthy); rolled back to r1",
        hint: "read api's logs",
      },
    });
    e.history = { release: "r2", result: "rolled-back", rolledBackTo: "r1" };
    expect(JSON.parse(failureJson(e)).error.history).toEqual({
      release: "r2",
      result: "rolled-back",
      rolledBackTo: "r1",
    });
    expect(failureJson(e).split("\n")).toHaveLength(1);
  });

  it("documents the exit codes in docs/troubleshooting.md as the code has them", () => {
    const readme = readFileSync("docs/troubleshooting.md", "utf8");
    const table = readme.slice(readme.indexOf("**Exit codes.**"), readme.indexOf("| you see | meaning | fix |"));
    for (const c of EXIT_CLASSES) {
      const row = table.split("\n").find((l) => l.startsWith(`| ${c.exit} |`));
      expect(row, `exit ${c.exit}`).toBeDefined();
      expect([...row!.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1]).sort(), `exit ${c.exit}`).toEqual(
        [...c.codes].sort(),
      );
    }
  });
});

describe("tail", () => {
  it("keeps the last lines of a command's output", () => {
    expect(tail("a\nb\nc\n\n", 2)).toBe("b\nc");
    expect(tail("only")).toBe("only");
  });
});

describe("registry failures", () => {
  it("tell 401 (bad credentials) from 403 (not allowed), from what docker prints", () => {
    expect(classifyRegistryOutput('Error response from daemon: Get "https://ghcr.io/v2/": denied: denied')).toBe(
      "denied",
    );
    expect(
      classifyRegistryOutput(
        "Error response from daemon: pull access denied for ghcr.io/acme/api, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
      ),
    ).toBe("denied");
    expect(
      classifyRegistryOutput(
        'Error response from daemon: Get "https://10.200.0.1:5443/v2/": unauthorized: authentication required',
      ),
    ).toBe("unauthorized");
    expect(classifyRegistryOutput("manifest unknown")).toBe("not-found");
    expect(classifyRegistryOutput("dial tcp: lookup ghcr.io: no such host")).toBe("unreachable");
    expect(classifyRegistryOutput("something else")).toBe("other");
  });

  it("give the same codes and hints as the registry client", () => {
    expect(registryError("pull", "ghcr.io", "unauthorized: authentication required")).toMatchObject({
      code: "REGISTRY_UNAUTHORIZED",
      hint: expect.stringMatching(/expires when its job ends/),
    });
    expect(registryError("pull", "ghcr.io", "denied: denied")).toMatchObject({
      code: "REGISTRY_DENIED",
      hint: expect.stringMatching(/read:packages.*package's settings/),
    });
    expect(registryError("push", "ghcr.io", "unauthorized: insufficient_scope")).toMatchObject({
      code: "REGISTRY_INSUFFICIENT_SCOPE",
      hint: expect.stringMatching(/write:packages.*fine-grained tokens are not supported/),
    });
    expect(registryError("pull", "ghcr.io", "dial tcp: lookup ghcr.io: no such host")).toMatchObject({
      code: "REGISTRY_UNREACHABLE",
    });
    expect(registryError("push", "ghcr.io", "weird")).toMatchObject({ code: "REGISTRY_FAILED" });
    expect(registryError("pull", "ghcr.io", "denied: denied").message).toContain("denied: denied");
  });
});
