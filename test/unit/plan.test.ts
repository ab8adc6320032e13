import { describe, expect, it } from "vitest";
import { diffEnv, envEntries } from "../../.dagger/src/core/compose/env-file.js";
import { formatPlan, markdownPlan, planRelease } from "../../.dagger/src/core/release/plan.js";
import { rollbackTarget, type HistoryRecord } from "../../.dagger/src/core/release/release.js";

const A = "ghcr.io/a/api@sha256:" + "a".repeat(64);
const B = "ghcr.io/a/api@sha256:" + "b".repeat(64);
const preflight = { docker: "28.2", compose: "2.26.1", freeMiB: 9000 };

describe("plan", () => {
  it("lists the edge routes the release will have, on an empty server too (ports as the .env makes them, hostnames)", () => {
    const newCompose = `services:\n  web:\n    image: "${A}"\n    labels: { vps-pipeline.edge.published: "\${WEB_PORT:-8080}:8000" }\n    x-vps-pipeline: { http: { port: 8000, health: /health, host: gold.example.com } }\n  api: { image: "${B}" }\n`;
    const p = planRelease({ current: null, preflight, currentCompose: "", newCompose, newEnv: "WEB_PORT=18990\n" });
    expect(p.routes).toEqual(["web: 18990:8000, https://gold.example.com → :8000/health"]);
    expect(formatPlan(p)).toContain("edge routes: web: 18990:8000, https://gold.example.com → :8000/health");
    // the server's .env when the deploy keeps it; the default without one
    expect(
      planRelease({ current: "r1", preflight, currentCompose: "", newCompose, currentEnv: "WEB_PORT=9000" }).routes[0],
    ).toMatch(/^web: 9000:8000,/);
    expect(planRelease({ current: null, preflight, currentCompose: "", newCompose }).routes[0]).toMatch(
      /^web: 8080:8000,/,
    );
    // a value that is no port is never shown
    expect(
      planRelease({ current: null, preflight, currentCompose: "", newCompose, newEnv: "WEB_PORT=s3cret value" })
        .routes[0],
    ).toMatch(/^web: \$\{WEB_PORT:-8080\}:8000,/);
    expect(markdownPlan(p)).toContain("- edge routes: `web:");
    expect(
      planRelease({ current: null, preflight, currentCompose: "", newCompose: `services:\n  api: { image: "${B}" }\n` })
        .routes,
    ).toEqual([]);
  });

  it("names services added, removed and changed with old → new digests, and .env keys without values", () => {
    const p = planRelease({
      current: "r1",
      preflight,
      currentCompose: `services:\n  api: { image: "${A}" }\n  old: { image: redis:7 }\n`,
      newCompose: `services:\n  api: { image: "${B}" }\n  db: { image: postgres:16 }\n  migrate: { image: "${B}", x-vps-pipeline: { job: true }, profiles: [vps-pipeline-jobs] }\n`,
      currentEnv: "A=1\nSECRET=old-secret-value\n# c\n",
      newEnv: "export A=1\nSECRET=new-secret-value\nNEW=x\n",
    });
    expect(p.services).toEqual([
      { service: "api", change: "changed", from: A, to: B },
      { service: "db", change: "added", to: "postgres:16" },
      { service: "migrate", change: "added", to: B },
      { service: "old", change: "removed", from: "redis:7" },
    ]);
    expect(p.env).toEqual({ added: ["NEW"], removed: [], changed: ["SECRET"] });
    expect(p.jobs).toEqual(["migrate"]);
    expect(p.noop).toBe(false);
    for (const text of [formatPlan(p), markdownPlan(p), JSON.stringify(p)]) {
      expect(text).not.toContain("secret-value");
      expect(text).toContain("SECRET");
    }
    expect(formatPlan(p)).toMatch(
      /~ api {10}ghcr\.io\/a\/api@sha256:aaaaaaaaaaaa… → ghcr\.io\/a\/api@sha256:bbbbbbbbbbbb…/,
    );
  });

  it("says when nothing would change, and that a server without a release gets everything added", () => {
    const same = `services:\n  api: { image: "${A}" }\n`;
    expect(planRelease({ current: "r1", currentCompose: same, newCompose: same, preflight }).noop).toBe(true);
    const first = planRelease({ current: null, currentCompose: "", newCompose: same, preflight });
    expect(first.services).toEqual([{ service: "api", change: "added", to: A }]);
    expect(formatPlan(first)).toMatch(/current release: none/);
    expect(formatPlan(first)).toMatch(/\.env: none given, the server's is kept/);
  });

  it("reads .env files as compose does", () => {
    expect([...envEntries("# x\nA=1\n export B = 2 \nC=\nnot a line\n").entries()]).toEqual([
      ["A", "1"],
      ["B", "2"],
      ["C", ""],
    ]);
    expect(diffEnv("A=1\nB=2\n", "B=3\nC=4\n")).toEqual({ added: ["C"], removed: ["A"], changed: ["B"] });
  });
});

describe("rollbackTarget", () => {
  const h = (
    release: string,
    result: HistoryRecord["result"],
    action: HistoryRecord["action"] = "deploy",
  ): HistoryRecord => ({ release, result, action, at: "", by: "", sha: "", images: {}, durations: {} });
  const ids = [
    "20260101T000000.000Z-aaaaaaa",
    "20260102T000000.000Z-bbbbbbb",
    "20260103T000000.000Z-ccccccc",
    "20260104T000000.000Z-ddddddd",
  ];
  const [a, b, c, d] = ids as [string, string, string, string];

  it("goes to the newest good release older than the current one: A → B → C, rollback, rollback lands on A", () => {
    const history = [h(a, "ok"), h(b, "ok"), h(c, "ok")];
    expect(rollbackTarget(history, [a, b, c], c)).toBe(b);
    expect(rollbackTarget([...history, h(b, "ok", "rollback")], [a, b, c], b)).toBe(a);
    expect(rollbackTarget([...history, h(b, "ok", "rollback"), h(a, "ok", "rollback")], [a, b, c], a)).toBeUndefined();
  });

  it("skips releases that failed or are no longer kept", () => {
    expect(rollbackTarget([h(a, "ok"), h(b, "rolled-back"), h(c, "failed"), h(d, "ok")], [a, b, c, d], d)).toBe(a);
    expect(rollbackTarget([h(a, "ok"), h(b, "ok"), h(c, "ok")], [b, c], c)).toBe(b);
    expect(rollbackTarget([h(a, "ok"), h(b, "ok")], [b], b)).toBeUndefined();
  });
});
