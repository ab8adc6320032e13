/**
 * The stack deploy script run by a real shell, with a stand-in `docker` that
 * prints what it was given: the release's `.env` (as stack.env) reaches the
 * interpolation, but cannot move docker elsewhere, swap its login, or redirect
 * the cleanup of the throwaway config.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { envExports } from "../../.dagger/src/core/compose/env-file.js";
import { layout, releaseDir } from "../../.dagger/src/core/server/server-commands.js";
import { stackDeploy } from "../../.dagger/src/core/swarm/swarm-commands.js";

function run(env: (bait: string) => string, loginHost: string): { out: string; home: string; bait: string } {
  const home = mkdtempSync(join(tmpdir(), "stack-deploy-"));
  const bait = join(home, "bait");
  mkdirSync(bait);
  writeFileSync(join(bait, "keep"), "x");
  const bin = join(home, "bin");
  mkdirSync(bin);
  writeFileSync(
    join(bin, "docker"),
    '#!/bin/sh\nif [ "$1" = login ]; then exit 0; fi\necho "args=$*"\necho "host=${DOCKER_HOST:-}"\necho "config=$DOCKER_CONFIG"\necho "app=${APP_VERSION:-}"\n',
  );
  chmodSync(join(bin, "docker"), 0o755);
  const l = layout(join(home, "production/gold"));
  const rel = releaseDir(l, "r1");
  mkdirSync(rel, { recursive: true });
  writeFileSync(join(rel, "stack.env"), envExports(env(bait)));
  const argv = stackDeploy(l, { loginHost, id: "r1", file: "stack.yml", project: "gold", prune: true });
  // the deploy user's own login environment points docker at its engine: that must stay
  const out = execFileSync(argv[0]!, argv.slice(1), {
    env: { PATH: `${bin}:/usr/bin:/bin`, HOME: home, DOCKER_HOST: "unix:///run/the-users-engine.sock" },
    input: '{"auths":{}}\n',
    encoding: "utf8",
  });
  return { out, home, bait };
}

describe("the stack deploy script", () => {
  it("interpolates with the release's variables, deploys with the throwaway login, and removes it afterwards", () => {
    const { out, home } = run(() => "APP_VERSION=2.1\n", "ghcr.io");
    expect(out).toContain("app=2.1");
    expect(out).toMatch(
      /args=stack deploy --compose-file stack\.yml --with-registry-auth --resolve-image changed --prune gold/,
    );
    expect(out).toMatch(new RegExp(`config=${home}/\\.vps-pipeline-auth\\.`));
    expect(readdirSync(home).filter((f) => f.startsWith(".vps-pipeline-auth"))).toEqual([]);
  });

  it("a .env with cfg=…, DOCKER_HOST=… and DOCKER_CONFIG=… changes nothing about where the stack goes or what is removed", () => {
    const { out, home, bait } = run(
      (baitDir) =>
        `cfg=${baitDir}\nDOCKER_HOST=tcp://203.0.113.9:2375\nDOCKER_CONFIG=/tmp/elsewhere\nPATH=/nowhere\nAPP_VERSION=3\n`,
      "ghcr.io",
    );
    expect(out).toContain("host=unix:///run/the-users-engine.sock\n");
    expect(out).toMatch(new RegExp(`config=${home}/\\.vps-pipeline-auth\\.`));
    expect(out).toContain("app=3");
    expect(existsSync(join(bait, "keep"))).toBe(true);
    expect(readdirSync(home).filter((f) => f.startsWith(".vps-pipeline-auth"))).toEqual([]);
  });

  it("without a token no registry auth is handed over: the swarm keeps the one it has", () => {
    expect(run(() => "", "").out).toMatch(
      /args=stack deploy --compose-file stack\.yml --resolve-image changed --prune gold/,
    );
  });

  it("never writes docker's or the shell's own names into stack.env", () => {
    expect(envExports("DOCKER_HOST=x\nPATH=/x\nIFS=x\nLD_PRELOAD=x\nA=1\n")).toBe("export A=1\n");
  });
});
