/**
 * Day two, the pure part: log lines of both targets read and merged in time
 * order with the cap, and a one-off's command as the container gets it.
 */
import { describe, expect, it } from "vitest";
import { composeLogs, formatLogs, mergeLogs, parseLogLine } from "../../.dagger/src/core/day-two/logs.js";
import { oneOffArgv, oneOffName } from "../../.dagger/src/core/day-two/one-off.js";
import { BoundedOutput, capNewest } from "../../.dagger/src/core/day-two/output.js";
import { oneOffOptions } from "../../.dagger/src/inputs/inputs.js";

describe("logs", () => {
  it("reads a container's line and a swarm task's (its time before or after the bar)", () => {
    expect(parseLogLine("gold-api-1 2026-12-01T08:00:00.5Z GET /health 200")).toEqual({
      at: "2026-12-01T08:00:00.500000000Z",
      source: "gold-api-1",
      text: "GET /health 200",
    });
    expect(parseLogLine("2026-12-01T08:00:01.000000000Z gold_api.2.x7k2@swarm-2    | started")).toEqual({
      at: "2026-12-01T08:00:01.000000000Z",
      source: "gold_api.2.x7k2@swarm-2",
      text: "started",
    });
    expect(parseLogLine("gold_api.1.abc@swarm-1    | 2026-12-01T08:00:02.1Z a | b")).toEqual({
      at: "2026-12-01T08:00:02.100000000Z",
      source: "gold_api.1.abc@swarm-1",
      text: "a | b",
    });
    expect(parseLogLine("Error response from daemon: no such container")).toBeUndefined();
  });

  it("merges by time (a shorter fraction is not earlier for it), keeps file order on ties, tails all together, caps keeping the newest", () => {
    const out = [
      "b 2026-12-01T08:00:00.2Z two",
      "a 2026-12-01T08:00:00.15Z one",
      "a 2026-12-01T08:00:00.3Z three",
      "b 2026-12-01T08:00:00.3Z four",
    ].join("\n");
    expect(mergeLogs(out, { tail: 10, maxBytes: 1 << 20 }).lines.map((l) => l.text)).toEqual([
      "one",
      "two",
      "three",
      "four",
    ]);
    expect(mergeLogs(out, { tail: 2, maxBytes: 1 << 20 }).lines.map((l) => l.text)).toEqual(["three", "four"]);
    const capped = mergeLogs(out, { tail: 10, maxBytes: 90 });
    expect([capped.cut, capped.lines.map((l) => l.text)]).toEqual([2, ["three", "four"]]);
    expect(formatLogs(capped, 90).split("\n")[0]).toBe(
      "(2 older line(s) not shown: the output is capped at 90 bytes; narrow it with --since, --tail or --service)",
    );
  });

  it("the project, services and options are arguments of the script, never part of it", () => {
    const argv = composeLogs("gold", { services: ["api", "web"], since: "10m", tail: 50, maxBytes: 4096 });
    expect(argv.slice(3)).toEqual(["sh", "gold", "4096", "10m", "50", "api", "web"]);
  });
});

describe("run", () => {
  it("one string runs in sh -c, several words are the argv; the container's name says what it is", () => {
    expect(oneOffArgv(["./manage.py migrate && echo ok"])).toEqual(["sh", "-c", "./manage.py migrate && echo ok"]);
    expect(oneOffArgv(["./manage.py", "migrate"])).toEqual(["./manage.py", "migrate"]);
    expect(oneOffName("gold", "api", new Date("2026-12-01T08:09:10.123Z"))).toBe("gold-run-api-20261201080910123");
    expect(oneOffArgv(["/opt/my tool"], false)).toEqual(["/opt/my tool"]);
  });

  it("--cmd is one shell line whatever it holds; --argv is a JSON array of words; exactly one of them", () => {
    const base = { service: "db", cmd: "", argv: "", timeoutSeconds: 60, maxBytes: 1048576 };
    expect(oneOffOptions({ ...base, cmd: "psql -c 'select a, b'" })).toMatchObject({
      command: ["psql -c 'select a, b'"],
      shell: true,
    });
    expect(oneOffOptions({ ...base, argv: '["psql","-c","select a, b"]' })).toMatchObject({
      command: ["psql", "-c", "select a, b"],
      shell: false,
    });
    expect(() => oneOffOptions(base)).toThrow(/run\.cmd: give the command to run/);
    expect(() => oneOffOptions({ ...base, cmd: "a", argv: '["a"]' })).toThrow(/not both/);
    expect(() => oneOffOptions({ ...base, argv: "psql -c x" })).toThrow(/run\.argv: must be a JSON array of strings/);
    expect(() => oneOffOptions({ ...base, argv: "[]" })).toThrow(/at least one word/);
    expect(() => oneOffOptions({ ...base, cmd: "x", maxBytes: 10 })).toThrow(/run\.maxBytes: must be at least 1024/);
  });
});

describe("bounded output", () => {
  it("keeps everything under the cap, and the newest whole lines over it, saying first how much was cut", () => {
    expect(capNewest("a\nb\n", 1024)).toBe("a\nb\n");
    const text = Array.from({ length: 1000 }, (_, i) => `line ${i}`).join("\n") + "\n";
    const capped = capNewest(text, 1024);
    const [head, ...rest] = capped.split("\n");
    expect(head).toMatch(/^\(\d+ older byte\(s\) of output not shown: the output is capped at 1024 bytes/);
    expect(rest.at(-2)).toBe("line 999");
    expect(rest[0]).toMatch(/^line \d+$/);
    expect(Buffer.byteLength(rest.join("\n"))).toBeLessThanOrEqual(1024);
    const cut = Number(/^\((\d+)/.exec(head!)![1]);
    expect(cut + Buffer.byteLength(rest.join("\n"))).toBe(Buffer.byteLength(text));
  });

  it("prints lines live as chunks come (split anywhere), stops printing past the budget, keeps the newest for the end", () => {
    const printed: string[] = [];
    const o = new BoundedOutput(2048, (l) => printed.push(l), "job migrate | ");
    o.push("first li");
    expect(printed).toEqual([]);
    o.push("ne\nsecond\nthi");
    expect(printed).toEqual(["job migrate | first line", "job migrate | second"]);
    for (let i = 0; i < 20_000; i++) o.push(`row ${i} é\n`);
    o.push("last, unterminated");
    const end = o.end();
    expect(printed.length).toBeLessThan(200);
    expect(printed.at(-1)).toMatch(/live output stops here: more than 2048 bytes/);
    expect(end.endsWith("row 19999 é\nlast, unterminated")).toBe(true);
    expect(end.split("\n")[0]).toMatch(/older byte\(s\) of output not shown/);
    expect(Buffer.byteLength(end.slice(end.indexOf("\n") + 1))).toBeLessThanOrEqual(2048);
    expect(o.size).toBeGreaterThan(200_000);
  });

  it("without a printer it only keeps; a multi-byte character is never cut in two", () => {
    const o = new BoundedOutput(1024);
    o.push("é".repeat(5000));
    const end = o.end();
    expect(end).not.toContain("\uFFFD");
    expect(end.split("\n")[1]).toMatch(/^é+$/);
  });
});

describe("notifications", () => {
  it("a success, an automatic rollback and a failure, as a chat shows them; never more than the facts", async () => {
    const { notification, retryable } = await import("../../.dagger/src/core/day-two/notification.js");
    const now = new Date("2026-12-01T08:00:00Z");
    const ok = notification({
      project: "gold",
      action: "deploy",
      by: "octocat",
      now,
      outcome: {
        release: "r2",
        previous: "r1",
        images: { api: "ghcr.io/a/api@sha256:1" },
        durations: { pull: 1.5, switch: 2 },
      },
    });
    expect(ok).toEqual({
      text: "✅ gold: deploy of r2 ok (previous r1) in 3.5s, by octocat",
      project: "gold",
      action: "deploy",
      result: "ok",
      by: "octocat",
      at: "2026-12-01T08:00:00.000Z",
      release: "r2",
      previous: "r1",
      images: { api: "ghcr.io/a/api@sha256:1" },
      durations: { pull: 1.5, switch: 2 },
    });
    const back = notification({
      project: "gold",
      action: "deploy",
      by: "octocat",
      now,
      error: {
        code: "DEPLOY_ROLLED_BACK",
        message: "release r3 failed (api unhealthy); rolled back to r2\nmore",
        hint: "docker compose logs",
      },
    });
    expect(back).toMatchObject({
      result: "rolled-back",
      code: "DEPLOY_ROLLED_BACK",
      error: "release r3 failed (api unhealthy); rolled back to r2",
      text: "↩️ gold: deploy rolled back, DEPLOY_ROLLED_BACK: release r3 failed (api unhealthy); rolled back to r2 (hint: docker compose logs), by octocat",
    });
    expect(
      notification({
        project: "gold",
        action: "rollback",
        by: "me",
        now,
        error: { code: "LOCK_BUSY", message: "busy", hint: "wait" },
      }).result,
    ).toBe("failed");
    expect([retryable(undefined), retryable(500), retryable(429), retryable(404), retryable(400)]).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
  });
});

describe("platforms", () => {
  it("uname names become OCI's; an index lacking the server's (or a node's) platform is named with both sides", async () => {
    const { ociArch, parseNodePlatforms, platformProblems } =
      await import("../../.dagger/src/core/server/platforms.js");
    expect(["x86_64", "aarch64", "armv7l", "amd64"].map(ociArch)).toEqual(["amd64", "arm64", "arm/v7", "amd64"]);
    const nodes = parseNodePlatforms("swarm-1 linux x86_64\nswarm-2 linux aarch64\n");
    expect(nodes).toEqual([
      { where: "node swarm-1", platform: "linux/amd64" },
      { where: "node swarm-2", platform: "linux/arm64" },
    ]);
    const indexes = new Map([
      ["r/web@sha256:1", ["linux/amd64"]],
      ["r/api@sha256:2", ["linux/amd64", "linux/arm64/v8"]],
    ]);
    const images = { web: "r/web@sha256:1", api: "r/api@sha256:2", db: "postgres:16" };
    expect(platformProblems(images, indexes, nodes)).toEqual([
      "services.web: r/web@sha256:1 has linux/amd64; node swarm-2 is linux/arm64",
    ]);
    expect(platformProblems(images, indexes, [{ where: "the VPS", platform: "linux/amd64" }])).toEqual([]);
  });
});
