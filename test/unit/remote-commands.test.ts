import { describe, expect, it } from "vitest";
import { composeMajor, holdLock, layout, loginAndPull, parseDfAvailableKb, switchTo, up, writeFileAtomic } from "../../.dagger/src/core/remote-commands.js";
import { shellJoin } from "../../.dagger/src/core/shell.js";

const L = layout("production/gold");

describe("remote command builders", () => {
  it("lay out the deploy directory", () => {
    expect(L).toMatchObject({ compose: "production/gold/docker-compose.yml", env: "production/gold/.env", current: "production/gold/.releases/current", history: "production/gold/.releases/history.jsonl" });
  });

  it("start the release without pulling, removing orphans", () => {
    expect(up(L, "gold")).toEqual(["docker", "compose", "--project-name", "gold", "--project-directory", "production/gold", "--file", "production/gold/docker-compose.yml", "up", "--detach", "--remove-orphans", "--pull", "never"]);
  });

  it("never put a value inside shell code: scripts take positional parameters", () => {
    const hostile = "x'; rm -rf ~; echo '";
    for (const argv of [holdLock(L, 5, hostile), switchTo(layout(hostile), "r1"), writeFileAtomic(hostile, "600"), loginAndPull(layout(hostile), "r1", "gold", { host: hostile, user: hostile })]) {
      const script = argv[argv.indexOf("-c") + 1]!;
      expect(script).not.toContain(hostile);
      expect(argv.some((a) => a.includes(hostile))).toBe(true); // passed as an argument instead
    }
  });

  it("never put the registry token on a command line: login reads it from stdin", () => {
    const argv = loginAndPull(L, "r1", "gold", { host: "ghcr.io", user: "octo" });
    expect(shellJoin(argv)).toContain("--password-stdin");
    expect(argv.join(" ")).not.toMatch(/--password[ =](?!-stdin)/);
  });

  it("hold the lock with a wait or without one", () => {
    expect(holdLock(L, 30, "me").slice(0, 5)).toEqual(["flock", "-E", "75", "-w", "30"]);
    expect(holdLock(L, 0, "me").slice(0, 4)).toEqual(["flock", "-E", "75", "-n"]);
  });
});

describe("preflight parsers", () => {
  it("read compose's version and df's free space", () => {
    expect(composeMajor("2.26.1-4\n")).toBe(2);
    expect(composeMajor("v2.29.7")).toBe(2);
    expect(composeMajor("1.29.2")).toBe(1);
    expect(composeMajor("docker: 'compose' is not a docker command.")).toBeUndefined();
    expect(parseDfAvailableKb("Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 263174212 12581148 82861288 14% /\n")).toBe(82861288);
    expect(parseDfAvailableKb("")).toBeUndefined();
  });
});
