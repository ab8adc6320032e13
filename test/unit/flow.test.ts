/**
 * The deploy and rollback flow without a server: the real flow and the real
 * targets over a scripted session (fake-session.ts), each outcome checked by
 * what the history says and which commands ran.
 */
import { describe, expect, it } from "vitest";
import { PULL_FAILED_EXIT, checkPullAccess, pullImages } from "../../.dagger/src/core/registry/registry-commands.js";
import { layout, preflightProbe } from "../../.dagger/src/core/server/server-commands.js";
import { switchTo } from "../../.dagger/src/core/release/release-commands.js";
import { type Argv } from "../../.dagger/src/core/shell.js";
import { stackDeploy, swarmProbe } from "../../.dagger/src/core/swarm/swarm-commands.js";
import { deploy, type DeployRequest } from "../../.dagger/src/remote/deploy.js";
import { rollback } from "../../.dagger/src/remote/rollback.js";
import { FakeSession, same, type Script } from "./fake-session.js";

const L = layout("production/gold");
const D = (c: string) => `ghcr.io/acme/gold/api@sha256:${c.repeat(64)}`;
const release = (c: string) => `services:\n  api:\n    image: ${D(c)}\n`;
const PREVIOUS = "20261130T120000.000Z-aaaaaaa";

const isCompose = (argv: Argv, verb: string) => argv[0] === "docker" && argv[1] === "compose" && argv.includes(verb);
const psLine = (health: string) =>
  `${JSON.stringify({ Service: "api", Name: "gold-api-1", State: "running", Health: health, ExitCode: 0, Image: "x" })}\n`;
const healthyServer: Script = (argv) => {
  if (same(argv, preflightProbe(L))) return { stdout: "docker 28.2\ncompose 2.26.1\ndf_kb 9999999\n" };
  if (same(argv, swarmProbe(L))) return { stdout: "docker 28.2\nswarm active true\ndf_kb 9999999\n" };
  if (same(argv, checkPullAccess("", [])))
    return {
      stdout: argv
        .slice(5)
        .map((r) => `ok ${r}`)
        .join("\n"),
    };
  return undefined;
};
/** The scripted server, with `over` answering first. */
const server =
  (over: Script): Script =>
  (argv, stdin) =>
    over(argv, stdin) ?? healthyServer(argv, stdin);

function request(s: FakeSession, over: Partial<DeployRequest> = {}): DeployRequest {
  return {
    ssh: {
      host: "203.0.113.7",
      port: 22,
      user: "deploy",
      hostKey: { kind: "fingerprint", fingerprint: "SHA256:x" },
      privateKey: "",
    },
    dir: L.dir,
    project: "gold",
    lockTimeoutSeconds: 5,
    sha: "b".repeat(40),
    compose: release("b"),
    keepReleases: 5,
    healthTimeoutSeconds: 5,
    by: "the test",
    log: () => {},
    connect: async () => s,
    ...over,
  };
}

/** A server where release PREVIOUS (image a) is current. */
function withPrevious(s: FakeSession): FakeSession {
  s.files.set(L.current, `${PREVIOUS}\n`);
  s.files.set(`${L.releases}/${PREVIOUS}/docker-compose.yml`, release("a"));
  return s;
}

const switches = (s: FakeSession) => s.calls.filter((c) => same(c.argv, switchTo(L, "x"))).map((c) => c.argv[6]);

for (const orchestrator of ["compose", "swarm"] as const) {
  describe(`the deploy flow on the ${orchestrator} target`, () => {
    const refused: Script = (argv) => {
      if (same(argv, pullImages("", [], [])))
        return { code: PULL_FAILED_EXIT, stderr: "Error response from daemon: denied: denied" };
      if (same(argv, checkPullAccess("", []))) return { stdout: `fail ${D("b")} denied: denied` };
      return undefined;
    };

    it("a refused pull records `failed` and never switches", async () => {
      const s = withPrevious(new FakeSession(L, server(refused)));
      const err = await deploy(
        request(s, { orchestrator, registry: { host: "ghcr.io", user: "u", token: "t" } }),
      ).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "REGISTRY_DENIED" });
      expect(s.history()).toEqual([
        expect.objectContaining({
          result: "failed",
          code: "REGISTRY_DENIED",
          reason: expect.stringContaining("nothing running was changed"),
          previous: PREVIOUS,
        }),
      ]);
      expect(switches(s)).toEqual([]);
      expect(
        s.calls.some(
          (c) =>
            isCompose(c.argv, "up") ||
            same(c.argv, stackDeploy(L, { loginHost: "", id: "x", file: "x", project: "gold", prune: true })),
        ),
      ).toBe(false);
    });

    it("a release that fails after the switch brings the previous one back and fails with DEPLOY_ROLLED_BACK", async () => {
      // compose: the new api is unhealthy, the old one healthy again; swarm: stack deploy refuses the new release, then
      // the old one too
      const s = withPrevious(
        new FakeSession(
          L,
          server((argv) => {
            if (isCompose(argv, "ps"))
              return { stdout: psLine(s.files.get(L.current)?.trim() === PREVIOUS ? "healthy" : "unhealthy") };
            if (same(argv, stackDeploy(L, { loginHost: "", id: "x", file: "x", project: "gold", prune: true })))
              return { code: 1, stderr: "failed to update service gold_api: bad" };
            return undefined;
          }),
        ),
      );
      const err = (await deploy(request(s, { orchestrator })).catch((e: unknown) => e)) as Error & { code: string };
      expect(err.code).toBe("DEPLOY_ROLLED_BACK");
      const [record] = s.history();
      expect(record).toMatchObject({
        result: "rolled-back",
        rolledBackTo: PREVIOUS,
        previous: PREVIOUS,
        code: "DEPLOY_ROLLED_BACK",
      });
      expect(switches(s)).toEqual([record!.release, PREVIOUS]);
      if (orchestrator === "compose") {
        expect(err.message).toContain(`rolled back to ${PREVIOUS}, which is healthy and serving`);
        expect(record).toMatchObject({ rollbackHealthy: true });
      } else {
        expect(err.message).toContain(`rolled back to ${PREVIOUS}, which does NOT converge either`);
        expect(record).toMatchObject({ rollbackHealthy: false });
      }
    });

    it("a connection lost during the switch goes up as it is and is not recorded (no one to record it to)", async () => {
      const s = withPrevious(
        new FakeSession(
          L,
          server((argv) =>
            isCompose(argv, "up") ||
            same(argv, stackDeploy(L, { loginHost: "", id: "x", file: "x", project: "gold", prune: true }))
              ? "lost"
              : undefined,
          ),
        ),
      );
      const err = await deploy(request(s, { orchestrator })).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "SSH_CONNECTION_LOST" });
      expect(s.history()).toEqual([]);
    });

    it("a first release that fails has nothing to return to: DEPLOY_FAILED, recorded", async () => {
      const s = new FakeSession(
        L,
        server((argv) => {
          if (isCompose(argv, "ps")) return { stdout: psLine("unhealthy") };
          if (same(argv, stackDeploy(L, { loginHost: "", id: "x", file: "x", project: "gold", prune: true })))
            return { code: 1, stderr: "bad" };
          return undefined;
        }),
      );
      const err = await deploy(request(s, { orchestrator })).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: "DEPLOY_FAILED",
        message: expect.stringContaining(
          orchestrator === "compose"
            ? "is not healthy and there is no previous release"
            : "did not converge and there is no previous release",
        ),
      });
      expect(s.history()).toEqual([expect.objectContaining({ result: "failed", code: "DEPLOY_FAILED" })]);
    });

    it("a preflight failure on a server with a history is recorded too, before any lock", async () => {
      const s = withPrevious(
        new FakeSession(
          L,
          server((argv) =>
            same(argv, preflightProbe(L)) || same(argv, swarmProbe(L))
              ? { stdout: "docker_error permission denied while trying to connect to the Docker daemon socket\n" }
              : undefined,
          ),
        ),
      );
      const err = await deploy(request(s, { orchestrator })).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "DOCKER_UNREACHABLE" });
      expect(s.history()).toEqual([
        expect.objectContaining({
          result: "failed",
          code: "DOCKER_UNREACHABLE",
          reason: expect.stringContaining("nothing running was changed"),
        }),
      ]);
      expect(s.calls.some((c) => c.argv.includes("flock"))).toBe(false);
    });
  });
}

describe("the rollback flow", () => {
  it("on one VPS: back to the previous release; its images all here, so no login; recorded ok", async () => {
    const NEW = "20261130T130000.000Z-bbbbbbb";
    const s = withPrevious(
      new FakeSession(
        L,
        server((argv) => {
          if (argv[0] === "ls") return { stdout: `${PREVIOUS}\n${NEW}\n` };
          return isCompose(argv, "ps") ? { stdout: psLine("healthy") } : undefined;
        }),
      ),
    );
    s.files.set(`${L.releases}/${NEW}/docker-compose.yml`, release("b"));
    s.files.set(L.current, `${NEW}\n`);
    s.files.set(
      L.history,
      `${JSON.stringify({ release: PREVIOUS, action: "deploy", result: "ok", sha: "a".repeat(40) })}\n${JSON.stringify({ release: NEW, action: "deploy", result: "ok" })}\n`,
    );
    const r = await rollback({ ...request(s), registry: { host: "", user: "u", token: "t" } });
    expect(r).toMatchObject({ release: PREVIOUS, previous: NEW });
    expect(switches(s)).toEqual([PREVIOUS]);
    // the login goes to the release's own registry (ghcr.io here), and the script logs in only when it must pull
    const pull = s.calls.find((c) => same(c.argv, pullImages("", [], [])))!;
    expect(pull.argv[4]).toBe("ghcr.io");
    expect(s.history().at(-1)).toMatchObject({
      action: "rollback",
      result: "ok",
      release: PREVIOUS,
      sha: "a".repeat(40),
    });
  });
});
