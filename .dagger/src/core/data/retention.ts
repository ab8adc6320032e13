/**
 * Which snapshots the repository forgets after a capture, decided here (restic's own policies group by paths, and
 * every physical capture has the same path `/data`; `--keep-within` only ever keeps more). Per data service: the
 * newest `keep`, and always the newest one; those older than `days` go (when set). Whatever the policy says, the
 * snapshot a kept release needs stays: the newest of each service taken while that release was current, the one
 * `rollback --restore-data` to it puts back. A release record stays while a kept snapshot belongs to its release
 * (a rebuild needs it), and the newest one always.
 */

/** One snapshot as `restic snapshots --json` lists it. */
export interface ResticSnapshot {
  id: string;
  time: string;
  tags?: string[] | null;
}

export interface RetentionPolicy {
  /** Per data service, the newest this many. */
  keep: number;
  /** Those older than this many days go (0: no age limit). */
  days: number;
  /** The releases still on the server (a rollback can return to each). */
  keptReleases: readonly string[];
  now: Date;
}

const tag = (s: ResticSnapshot, key: string): string | undefined =>
  (s.tags ?? []).find((t) => t.startsWith(`${key}=`))?.slice(key.length + 1);
const newestFirst = (a: ResticSnapshot, b: ResticSnapshot) => Date.parse(b.time) - Date.parse(a.time);

/** The ids to forget (none of them a snapshot a kept release needs, nor the newest of anything). */
export function snapshotsToForget(list: readonly ResticSnapshot[], p: RetentionPolicy): string[] {
  const isRecord = (s: ResticSnapshot) => (s.tags ?? []).includes("record");
  const byService = new Map<string, ResticSnapshot[]>();
  for (const s of list) {
    const service = tag(s, "service");
    if (service === undefined || isRecord(s)) continue;
    byService.set(service, [...(byService.get(service) ?? []), s]);
  }
  const oldest = p.days > 0 ? p.now.getTime() - p.days * 86_400_000 : -Infinity;
  const kept = new Set<string>();
  const forget: string[] = [];
  for (const group of byService.values()) {
    const sorted = [...group].sort(newestFirst);
    const needed = new Set(
      p.keptReleases.flatMap((r) => {
        const newest = sorted.find((s) => tag(s, "release") === r);
        return newest ? [newest.id] : [];
      }),
    );
    sorted.forEach((s, i) => {
      const byPolicy = i === 0 || (i < p.keep && Date.parse(s.time) >= oldest);
      if (byPolicy || needed.has(s.id)) kept.add(s.id);
      else forget.push(s.id);
    });
  }
  // release records: the newest, and the newest of each release a kept snapshot belongs to
  const wanted = new Set(list.filter((s) => kept.has(s.id)).map((s) => tag(s, "release")));
  const records = list.filter(isRecord).sort(newestFirst);
  const seen = new Set<string | undefined>();
  records.forEach((s, i) => {
    const release = tag(s, "release");
    if (i === 0 || (wanted.has(release) && !seen.has(release))) seen.add(release);
    else forget.push(s.id);
  });
  return forget;
}
