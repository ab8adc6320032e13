/**
 * The deploy lock's script run by a real shell and a real flock: it holds while
 * its stdin is open, a second one finds it busy, and one that waited while the
 * lock's folder was removed (a preview taken down) ends without the lock
 * instead of holding a deleted file beside a new one.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LOCK_BUSY_EXIT, LOCK_GONE_EXIT, holdLock, layout } from "../../.dagger/src/core/server/server-commands.js";

/** Start the lock command; resolves once it printed LOCKED (or ended), with a way to let go and its exit. */
function hold(argv: string[]) {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
  const exit = new Promise<number>((r) => child.on("exit", (code) => r(code ?? -1)));
  const locked = new Promise<boolean>((r) => {
    child.stdout.on("data", (d: Buffer) => d.toString().includes("LOCKED") && r(true));
    void exit.then(() => r(false));
  });
  return { locked, exit, release: () => child.stdin.end() };
}

describe("the deploy lock, run by sh and flock", () => {
  it("holds while its stdin is open, is busy for the next, and is free again once let go", async () => {
    const l = layout(join(mkdtempSync(join(tmpdir(), "lock-")), "production/gold"));
    const first = hold(holdLock(l, 0, "first"));
    expect(await first.locked).toBe(true);
    const busy = spawnSync(holdLock(l, 0, "second")[0]!, holdLock(l, 0, "second").slice(1), { input: "" });
    expect(busy.status).toBe(LOCK_BUSY_EXIT);
    first.release();
    expect(await first.exit).toBe(0);
    const again = hold(holdLock(l, 0, "third"));
    expect(await again.locked).toBe(true);
    again.release();
    await again.exit;
  });

  it("a waiter whose lock file went with its folder ends with LOCK_GONE_EXIT, never holding a lock no one else sees", async () => {
    const home = mkdtempSync(join(tmpdir(), "lock-"));
    const l = layout(join(home, "production/gold-pr-5"));
    const remover = hold(holdLock(l, 0, "preview-down"));
    expect(await remover.locked).toBe(true);
    const waiter = hold(holdLock(l, 20, "deploy"));
    await new Promise((r) => setTimeout(r, 300)); // the waiter has opened the file and waits in flock
    rmSync(l.dir, { recursive: true, force: true });
    remover.release();
    expect(await waiter.locked).toBe(false);
    expect(await waiter.exit).toBe(LOCK_GONE_EXIT);
  });
});
