/**
 * The drain after a route moves, run by a real shell, with a stand-in `docker` that gives the old container's address
 * and the edge's TCP tables (IPv4, and IPv6 where a dual-stack socket shows an IPv4 peer as ::ffff:a.b.c.d): the
 * drain waits while the edge has an established connection to the old container's port, and no longer.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { drainFromEdge } from "../../.dagger/src/core/edge/edge-commands.js";

const HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
/** 10.210.5.7:8000 as /proc/net/tcp and tcp6 write a peer (bytes reversed, hex). */
const V4 = "0705D20A:1F40";
const V6 = `0000000000000000FFFF0000${V4}`;
const row = (local: string, remote: string, st: string) =>
  `   0: ${local} ${remote} ${st} 00000000:00000000 00:00000000 00000000     0        0 1`;

/**
 * A server where the old container `web-1` is at 10.210.5.7 and the edge's tables hold `tcp` and `tcp6` for the first
 * `busyReads` reads, then only the listener.
 */
function server(tcp: string[], tcp6: string[], busyReads: number) {
  const dir = mkdtempSync(join(tmpdir(), "drain-"));
  const bin = join(dir, "bin");
  mkdirSync(bin);
  const idle = [HEADER, row("00000000:1F40", "00000000:0000", "0A")].join("\n");
  writeFileSync(join(dir, "busy"), [HEADER, ...tcp, HEADER, ...tcp6].join("\n") + "\n");
  writeFileSync(join(dir, "idle"), `${idle}\n`);
  writeFileSync(
    join(bin, "docker"),
    [
      "#!/bin/sh",
      `case "$1" in`,
      `  inspect) echo 10.210.5.7;;`,
      `  exec) n=$(cat ${dir}/reads 2>/dev/null || echo 0); echo $((n + 1)) > ${dir}/reads`,
      `    if [ "$n" -lt ${busyReads} ]; then cat ${dir}/busy; else cat ${dir}/idle; fi;;`,
      "esac",
    ].join("\n"),
  );
  chmodSync(join(bin, "docker"), 0o755);
  return () => {
    const argv = drainFromEdge("app", ["app-web-1"], 8000, 2);
    const t0 = Date.now();
    const r = spawnSync(argv[0]!, argv.slice(1), { env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: "utf8" });
    return { code: r.status, out: r.stdout.trim(), ms: Date.now() - t0 };
  };
}

describe("the drain after a route moves", () => {
  it("waits while the edge holds a connection to the old container (IPv4), then ends", () => {
    const r = server([row("0200D20A:9C40", V4, "01")], [], 3)();
    expect(r).toMatchObject({ code: 0, out: "" });
    expect(r.ms).toBeGreaterThanOrEqual(200);
  });

  it("sees the connection in tcp6 too (a dual-stack socket), and gives up after `drain` seconds saying so", () => {
    const r = server([], [row(`0000000000000000FFFF00000200D20A:9C40`, V6, "01")], 1000)();
    expect(r).toMatchObject({ code: 0, out: "busy 1" });
    // `drain` is counted in whole seconds of `date +%s`: at least one full second went by
    expect(r.ms).toBeGreaterThanOrEqual(1000);
  });

  it("does not wait for connections that are not established ones to that port", () => {
    // TIME_WAIT (06) to the old container, and an established one to another port of it
    const r = server([row("0200D20A:9C40", V4, "06"), row("0200D20A:9C41", "0705D20A:1F41", "01")], [], 1000)();
    expect(r).toMatchObject({ code: 0, out: "" });
    expect(r.ms).toBeLessThan(1500);
  });
});
