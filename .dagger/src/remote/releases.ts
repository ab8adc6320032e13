/**
 * The kept releases and the history, the same on one VPS and on a swarm:
 * reading them, appending to the history (failures before the lock too),
 * which release a rollback returns to, and pruning.
 */
import { PipelineError, asPipelineError } from "../core/errors.js";
import { appendHistory, listReleases, removeReleases } from "../core/release/release-commands.js";
import {
  layout,
  readCurrentRelease,
  readOptionalFile,
  readReleaseEnv,
  releaseDir,
  type Layout,
} from "../core/server/server-commands.js";
import {
  RELEASE_ID,
  earlyFailureRecord,
  historyLine,
  parseHistory,
  releasesToPrune,
  rollbackTarget,
  type HistoryRecord,
} from "../core/release/release.js";
import { Progress } from "./progress.js";
import { withSession } from "./session.js";
import type { SshOptions, SshSession } from "./ssh.js";
import { defaultTracing } from "./trace.js";

export async function readCurrent(s: SshSession, l: Layout): Promise<string | undefined> {
  const id = (await s.run(readOptionalFile(l.current), "reading the current release")).trim();
  return id === "" ? undefined : id;
}

/** The current release and its compose file (its shape decides what a rollback needs), in one round trip. */
export async function readCurrentWithCompose(s: SshSession, l: Layout): Promise<{ id?: string; compose: string }> {
  const out = await s.run(readCurrentRelease(l), "reading the current release");
  const nl = out.indexOf("\n");
  const id = (nl < 0 ? out : out.slice(0, nl)).trim();
  return id ? { id, compose: nl < 0 ? "" : out.slice(nl + 1) } : { compose: "" };
}

/** A kept release's compose file ("" when it is not there). */
export function releaseCompose(s: SshSession, l: Layout, id: string): Promise<string> {
  return s.run(readOptionalFile(`${releaseDir(l, id)}/docker-compose.yml`), `reading release ${id}`);
}

/**
 * The `.env` release `id` ran with: its own copy, else the server's (a release deployed without one used that).
 * Its images and replica counts may be variables of it. Held in memory only, never printed.
 */
export async function releaseEnv(s: SshSession, l: Layout, id: string): Promise<string> {
  return s.run(readReleaseEnv(l, id), `reading release ${id}'s .env`);
}

export async function record(s: SshSession, l: Layout, r: HistoryRecord): Promise<void> {
  await s.run(appendHistory(l), "appending to the release history", { stdin: historyLine(r) });
}

/**
 * Run a deploy whose failures before it holds the lock (preflight, a busy or
 * broken lock) are recorded in the history all the same; under the lock the
 * deploy records its own outcome (`locked` marks the moment). A lost
 * connection is not recorded: there is no one to record it to.
 */
export async function recordingEarlyFailures<T>(
  s: SshSession,
  l: Layout,
  p: Progress,
  who: { sha: string; by: string; images: Record<string, string> },
  body: (locked: () => void) => Promise<T>,
): Promise<T> {
  let held = false;
  try {
    return await body(() => (held = true));
  } catch (e) {
    const err = asPipelineError(e, "starting the deploy");
    if (!held && err.code !== "SSH_CONNECTION_LOST") {
      await record(
        s,
        l,
        earlyFailureRecord({
          now: new Date(),
          ...who,
          code: err.code,
          message: err.message,
          hint: err.hint,
          durations: p.durations,
        }),
      ).catch(() => undefined);
    }
    throw e;
  }
}

/**
 * Record a deploy that failed before it reached the server (a tag, the publish): best effort, over its own connection.
 */
export async function recordFailureBeforeDeploy(
  ssh: SshOptions,
  dir: string,
  who: { sha: string; by: string },
  e: unknown,
): Promise<void> {
  const err = asPipelineError(e, "preparing the deploy");
  const p = new Progress(() => undefined, "deploy", defaultTracing());
  await withSession(ssh, p, (s) =>
    record(
      s,
      layout(dir),
      earlyFailureRecord({ now: new Date(), ...who, code: err.code, message: err.message, hint: err.hint }),
    ),
  ).catch(() => undefined);
}

/**
 * Remove old releases; best effort: a folder it cannot remove (a file a container made as root) never fails a good
 * deploy.
 */
export async function prune(
  s: SshSession,
  l: Layout,
  keep: number,
  protect: (string | undefined)[],
): Promise<{ removed: string[]; error?: string }> {
  const ids = (await s.run(listReleases(l), "listing releases")).split("\n").map((x) => x.trim());
  const doomed = releasesToPrune(ids, keep, protect);
  if (doomed.length === 0) return { removed: [] };
  const r = await s.exec(removeReleases(l, doomed));
  return r.code === 0
    ? { removed: doomed }
    : { removed: doomed, error: r.stderr.trim().split("\n")[0] ?? `exit code ${r.code}` };
}

/** Fails unless something was ever deployed to the folder (`where`: "VPS" or "manager"). */
export async function requireDeployed(s: SshSession, l: Layout, where: string): Promise<void> {
  if ((await s.exec(["test", "-d", l.releases])).code !== 0) {
    throw new PipelineError(
      "RELEASE_NOT_FOUND",
      `nothing was ever deployed to ${l.dir} on the ${where}`,
      "check --project and --dir; deploy first",
    );
  }
}

/** The release `rollback` returns to: `to`, or the newest good one older than the current; it must be kept. */
export async function chooseRollbackTarget(
  s: SshSession,
  l: Layout,
  to: string | undefined,
  where: string,
): Promise<{ current?: string; target: string; history: HistoryRecord[] }> {
  const current = await readCurrent(s, l);
  const kept = (await s.run(listReleases(l), "listing releases"))
    .split("\n")
    .filter((x) => RELEASE_ID.test(x))
    .sort();
  const history = parseHistory(await s.run(readOptionalFile(l.history), "reading the history"));
  const target = to ?? rollbackTarget(history, kept, current);
  if (!target || !kept.includes(target)) {
    throw new PipelineError(
      "RELEASE_NOT_FOUND",
      target
        ? `release ${target} is not kept on the ${where}`
        : `no good release older than the current one (${current ?? "none"}) is kept on the ${where}`,
      `releases kept: ${kept.join(", ") || "none"}; pass one of them with --to`,
    );
  }
  return { ...(current ? { current } : {}), target, history };
}
