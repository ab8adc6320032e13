import { describe, expect, it } from "vitest";
import { checkPullAccess, pullImages } from "../../.dagger/src/core/registry/registry-commands.js";
import {
  composeMajor,
  holdLock,
  httpStatus,
  layout,
  parsePreflight,
  writeFileAtomic,
} from "../../.dagger/src/core/server/server-commands.js";
import { runJob, switchTo, up } from "../../.dagger/src/core/release/release-commands.js";
import { dockerAuthConfig } from "../../.dagger/src/core/registry/registry-auth.js";
import { shellJoin } from "../../.dagger/src/core/shell.js";

const L = layout("production/gold");

describe("remote command builders", () => {
  it("lay out the deploy directory", () => {
    expect(L).toMatchObject({
      compose: "production/gold/docker-compose.yml",
      env: "production/gold/.env",
      current: "production/gold/.releases/current",
      history: "production/gold/.releases/history.jsonl",
    });
  });

  it("start the release without pulling, removing orphans", () => {
    expect(up(L, "gold")).toEqual([
      "docker",
      "compose",
      "--project-name",
      "gold",
      "--project-directory",
      "production/gold",
      "--file",
      "production/gold/docker-compose.yml",
      "up",
      "--detach",
      "--remove-orphans",
      "--pull",
      "never",
    ]);
  });

  it("never put a value inside shell code: scripts take positional parameters", () => {
    const hostile = "x'; rm -rf ~; echo '";
    for (const argv of [
      holdLock(L, 5, hostile),
      switchTo(layout(hostile), "r1"),
      writeFileAtomic(hostile, "600"),
      pullImages(hostile, [hostile], []),
      checkPullAccess(hostile, [hostile]),
      runJob(layout(hostile), { id: "r1", project: "gold", service: hostile, timeoutSeconds: 60, profile: "p" }),
    ]) {
      const script = argv[argv.indexOf("-c") + 1]!;
      expect(script).not.toContain(hostile);
      expect(argv.some((a) => a.includes(hostile))).toBe(true); // passed as an argument instead
    }
  });

  it("never put the registry token on a command line: the throwaway config arrives on stdin", () => {
    const argv = pullImages("ghcr.io", ["ghcr.io/a/b@sha256:" + "1".repeat(64)], ["postgres:16"]);
    expect(shellJoin(argv)).toContain('cat > "$cfg/config.json"');
    // the login is checked with the stored credentials: nothing secret follows `docker login`
    expect(shellJoin(argv)).toContain('docker login "$login_host" < /dev/null');
    expect(shellJoin(argv)).not.toMatch(/password/);
    expect(argv.slice(-4)).toEqual(["ghcr.io", "ghcr.io/a/b@sha256:" + "1".repeat(64), "--", "postgres:16"]);
  });

  it("write a docker config that holds the login and leaves the CLI no credential helper to pick", () => {
    const conf = JSON.parse(
      dockerAuthConfig({ host: "registry.example.com:5000", user: "robot$ci", token: "s3cret" }),
    ) as Record<string, unknown>;
    expect(Object.keys(conf)).toEqual(["auths"]);
    expect(conf.auths).toEqual({
      "registry.example.com:5000": { auth: Buffer.from("robot$ci:s3cret").toString("base64") },
    });
    // anonymous: still an entry (an empty `auths` would let the CLI look for a helper)
    expect(JSON.parse(dockerAuthConfig(undefined, "ghcr.io"))).toEqual({ auths: { "ghcr.io": {} } });
    expect(
      Object.keys(
        (JSON.parse(dockerAuthConfig({ host: "docker.io", user: "u", token: "t" })) as { auths: object }).auths,
      ),
    ).toEqual(["https://index.docker.io/v1/"]);
  });

  it("run a job in the deploy folder with the release's files, its own profile and a timeout that removes it", () => {
    const argv = runJob(L, {
      id: "20261125T212233.123Z-abc1234",
      project: "gold",
      service: "migrate",
      timeoutSeconds: 300,
      profile: "vps-pipeline-jobs",
    });
    expect(argv.slice(-8)).toEqual([
      "300",
      "gold",
      "production/gold",
      "production/gold/.releases/20261125T212233.123Z-abc1234",
      "gold-migrate-job-20261125T212233.123Z-abc1234",
      "migrate",
      "vps-pipeline-jobs",
      "",
    ]);
    expect(argv[2]).toMatch(
      /timeout -k 10 "\$t" docker compose "\$@" --profile "\$prof" run --rm -T --name "\$name" "\$svc"/,
    );
    expect(argv[2]).toMatch(/--env-file "\$rel\/\.env"/);
    expect(argv[2]).toMatch(/docker rm -f "\$name"/);
  });

  it("give curl URLs as they are: no globbing of [ and {", () => {
    expect(httpStatus("http://127.0.0.1:8080/a[1]{x}", 5)).toContain("--globoff");
  });

  it("hold the lock with a wait or without one", () => {
    expect(holdLock(L, 30, "me").slice(4)).toEqual([
      "production/gold/.releases",
      "production/gold/.releases/.lock",
      "me",
      "production/gold/.releases/.lock-holder",
      "30",
    ]);
    expect(holdLock(L, 0, "me").at(-1)).toBe("0");
    expect(holdLock(L, 0, "me")[2]).toMatch(/flock -E 75 -n 9/);
  });
});

describe("preflight parsers", () => {
  it("read compose's version and df's free space", () => {
    expect(composeMajor("2.26.1-4\n")).toBe(2);
    expect(composeMajor("v2.29.7")).toBe(2);
    expect(composeMajor("1.29.2")).toBe(1);
    expect(composeMajor("docker: 'compose' is not a docker command.")).toBeUndefined();
    expect(parsePreflight("docker 20.10.24\ncompose 2.26.1-4\ndf_kb 82861288\n")).toEqual({
      docker: "20.10.24",
      compose: "2.26.1-4",
      freeKb: 82861288,
    });
    expect(
      parsePreflight(
        "docker_error permission denied while trying to connect to the Docker daemon socket\ncompose_v1 1.29.2\ndf_kb \n",
      ),
    ).toEqual({
      dockerError: "permission denied while trying to connect to the Docker daemon socket",
      composeV1: "1.29.2",
    });
  });
});
