import { describe, expect, it } from "vitest";
import { buildReport, checkService, formatReport, parseProbe } from "../../.dagger/src/core/release/report.js";
import type { ContainerState } from "../../.dagger/src/core/release/health.js";

const PIN = `ghcr.io/acme/api@sha256:${"1".repeat(64)}`;
const OTHER = `ghcr.io/acme/api@sha256:${"2".repeat(64)}`;
const running: ContainerState = {
  service: "api",
  name: "p-api-1",
  state: "running",
  health: "healthy",
  exitCode: 0,
  image: PIN,
};

describe("probes", () => {
  it("parse URL[=STATUS][*RETRIES]", () => {
    expect(parseProbe("http://127.0.0.1:8080/health")).toEqual({
      url: "http://127.0.0.1:8080/health",
      expectStatus: 200,
      retries: 3,
    });
    expect(parseProbe("https://example.test/x?y=1=204*10")).toEqual({
      url: "https://example.test/x?y=1",
      expectStatus: 204,
      retries: 10,
    });
    expect(() => parseProbe("ftp://x")).toThrow(/URL\[=STATUS\]\[\*RETRIES\]/);
  });
});

describe("checkService", () => {
  it("passes a running, healthy container on the pinned digest", () => {
    expect(checkService("api", PIN, running, PIN, [PIN]).ok).toBe(true);
  });
  it("names every problem of a service", () => {
    expect(checkService("api", PIN, undefined, "", []).problem).toBe("no container");
    const bad = checkService("api", PIN, { ...running, health: "unhealthy" }, OTHER, [OTHER]);
    expect(bad.problem).toBe(`health is unhealthy; runs ${OTHER} (not the pinned digest), release pins ${PIN}`);
    expect(checkService("db", "postgres:16", { ...running, service: "db", health: "" }, "postgres:16", []).ok).toBe(
      true,
    );
  });
});

describe("the report", () => {
  it("fails with every problem listed, and renders as text", () => {
    const r = buildReport(
      "r1",
      [checkService("api", PIN, { ...running, state: "exited" }, PIN, [PIN])],
      [{ url: "http://x/", expectStatus: 200, status: 0, attempts: 3, ok: false }],
    );
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      "api: container is exited",
      "probe http://x/: got no answer, expected 200 (3 attempts)",
    ]);
    expect(formatReport(r)).toMatch(/^verify: FAILED {2}release r1\n {2}FAIL api/);
    expect(buildReport(null, [], []).problems).toEqual(["no current release on the server"]);
  });
});
