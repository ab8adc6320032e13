/**
 * The kept releases and the history, the same on one VPS and on a swarm: which
 * release a rollback returns to, what it records, how a failed deploy's return
 * to the previous release is recorded, and pruning.
 */
import { PipelineError, asPipelineError } from "../core/errors.js";
import { layout, listReleases, readOptionalFile, removeReleases, type Layout } from "../core/remote-commands.js";
import { RELEASE_ID, earlyFailureRecord, parseHistory, releasesToPrune, rollbackTarget, type HistoryRecord } from "../core/release.js";
import { Progress } from "./progress.js";
import { withSession } from "./session.js";
import type { SshOptions, SshSession } from "./ssh.js";
import { defaultTracing } from "./trace.js";
import { readCurrent, record, type HealthOutcome } from "./steps.js";

/**
 * Run a deploy whose failures before it holds the lock (preflight, a busy or
 * broken lock) are recorded in the history all the same; under the lock the
 * deploy records its own outcome (`locked` marks the moment). A lost
 * connection is not recorded: there is no one to record it to.
 */
export async function recordingEarlyFailures<T>(s: SshSession, l: Layout, p: Progress, who: { sha: string; by: string; images: Record<string, string> }, body: (locked: () => void) => Promise<T>): Promise<T> {
  let held = false;
  try {
    return await body(() => (held = true));
  } catch (e) {
    const err = asPipelineError(e, "starting the deploy");
    if (!held && err.code !== "SSH_CONNECTION_LOST") {
      await record(s, l, earlyFailureRecord({ now: new Date(), ...who, code: err.code, message: err.message, hint: err.hint, durations: p.durations })).catch(() => undefined);
    }
    throw e;
  }
}

/** Record a deploy that failed before it reached the server (a tag, the publish): best effort, over its own connection. */
export async function recordFailureBeforeDeploy(ssh: SshOptions, dir: string, who: { sha: string; by: string }, e: unknown): Promise<void> {
  const err = asPipelineError(e, "preparing the deploy");
  const p = new Progress(() => undefined, "deploy", defaultTracing());
  await withSession(ssh, p, (s) => record(s, layout(dir), earlyFailureRecord({ now: new Date(), ...who, code: err.code, message: err.message, hint: err.hint })))
    .catch(() => undefined);
}

/** Remove old releases; best effort: a folder it cannot remove (a file a container made as root) never fails a good deploy. */
export async function prune(s: SshSession, l: Layout, keep: number, protect: (string | undefined)[]): Promise<{ removed: string[]; error?: string }> {
  const ids = (await s.run(listReleases(l), "listing releases")).split("\n").map((x) => x.trim());
  const doomed = releasesToPrune(ids, keep, protect);
  if (doomed.length === 0) return { removed: [] };
  const r = await s.exec(removeReleases(l, doomed));
  return r.code === 0 ? { removed: doomed } : { removed: doomed, error: r.stderr.trim().split("\n")[0] ?? `exit code ${r.code}` };
}

/** Fails unless something was ever deployed to the folder (`where`: "VPS" or "manager"). */
export async function requireDeployed(s: SshSession, l: Layout, where: string): Promise<void> {
  if ((await s.exec(["test", "-d", l.releases])).code !== 0) {
    throw new PipelineError("RELEASE_NOT_FOUND", `nothing was ever deployed to ${l.dir} on the ${where}`, "check --project and --dir; deploy first");
  }
}

/** The release `rollback` returns to: `to`, or the newest good one older than the current; it must be kept. */
export async function chooseRollbackTarget(s: SshSession, l: Layout, to: string | undefined, where: string): Promise<{ current?: string; target: string; history: HistoryRecord[] }> {
  const current = await readCurrent(s, l);
  const kept = (await s.run(listReleases(l), "listing releases")).split("\n").filter((x) => RELEASE_ID.test(x)).sort();
  const history = parseHistory(await s.run(readOptionalFile(l.history), "reading the history"));
  const target = to ?? rollbackTarget(history, kept, current);
  if (!target || !kept.includes(target)) {
    throw new PipelineError(
      "RELEASE_NOT_FOUND",
      target ? `release ${target} is not kept on the ${where}` : `no good release older than the current one (${current ?? "none"}) is kept on the ${where}`,
      `releases kept: ${kept.join(", ") || "none"}; pass one of them with --to`,
    );
  }
  return { ...(current ? { current } : {}), target, history };
}

/** What `rollback` records: the target's commit from its deploy record, the outcome, and a failure's code and hint. */
export function rollbackRecord(a: { target: string; current?: string | undefined; history: HistoryRecord[]; by: string; images: Record<string, string>; health: HealthOutcome; durations: Record<string, number>; failure?: PipelineError | undefined }): HistoryRecord {
  const deployed = a.history.find((h) => h.release === a.target && h.action === "deploy");
  return {
    release: a.target, action: "rollback", at: new Date().toISOString(), by: a.by, sha: deployed?.sha ?? a.target.split("-").pop() ?? "",
    images: a.images, result: a.health.ok ? "ok" : "failed", durations: a.durations,
    ...(a.current ? { previous: a.current } : {}), ...(a.health.ok ? {} : { reason: a.health.reasons.join("; ") }),
    ...(a.failure ? { code: a.failure.code, hint: a.failure.hint } : {}),
  };
}

/** How the two targets word the automatic rollback's outcome. */
export interface RollbackWords {
  /** After the previous release's id: ", which is healthy and serving". */
  healthy: string;
  /** After the previous release's id, before the reasons: ", which is NOT healthy either". */
  unhealthy: string;
  hintHealthy: string;
  hintUnhealthy: string;
}

/**
 * A deploy failed after the switch: the `rollback` step returns to `previous`
 * (`restore` does it the target's way), the history records `rolled-back`, and
 * the deploy fails with DEPLOY_ROLLED_BACK naming both releases and the reason.
 */
export async function rollBackFailedDeploy(
  s: SshSession, l: Layout, p: Progress, base: Omit<HistoryRecord, "result" | "durations">,
  previous: string, why: string, restore: () => Promise<HealthOutcome>, words: RollbackWords,
): Promise<never> {
  const back = await p.step("rollback", async (sp) => {
    const h = await restore();
    if (!h.ok) sp.fail(h.reasons.join("; "));
    return h;
  }, (h) => (h.ok ? `${previous} serving again` : "previous release unhealthy too"), { "release.id": previous }).catch((e: unknown): HealthOutcome => {
    const err = asPipelineError(e, "rolling back");
    if (err.code === "SSH_CONNECTION_LOST") throw err;
    return { ok: false, reasons: [err.message.split("\n")[0] ?? err.code] };
  });
  const err = new PipelineError(
    "DEPLOY_ROLLED_BACK",
    `release ${base.release} failed (${why}); rolled back to ${previous}${back.ok ? words.healthy : `${words.unhealthy}: ${back.reasons.join("; ")}`}`,
    back.ok ? words.hintHealthy : words.hintUnhealthy,
  );
  await record(s, l, { ...base, result: "rolled-back", reason: why, code: err.code, hint: err.hint, rolledBackTo: previous, rollbackHealthy: back.ok, durations: p.durations });
  throw err;
}
