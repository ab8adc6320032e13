import { describe, expect, it } from "vitest";
import { assessHealth, parseComposePs, type ContainerState } from "../../.dagger/src/core/release/health.js";

/** compose ps --format json as compose 2.26 prints it: one object per line. */
const RECORDED = [
  '{"Command":"\\"httpd -f -p 8000 -h /www\\"","CreatedAt":"2026-11-25 21:30:22 +0000 UTC","ExitCode":0,"Health":"healthy","ID":"3f1","Image":"10.200.0.1:5443/acme/gold-tracker/api@sha256:c1ce","Labels":"","Name":"gold-api-1","Project":"gold","Service":"api","State":"running","Status":"Up 3 seconds (healthy)"}',
  '{"Command":"\\"httpd\\"","ExitCode":0,"Health":"starting","ID":"9a2","Image":"web@sha256:5746","Name":"gold-web-1","Project":"gold","Service":"web","State":"running","Status":"Up 1 second (health: starting)"}',
].join("\n");

function c(service: string, over: Partial<ContainerState> = {}): ContainerState {
  return { service, name: `p-${service}-1`, state: "running", health: "", exitCode: 0, image: "x", ...over };
}

describe("parseComposePs", () => {
  it("reads compose's JSON lines and the older JSON array", () => {
    const rows = parseComposePs(RECORDED);
    expect(rows.map((r) => [r.service, r.state, r.health])).toEqual([
      ["api", "running", "healthy"],
      ["web", "running", "starting"],
    ]);
    expect(parseComposePs(`[${RECORDED.split("\n").join(",")}]`)).toEqual(rows);
    expect(parseComposePs("\n")).toEqual([]);
  });
});

const shape = (long: string[], once: string[] = [], optional: string[] = []) => ({ long, once, optional });

describe("assessHealth", () => {
  it("is ok when every service runs and is healthy where it has a check", () => {
    expect(assessHealth(shape(["api", "web"]), [c("api", { health: "healthy" }), c("web")])).toEqual({ status: "ok" });
  });
  it("waits for starting checks, restarts and missing containers", () => {
    expect(
      assessHealth(shape(["api", "web", "db"]), [c("api", { health: "starting" }), c("web", { state: "restarting" })]),
    ).toEqual({
      status: "waiting",
      pending: ["api: health starting", "web: restarting", "db: no container yet"],
    });
  });
  it("fails at once on unhealthy or exited containers, naming them", () => {
    const v = assessHealth(shape(["api", "web"]), [
      c("api", { health: "unhealthy" }),
      c("web", { state: "exited", exitCode: 3 }),
    ]);
    expect(v).toEqual({
      status: "failed",
      reasons: [
        "api: container p-api-1 is unhealthy (its healthcheck keeps failing)",
        "web: container p-web-1 exited with code 3",
      ],
    });
  });
  it("counts a run-once service that exited 0 as done, and a non-zero exit as a failure", () => {
    expect(
      assessHealth(shape(["web"], ["migrate"]), [c("web"), c("migrate", { state: "exited", exitCode: 0 })]),
    ).toEqual({ status: "ok" });
    expect(assessHealth(shape(["web"], ["migrate"]), [c("web"), c("migrate")])).toEqual({
      status: "waiting",
      pending: ["migrate: running (runs once, must exit 0)"],
    });
    expect(
      assessHealth(shape(["web"], ["migrate"]), [c("web"), c("migrate", { state: "exited", exitCode: 2 })]),
    ).toMatchObject({ status: "failed", reasons: ["migrate: run-once container p-migrate-1 exited with code 2"] });
  });
  it("does not wait for a service under a profile that did not start, but judges one that did", () => {
    expect(assessHealth(shape(["web"], [], ["debug"]), [c("web")])).toEqual({ status: "ok" });
    expect(assessHealth(shape(["web"], [], ["debug"]), [c("web"), c("debug", { health: "unhealthy" })])).toMatchObject({
      status: "failed",
    });
  });
  it("ignores containers of services the release does not have", () => {
    expect(assessHealth(shape(["api"]), [c("api"), c("old", { state: "exited" })])).toEqual({ status: "ok" });
  });
});

describe("one-shot containers as compose runs them (issue 32, case 7)", () => {
  it("an init container that compose does not restart is done when it exits 0, whether or not something waits for it", async () => {
    const { releaseShape } = await import("../../.dagger/src/core/compose/compose.js");
    const shape = releaseShape(
      [
        "services:",
        "  init-perms: { image: busybox, command: chown -R 1000 /data, restart: 'no' }",
        "  seed: { image: busybox }",
        "  api: { image: api, restart: unless-stopped }",
        "",
      ].join("\n"),
    );
    expect(shape.mayExit).toEqual(["init-perms", "seed"]);
    const exited = (service: string, exitCode: number) => c(service, { state: "exited", exitCode });
    expect(assessHealth(shape, [exited("init-perms", 0), exited("seed", 0), c("api")])).toEqual({ status: "ok" });
    // a failure is one still; a service compose restarts has no business exiting
    expect(assessHealth(shape, [exited("init-perms", 1), exited("seed", 0), c("api")]).status).toBe("failed");
    expect(assessHealth(shape, [exited("init-perms", 0), exited("seed", 0), exited("api", 0)]).status).toBe("failed");
    // and one that keeps running is as good as before
    expect(assessHealth(shape, [c("init-perms"), c("seed"), c("api")])).toEqual({ status: "ok" });
  });
});
