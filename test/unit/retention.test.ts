/**
 * Retention as the user counts it: per data service, the age limit removes what is older, and the snapshot a kept
 * release needs for `rollback --restore-data` stays whatever the policy says.
 */
import { describe, expect, it } from "vitest";
import { snapshotsToForget, type ResticSnapshot } from "../../.dagger/src/core/data/retention.js";

const now = new Date("2026-12-07T12:00:00Z");
const daysAgo = (n: number) => new Date(now.getTime() - n * 86_400_000).toISOString();
let n = 0;
const snap = (service: string, release: string, ageDays: number): ResticSnapshot => ({
  id: `${service}-${release}-${ageDays}-${n++}`,
  time: daysAgo(ageDays),
  tags: ["vps-pipeline", "project=gold", `service=${service}`, "capture=physical", `release=${release}`],
});
const record = (release: string, ageDays: number): ResticSnapshot => ({
  id: `record-${release}-${ageDays}-${n++}`,
  time: daysAgo(ageDays),
  tags: ["vps-pipeline", "project=gold", "record", `release=${release}`],
});
const kept = (list: ResticSnapshot[], policy: Partial<Parameters<typeof snapshotsToForget>[1]> = {}) => {
  const go = snapshotsToForget(list, { keep: 10, days: 0, keptReleases: [], now, ...policy });
  return list.filter((s) => !go.includes(s.id)).map((s) => s.id);
};

describe("retention", () => {
  it("keeps the newest --keep-snapshots of each data service, not of all of them together", () => {
    // two physical services: every capture has the path /data, which restic's own grouping took for one
    const list = [snap("db", "r1", 3), snap("files", "r1", 3), snap("db", "r2", 1), snap("files", "r2", 1)];
    expect(kept(list, { keep: 1 })).toEqual([list[2]!.id, list[3]!.id]);
  });

  it("never forgets the snapshot a kept release needs: ten backups later, rollback --restore-data to r1 still has its data", () => {
    const beforeR2 = snap("db", "r1", 11);
    const backups = Array.from({ length: 10 }, (_, i) => snap("db", "r2", 10 - i));
    const list = [beforeR2, ...backups];
    expect(kept(list, { keep: 10, keptReleases: ["r1", "r2"] })).toContain(beforeR2.id);
    // a release no longer kept needs nothing
    expect(kept(list, { keep: 10, keptReleases: ["r2"] })).not.toContain(beforeR2.id);
    // of several taken while r1 was current, the newest is the one a rollback puts back
    const older = snap("db", "r1", 12);
    expect(kept([older, ...list], { keep: 10, keptReleases: ["r1", "r2"] })).not.toContain(older.id);
  });

  it("--keep-snapshot-days removes what is older, never the newest of a service", () => {
    const list = [snap("db", "r1", 90), snap("db", "r1", 80), snap("db", "r1", 70)];
    expect(kept(list, { days: 30 })).toEqual([list[2]!.id]);
    const fresh = snap("db", "r1", 2);
    expect(kept([...list, fresh], { days: 30 })).toEqual([fresh.id]);
  });

  it("keeps the release record of every kept snapshot's release, and the newest record", () => {
    const list = [
      snap("db", "r1", 5),
      record("r1", 5),
      record("r1", 6),
      snap("db", "r2", 1),
      record("r2", 1),
      record("r0", 9),
    ];
    expect(kept(list, { keep: 2 })).toEqual([list[0]!.id, list[1]!.id, list[3]!.id, list[4]!.id]);
  });
});
