/**
 * check-backup's round trip of a dump (compareLogical) run by a real shell, with a stand-in `docker`: `run … dump`
 * prints the snapshot's dump, `compose … exec` the restored copy's. The lines where dumps write their version,
 * their time or a session's key do not count; anything else does; a binary dump is not compared.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compareLogical, DATA_EXIT } from "../../.dagger/src/core/data/data-commands.js";
import { layout } from "../../.dagger/src/core/server/server-commands.js";

function roundTrip(snapshot: string | Buffer, again: string, againExit = 0): { code: number | null; out: string } {
  const home = mkdtempSync(join(tmpdir(), "round-trip-"));
  const bin = join(home, "bin");
  mkdirSync(bin);
  writeFileSync(join(home, "snapshot"), snapshot);
  writeFileSync(join(home, "again"), again);
  writeFileSync(
    join(bin, "docker"),
    `#!/bin/sh\ncat > /dev/null\nif [ "$1" = compose ]; then cat ${home}/again; exit ${againExit}; fi\ncat ${home}/snapshot\n`,
  );
  chmodSync(join(bin, "docker"), 0o755);
  const l = layout(join(home, "production/gold"));
  mkdirSync(join(l.dir, ".backups/restic"), { recursive: true });
  writeFileSync(join(l.dir, ".backups/restic/config"), "x");
  const argv = compareLogical(l, "restic", "gold-backup-check", { dir: home }, "db", "abc123", ["pg_dump", "gold"]);
  const r = spawnSync(argv[0]!, argv.slice(1), {
    env: { PATH: `${bin}:/usr/bin:/bin` },
    input: "password\n",
    encoding: "utf8",
  });
  return { code: r.status, out: r.stdout.trim() };
}

const DUMP = [
  "--",
  "-- PostgreSQL database dump",
  "-- Dumped from database version 15.14",
  "\\restrict 3kq9ZxY1",
  "SET statement_timeout = 0;",
  "CREATE TABLE public.prices (day date NOT NULL, usd numeric NOT NULL);",
  "COPY public.prices (day, usd) FROM stdin;",
  "2026-01-01\t2000",
  "\\.",
  "\\unrestrict 3kq9ZxY1",
  "",
].join("\n");

describe("a dump's round trip", () => {
  it("is the same when only comments and client directives differ", () => {
    const again = DUMP.replace("15.14", "15.15").replaceAll("3kq9ZxY1", "Qm7Tt0aa");
    const r = roundTrip(DUMP, again);
    expect(r).toEqual({ code: 0, out: expect.stringMatching(/^same \d+$/) });
  });

  it("differs when the copy holds a row or a table the dump does not", () => {
    expect(roundTrip(DUMP, DUMP.replace("2000\n", "2000\n2026-01-02\t2100\n")).out).toMatch(/^differs \d+ \d+$/);
    expect(roundTrip(DUMP, `${DUMP}CREATE TABLE public.audit (at timestamptz);\n`).out).toMatch(/^differs/);
  });

  it("does not compare a binary dump, and fails when the dump command fails", () => {
    expect(roundTrip(Buffer.from([0x50, 0x47, 0x44, 0x4d, 0x50, 0x00, 0x01, 0x0a]), "anything").out).toBe("binary");
    expect(roundTrip(DUMP, "", 2).code).toBe(DATA_EXIT.restoreFailed);
  });
});
