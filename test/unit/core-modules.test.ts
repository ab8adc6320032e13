/** The core modules that had no tests of their own: each decision checked on the cases that matter. */
import { describe, expect, it } from "vitest";
import {
  parseServiceContainers,
  planRollover,
  type ServiceContainer,
} from "../../.dagger/src/core/edge/edge-commands.js";
import { envExports, envValues } from "../../.dagger/src/core/compose/env-file.js";
import { parseServiceExtension } from "../../.dagger/src/core/compose/extension.js";
import { classifyRegistryOutput, pullError, registryError } from "../../.dagger/src/core/registry/registry-errors.js";
import { earlyFailureRecord, rollbackRecord, type HistoryRecord } from "../../.dagger/src/core/release/release.js";
import { envFileValue, passphraseValue, tokenValue } from "../../.dagger/src/core/secret-values.js";
import { parseSwarmProbe } from "../../.dagger/src/core/swarm/swarm-commands.js";
import { isModuleObject, localObjectName, shapeApi } from "../../.dagger/src/core/ci/workflow.js";

const c = (name: string, o: Partial<ServiceContainer> = {}): ServiceContainer => ({
  name,
  state: "running",
  hash: "h1",
  publishes: false,
  service: "web",
  ...o,
});

describe("edge-commands: the rollover plan and the container list", () => {
  it("changes nothing when every container already runs the release's definition", () => {
    expect(planRollover([c("web-1"), c("web-2")], "h1", 2)).toEqual({ kind: "in-place", current: ["web-1", "web-2"] });
  });

  it("starts new containers beside the old ones, drains the old; one that publishes the port itself gives it up first", () => {
    expect(planRollover([c("web-1", { hash: "h0" })], "h1", 2)).toEqual({
      kind: "beside",
      migrating: [],
      leaving: ["web-1"],
      scaleTo: 3,
    });
    expect(planRollover([c("web-1", { publishes: true })], "h1", 1)).toEqual({
      kind: "beside",
      migrating: ["web-1"],
      leaving: [],
      scaleTo: 2,
    });
    expect(planRollover([c("web-1", { state: "exited" })], "h1", 1)).toMatchObject({
      kind: "beside",
      leaving: ["web-1"],
    });
    expect(planRollover([], "h1", 1)).toEqual({ kind: "beside", migrating: [], leaving: [], scaleTo: 1 });
  });

  it("reads docker ps's tab-separated lines", () => {
    expect(
      parseServiceContainers(
        "gold-web-1\trunning\tabc\t0.0.0.0:8080->8000/tcp\tweb\ngold-api-1\texited\tdef\t\tapi\n\n",
      ),
    ).toEqual([
      { name: "gold-web-1", state: "running", hash: "abc", publishes: true, service: "web" },
      { name: "gold-api-1", state: "exited", hash: "def", publishes: false, service: "api" },
    ]);
  });
});

describe("env-file: values as compose reads them, exports as the shell reads them", () => {
  it("unquotes, unescapes and cuts comments; leaves out keys that are no shell name", () => {
    expect([...envValues("A=\"x\\ny\" # c\nB='a # b'\nC=plain # comment\nexport D=1\n")]).toEqual([
      ["A", "x\ny"],
      ["B", "a # b"],
      ["C", "plain"],
      ["D", "1"],
    ]);
    expect(envExports("A=it's\nbad.key=1\n")).toBe("export A='it'\\''s'\n");
  });
});

describe("extension: x-vps-pipeline", () => {
  it("names a misspelt key with its path, and refuses job and http together", () => {
    expect(parseServiceExtension("web", { jobb: true }).problems.join()).toMatch(/services\.web\.x-vps-pipeline/);
    expect(parseServiceExtension("web", { job: true, http: { port: 80 } }).problems.length).toBeGreaterThan(0);
    expect(parseServiceExtension("m", { job: true })).toMatchObject({
      job: { service: "m", onRollback: false },
      problems: [],
    });
  });
});

describe("registry-errors: what docker printed, and for which registry", () => {
  it("tells a refusal from missing credentials, a certificate and an unreachable host", () => {
    expect(classifyRegistryOutput("denied: permission_denied: write_package")).toBe("denied");
    expect(classifyRegistryOutput("toomanyrequests: rate limit")).toBe("other");
    expect(registryError("pull", "ghcr.io", "dial tcp: lookup ghcr.io: no such host")).toMatchObject({
      code: "REGISTRY_UNREACHABLE",
    });
    expect(registryError("push", "ghcr.io", "unauthorized: authentication required")).toMatchObject({
      code: "REGISTRY_UNAUTHORIZED",
      hint: expect.stringContaining("write:packages"),
    });
  });
});

describe("registry-errors: a failed pull is explained by the registry the image is on", () => {
  it("a typo in a Docker Hub image is a name to check there, not a GHCR token", () => {
    const e = pullError(
      "postgress:16",
      "Error response from daemon: pull access denied for postgress, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
      "ghcr.io",
    );
    expect(e).toMatchObject({
      code: "REGISTRY_NOT_FOUND",
      message: expect.stringContaining("docker.io has no image postgress:16"),
      hint: expect.stringContaining("a typo?"),
    });
    expect(e.message + e.hint).not.toMatch(/read:packages|ghcr\.io answered/);
    expect(e.hint).toContain("the pull token is for ghcr.io only");
  });

  it("Docker Hub's rate limit is named as such", () => {
    expect(
      pullError("redis:7", "toomanyrequests: You have reached your unauthenticated pull rate limit.", "ghcr.io"),
    ).toMatchObject({
      code: "REGISTRY_DENIED",
      message: expect.stringContaining("docker.io refused to pull redis:7: rate limit"),
    });
  });

  it("an image on the token's own registry keeps the token's diagnosis", () => {
    expect(pullError("ghcr.io/acme/api@sha256:" + "1".repeat(64), "denied: denied", "ghcr.io")).toMatchObject({
      code: "REGISTRY_DENIED",
      hint: expect.stringContaining("read:packages"),
    });
  });
});

describe("release: the records of failures and rollbacks", () => {
  it("a failure before the lock names its code and says nothing changed", () => {
    const r = earlyFailureRecord({
      now: new Date("2026-11-30T12:00:00Z"),
      sha: "abcdef1234",
      by: "ci",
      code: "LOCK_BUSY",
      message: "another deploy holds the lock\nmore",
      hint: "wait",
    });
    expect(r).toMatchObject({
      release: "20261130T120000.000Z-abcdef1",
      result: "failed",
      code: "LOCK_BUSY",
      reason: "LOCK_BUSY: another deploy holds the lock (stopped before the switch; nothing running was changed)",
      images: {},
    });
  });

  it("a rollback takes the target's commit from its deploy record, and its failure's code", () => {
    const history = [{ release: "r1", action: "deploy", sha: "a".repeat(40) }] as HistoryRecord[];
    expect(
      rollbackRecord({
        target: "r1",
        current: "r2",
        history,
        by: "me",
        images: {},
        health: { ok: true },
        durations: {},
      }),
    ).toMatchObject({ action: "rollback", result: "ok", sha: "a".repeat(40), previous: "r2" });
    expect(
      rollbackRecord({
        target: "20261130T120000.000Z-bbbbbbb",
        history: [],
        by: "me",
        images: {},
        health: { ok: false, reasons: ["x"] },
        durations: {},
        failure: { code: "ROLLBACK_FAILED", hint: "h" },
      }),
    ).toMatchObject({ result: "failed", sha: "bbbbbbb", reason: "x", code: "ROLLBACK_FAILED" });
  });
});

describe("secret-values: what a secret's text means by kind", () => {
  it("a token loses the newline of file: and cmd:, and must be one word", () => {
    expect(tokenValue("ghp_abc\n", "pullToken")).toBe("ghp_abc");
    expect(tokenValue("  ghp_abc\r\n", "pullToken")).toBe("ghp_abc");
    expect(() => tokenValue("\n", "pullToken")).toThrow(/pullToken: the secret is empty/);
    expect(() => tokenValue("user\nghp_abc\n", "registryToken")).toThrow(/more than one word or line/);
  });

  it("a passphrase keeps its spaces, loses only line breaks; a .env is never empty, and used as given", () => {
    expect(passphraseValue("my pass \n")).toBe("my pass ");
    expect(passphraseValue("\r\nx\r\n")).toBe("x");
    expect(envFileValue("A=1\n")).toBe("A=1\n");
    expect(() => envFileValue(" \n\t")).toThrow(/envFile: the production .env secret is empty; nothing was uploaded/);
  });

  it("never puts the value in the message", () => {
    const err = (() => {
      try {
        tokenValue("ghp_secret value", "pullToken");
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message).not.toContain("ghp_secret");
  });
});

describe("swarm-commands: the manager's probe", () => {
  it("reads the swarm state and whether the host controls it", () => {
    expect(parseSwarmProbe("docker 28.2\nswarm active true\ndf_kb 100\n")).toEqual({
      docker: "28.2",
      swarm: "active",
      manager: true,
      freeKb: 100,
    });
    expect(parseSwarmProbe("docker 28.2\nswarm active false\n")).toMatchObject({ swarm: "active", manager: false });
    expect(parseSwarmProbe("docker_error denied\nswarm \n")).toMatchObject({ dockerError: "denied", manager: false });
  });
});

describe("workflow: the module's objects among every type definition the engine lists", () => {
  it("reads an object's name only for objects: enums, inputs, scalars, interfaces and nameless ones are not ours", () => {
    const ours = (kind: string, name?: string | null) => isModuleObject({ kind, name }, "VpsPipeline", ["Vps"]);
    expect(ours("OBJECT_KIND", "VpsPipeline")).toBe(true);
    expect(ours("OBJECT_KIND", "VpsPipelineVps")).toBe(true);
    expect(ours("OBJECT_KIND", "Vps")).toBe(true); // the offline introspector's name
    expect(ours("OBJECT_KIND", "Container")).toBe(false);
    expect(ours("OBJECT_KIND", null)).toBe(false); // what dagger check crashed on
    for (const kind of ["ENUM_KIND", "INPUT_KIND", "SCALAR_KIND", "INTERFACE_KIND", "LIST_KIND"]) {
      expect(ours(kind, null)).toBe(false);
      expect(ours(kind, "VpsPipelineFormat")).toBe(false);
    }
  });
});

describe("workflow: the module's objects however they are named", () => {
  it("strips the module's prefix the engine adds, keeps the main object's name", () => {
    expect(localObjectName("VpsPipelineVps", "VpsPipeline")).toBe("Vps");
    expect(localObjectName("VpsPipeline", "VpsPipeline")).toBe("VpsPipeline");
    expect(localObjectName("Vps", "VpsPipeline")).toBe("Vps");
    const api = shapeApi(
      [
        {
          name: "VpsPipeline",
          functions: [
            { name: "vps", args: ["host"], required: ["host"], returns: "VpsPipelineVps" },
            { name: "build", args: [], required: [], returns: "Container" },
          ],
          ctor: { args: ["source"], required: [] },
        },
        { name: "VpsPipelineVps", functions: [{ name: "ship", args: [], required: [] }] },
      ],
      "VpsPipeline",
    );
    expect(api.objects.VpsPipeline?.vps?.returns).toBe("Vps");
    expect(api.objects.VpsPipeline?.build?.returns).toBe("core:Container"); // a core type: the check stops there
    expect(Object.keys(api.objects.Vps ?? {})).toEqual(["ship"]);
    expect(api.constructor.args).toEqual(["source"]);
  });
});
