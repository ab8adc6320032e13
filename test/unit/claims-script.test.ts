/**
 * The edge's lock and the claims of deploys in progress, run by a real shell and `flock`: a claim whose lock is free is
 * stale and goes, one held is live; a stale claim this user may not remove (another deploy user's, in the shared
 * /tmp) is left without failing the read; the lock is taken, waited for, and refused with LOCK_BUSY_EXIT.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { holdClaim, holdEdgeLock, liveClaims } from "../../.dagger/src/core/edge/edge-commands.js";
import { LOCK_BUSY_EXIT } from "../../.dagger/src/core/server/server-commands.js";

const run = (argv: string[], env: Record<string, string> = {}) =>
  spawnSync(argv[0]!, argv.slice(1), { env: { PATH: "/usr/bin:/bin", ...env }, encoding: "utf8", input: "" });

/** Holds `file`'s lock until the returned function is called. */
async function holder(file: string): Promise<() => void> {
  const p = spawn("flock", [file, "sh", "-c", "echo held; exec cat > /dev/null"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  await new Promise<void>((r) => p.stdout.once("data", () => r()));
  return () => p.stdin.end();
}

describe("the edge's claims", () => {
  it("a free claim is stale and goes, a held one is live", async () => {
    const dir = mkdtempSync(join(tmpdir(), "claims-"));
    writeFileSync(join(dir, "old.json"), '[{"project":"old"}]\n');
    writeFileSync(join(dir, "live.json"), '[{"project":"live"}]\n');
    const release = await holder(join(dir, "live.json"));
    try {
      const r = run([...liveClaims().slice(0, -1), dir]);
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe('claim [{"project":"live"}]');
      expect(existsSync(join(dir, "old.json"))).toBe(false);
    } finally {
      release();
    }
  });

  it("a stale claim it may not remove is left, and the read still answers", () => {
    const dir = mkdtempSync(join(tmpdir(), "claims-"));
    writeFileSync(join(dir, "theirs.json"), '[{"project":"theirs"}]\n');
    // rm as another deploy user meets it in a sticky /tmp
    const bin = join(dir, "..", `${dir.split("/").at(-1)}-bin`);
    mkdirSync(bin);
    writeFileSync(join(bin, "rm"), "#!/bin/sh\necho \"rm: cannot remove '$2': Operation not permitted\" >&2\nexit 1\n");
    chmodSync(join(bin, "rm"), 0o755);
    const r = run([...liveClaims().slice(0, -1), dir], { PATH: `${bin}:/usr/bin:/bin` });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("");
    expect(existsSync(join(dir, "theirs.json"))).toBe(true);
  });

  it("a claim held by holdClaim is live under this user's own name, and stale once it is let go", async () => {
    const dir = mkdtempSync(join(tmpdir(), "claims-"));
    const argv = [...holdClaim("shop").slice(0, -2), dir, "shop"];
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "inherit"] });
    p.stdin.write('[{"project":"shop"}]\n');
    await new Promise<void>((r) => p.stdout.once("data", () => r()));
    const uid = process.getuid!();
    expect(existsSync(join(dir, `shop.${uid}.json`))).toBe(true);
    expect(run([...liveClaims().slice(0, -1), dir]).stdout.trim()).toBe('claim [{"project":"shop"}]');
    p.stdin.end();
    await new Promise((r) => p.once("exit", r));
    expect(run([...liveClaims().slice(0, -1), dir]).stdout).toBe("");
    expect(existsSync(join(dir, `shop.${uid}.json`))).toBe(false);
  });
});

describe("the edge's lock", () => {
  it("is made when missing, taken, and refused with LOCK_BUSY_EXIT while another holds it", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "edge-lock-")), "edge.lock");
    const lock = (wait: number) => [...holdEdgeLock(wait).slice(0, -1), file];
    const first = run(lock(1));
    expect(first.status).toBe(0);
    expect(first.stdout).toBe("LOCKED\n");
    const release = await holder(file);
    try {
      const busy = run(lock(1));
      expect(busy.status).toBe(LOCK_BUSY_EXIT);
      expect(busy.stdout).toBe("");
    } finally {
      release();
    }
  });
});
