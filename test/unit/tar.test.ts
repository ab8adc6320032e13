/**
 * The files a release carries, as one tar stream unpacked by the server's own script (run here by a real shell and
 * tar).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FILES_DIR } from "../../.dagger/src/core/release/release-files.js";
import { extractShipped } from "../../.dagger/src/core/release/release-commands.js";
import { layout } from "../../.dagger/src/core/server/server-commands.js";
import { tarArchive } from "../../.dagger/src/core/release/tar.js";

const unpack = (dir: string, archive: Buffer) => {
  const argv = extractShipped(layout(dir));
  execFileSync(argv[0]!, argv.slice(1), { input: archive });
};

describe("shipped files as one tar stream", () => {
  it("unpacks every set with its modes, long paths included, and moves each set into place whole", () => {
    const dir = mkdtempSync(join(tmpdir(), "tar-"));
    const long = `aaaaaaaaaaaaaaaa/site/${"deep/".repeat(30)}page.html`;
    unpack(
      dir,
      tarArchive([
        { path: "aaaaaaaaaaaaaaaa/nginx.conf", content: "server {}\n", mode: "644" },
        { path: long, content: "<p>deep</p>\n", mode: "644" },
        { path: "bbbbbbbbbbbbbbbb/password.txt", content: "s3cret\n", mode: "600" },
      ]),
    );
    const root = join(dir, FILES_DIR);
    expect(readdirSync(root).sort()).toEqual(["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"]);
    expect(readFileSync(join(root, "aaaaaaaaaaaaaaaa/nginx.conf"), "utf8")).toBe("server {}\n");
    expect(readFileSync(join(root, long), "utf8")).toBe("<p>deep</p>\n");
    expect((statSync(join(root, "aaaaaaaaaaaaaaaa/nginx.conf")).mode & 0o777).toString(8)).toBe("644");
    expect((statSync(join(root, "bbbbbbbbbbbbbbbb/password.txt")).mode & 0o777).toString(8)).toBe("600");
    expect((statSync(join(root, "aaaaaaaaaaaaaaaa")).mode & 0o777).toString(8)).toBe("755");
  });

  it("never touches a set that is there, and sweeps what a killed upload left", () => {
    const dir = mkdtempSync(join(tmpdir(), "tar-"));
    const root = join(dir, FILES_DIR);
    unpack(dir, tarArchive([{ path: "cccccccccccccccc/a.txt", content: "first\n", mode: "644" }]));
    execFileSync("mkdir", ["-p", join(root, ".incoming.killed")]);
    writeFileSync(join(root, ".incoming.killed/half"), "x");
    unpack(
      dir,
      tarArchive([
        { path: "cccccccccccccccc/a.txt", content: "other\n", mode: "644" },
        { path: "dddddddddddddddd/b.txt", content: "b\n", mode: "644" },
      ]),
    );
    expect(readFileSync(join(root, "cccccccccccccccc/a.txt"), "utf8")).toBe("first\n");
    expect(readdirSync(root).sort()).toEqual(["cccccccccccccccc", "dddddddddddddddd"]);
  });
});
