/**
 * The check a preview's host paths pass on the server before anything starts, run by a real shell on real
 * symlinks, with a stand-in `docker` listing the running containers' writable binds: a path through a symlink a
 * container left in the folder, or inside a folder a running container may write, is named and refused.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ESCAPE_EXIT, confinedPaths } from "../../.dagger/src/core/server/server-commands.js";

function server() {
  const home = mkdtempSync(join(tmpdir(), "confined-"));
  const dir = join(home, "production/app-pr-5");
  mkdirSync(join(dir, "data/conf"), { recursive: true });
  mkdirSync(join(dir, "uploads"), { recursive: true });
  mkdirSync(join(home, "production/app"), { recursive: true });
  // what a preview's container can leave in a folder it writes: links to production's folder and to /
  symlinkSync(join(home, "production/app"), join(dir, "data/prod"));
  symlinkSync("/", join(dir, "data/root"));
  const bin = join(home, "bin");
  mkdirSync(bin);
  // one running container writes ./uploads (a bind), another only reads ./data
  writeFileSync(
    join(bin, "docker"),
    `#!/bin/sh\ncase "$1" in ps) echo c1; echo c2;; inspect) [ "$4" = c1 ] && echo "${dir}/uploads"; true;; esac\n`,
  );
  chmodSync(join(bin, "docker"), 0o755);
  const run = (paths: string[]) => {
    const argv = confinedPaths(dir, paths);
    const r = spawnSync(argv[0]!, argv.slice(1), { env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: "utf8" });
    return { code: r.status, out: r.stdout.trim() };
  };
  return { home, dir, run };
}

describe("a preview's host paths, resolved on the server", () => {
  it("pass inside the folder, made or not yet", () => {
    expect(server().run(["data/conf", "data", "new/folder", ".env"])).toEqual({ code: 0, out: "" });
  });

  it("are refused through a symlink out (production's folder, /), each named with where it leads", () => {
    const s = server();
    const r = s.run(["data/conf", "data/prod/.env", "data/root/etc/passwd"]);
    expect(r.code).toBe(ESCAPE_EXIT);
    expect(r.out.split("\n")).toEqual([
      `symlink data/prod/.env ${s.home}/production/app/.env`,
      "symlink data/root/etc/passwd /etc/passwd",
    ]);
  });

  it("are refused inside a bind a running container may write (it could swap a folder for a symlink first)", () => {
    const s = server();
    const r = s.run(["uploads", "uploads/avatars"]);
    expect(r).toEqual({ code: ESCAPE_EXIT, out: `writable uploads/avatars ${s.dir}/uploads` });
  });
});
