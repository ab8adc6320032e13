/**
 * Releases on the server: their ids, the history line each deploy appends, and
 * which old releases pruning removes.
 */
import type { HealthOutcome } from "./health.js";

/** `20261125T212233.123Z-abc1234`: sorts by time (to the millisecond), names the commit. */
export function releaseId(now: Date, sha: string): string {
  return `${now.toISOString().replace(/[-:]/g, "")}-${sha.slice(0, 7)}`;
}

export const RELEASE_ID = /^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{7}$/;

export type StepName =
  | "connect"
  | "lock"
  | "preflight"
  | "upload"
  | "edge"
  | "pull"
  | "snapshot"
  | "jobs"
  | "switch"
  | "health"
  | "restore-data"
  | "rollback"
  | "record"
  | "prune"
  | "read"
  | "fetch"
  | "check"
  | "keep-snapshots"
  | "platforms";

export interface StepTiming {
  step: StepName;
  seconds: number;
}

export interface HistoryRecord {
  release: string;
  /**
   * `restore`: a project rebuilt on a new server from its backup (restore --rebuild); `run`: a one-off command (`vps …
   * run`).
   */
  action: "deploy" | "rollback" | "restore" | "run";
  result: "ok" | "failed" | "rolled-back";
  at: string;
  by: string;
  sha: string;
  images: Record<string, string>;
  previous?: string;
  /** When a failed release was replaced by the previous one: which, and whether it came back healthy. */
  rolledBackTo?: string;
  rollbackHealthy?: boolean;
  reason?: string;
  /** Data snapshots taken before this release's jobs (`service:id`, id shortened to 12). */
  snapshots?: string[];
  /** Data put back with this operation (`service:id`). */
  restored?: string[];
  /** A one-off's service, command (as given: never the `.env`) and exit code. */
  service?: string;
  command?: string[];
  exitCode?: number;
  /** The error code and hint of a failure, so `status` can explain it later. */
  code?: string;
  hint?: string;
  durations: Record<string, number>;
}

/**
 * The history line of a deploy that failed before it held the lock or before
 * it reached the server (preflight, a busy lock, a tag that does not resolve, a
 * failed publish): no release folder was made, nothing running changed.
 */
export function earlyFailureRecord(o: {
  now: Date;
  sha: string;
  by: string;
  images?: Record<string, string>;
  code: string;
  message: string;
  hint: string;
  durations?: Record<string, number>;
}): HistoryRecord {
  return {
    release: releaseId(o.now, o.sha),
    action: "deploy",
    result: "failed",
    at: o.now.toISOString(),
    by: o.by,
    sha: o.sha,
    images: o.images ?? {},
    reason: `${o.code}: ${o.message.split("\n")[0]} (stopped before the switch; nothing running was changed)`,
    code: o.code,
    hint: o.hint,
    durations: o.durations ?? {},
  };
}

/** What `rollback` records: the target's commit from its deploy record, the outcome, and a failure's code and hint. */
export function rollbackRecord(a: {
  target: string;
  current?: string | undefined;
  history: HistoryRecord[];
  by: string;
  images: Record<string, string>;
  health: HealthOutcome;
  durations: Record<string, number>;
  failure?: { code: string; hint: string } | undefined;
}): HistoryRecord {
  const deployed = a.history.find((h) => h.release === a.target && h.action === "deploy");
  return {
    release: a.target,
    action: "rollback",
    at: new Date().toISOString(),
    by: a.by,
    sha: deployed?.sha ?? a.target.split("-").pop() ?? "",
    images: a.images,
    result: a.health.ok ? "ok" : "failed",
    durations: a.durations,
    ...(a.current ? { previous: a.current } : {}),
    ...(a.health.ok ? {} : { reason: a.health.reasons.join("; ") }),
    ...(a.failure ? { code: a.failure.code, hint: a.failure.hint } : {}),
  };
}

export function historyLine(r: HistoryRecord): string {
  return `${JSON.stringify(r)}\n`;
}

/** Parse history.jsonl, skipping lines a crash may have cut short. */
export function parseHistory(text: string): HistoryRecord[] {
  const out: HistoryRecord[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as HistoryRecord);
    } catch {
      // a torn last line is not worth failing a status call for
    }
  }
  return out;
}

/**
 * Where `rollback` goes without `--to`: the newest release *older* than the
 * current one that once ran healthy (deployed or rolled back to with result ok)
 * and is still kept on the server. Going by age, not by the last event, means
 * A → B → C, rollback, rollback lands on A, not back on C.
 */
export function rollbackTarget(
  history: readonly HistoryRecord[],
  kept: readonly string[],
  current: string | undefined,
): string | undefined {
  // a one-off that succeeded says nothing about its release's health
  const good = new Set(history.filter((h) => h.result === "ok" && h.action !== "run").map((h) => h.release));
  const older = kept
    .filter((id) => RELEASE_ID.test(id) && good.has(id) && (current === undefined || id < current))
    .sort();
  return older.pop();
}

/**
 * Release directories to delete: all but the newest `keep`, never the current
 * or the previous one (rollback needs it), never anything that is not a release id.
 */
export function releasesToPrune(
  ids: readonly string[],
  keep: number,
  protect: readonly (string | undefined)[],
): string[] {
  const releases = ids.filter((id) => RELEASE_ID.test(id)).sort();
  const old = releases.slice(0, Math.max(0, releases.length - keep));
  return old.filter((id) => !protect.includes(id));
}
