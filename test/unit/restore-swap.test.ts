/**
 * The physical restore's swap, run by a real shell on a real folder standing for a volume: the staged snapshot
 * takes the volume's place (its root's owner and mode too), what it held is kept aside, and the swap back
 * returns exactly that.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RESTORE_REPLACED, RESTORE_STAGE, SWAP_BACK, SWAP_IN } from "../../.dagger/src/core/data/data-commands.js";

function volume() {
  const v = mkdtempSync(join(tmpdir(), "volume-"));
  writeFileSync(join(v, "now.txt"), "as it is");
  writeFileSync(join(v, ".hidden"), "hidden now");
  mkdirSync(join(v, "base"));
  writeFileSync(join(v, "base", "table"), "rows now");
  chmodSync(v, 0o755);
  // what restic restored of volume gold_dbdata, inside the volume
  const staged = join(v, RESTORE_STAGE, "data", "gold_dbdata");
  mkdirSync(join(staged, "base"), { recursive: true });
  writeFileSync(join(staged, "base", "table"), "rows then");
  writeFileSync(join(staged, "..odd"), "odd name");
  chmodSync(staged, 0o700);
  return v;
}
const run = (script: string, ...args: string[]) => execFileSync("sh", ["-c", script, "sh", ...args]);
const listing = (v: string) => readdirSync(v).sort();

describe("the restore's swap, in a volume", () => {
  it("puts the staged data in place, keeps what the volume held aside, the root's mode as the snapshot had it", () => {
    const v = volume();
    run(SWAP_IN, "gold_dbdata", v);
    expect(listing(v)).toEqual(["..odd", RESTORE_REPLACED, "base"].sort());
    expect(readFileSync(join(v, "base", "table"), "utf8")).toBe("rows then");
    expect(statSync(v).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(v, RESTORE_REPLACED)).sort()).toEqual([".hidden", "base", "now.txt"]);
  });

  it("the swap back returns exactly what the volume held", () => {
    const v = volume();
    run(SWAP_IN, "gold_dbdata", v);
    run(SWAP_BACK, v);
    expect(listing(v)).toEqual([".hidden", "base", "now.txt"]);
    expect(readFileSync(join(v, "base", "table"), "utf8")).toBe("rows now");
    expect(statSync(v).mode & 0o777).toBe(0o755);
  });

  it("refuses a volume with nothing staged for it, touching nothing", () => {
    const v = volume();
    expect(() => run(SWAP_IN, "other_volume", v)).toThrow();
    expect(listing(v)).toEqual([".hidden", RESTORE_STAGE, "base", "now.txt"].sort());
  });
});
