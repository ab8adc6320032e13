/**
 * The two brackets every remote operation sits in: one SSH connection, always
 * closed; and, for those that change the server, the deploy lock, always let go.
 */
import { PipelineError } from "../core/errors.js";
import {
  LOCK_BUSY_EXIT,
  LOCK_GONE_EXIT,
  holdLock,
  readOptionalFile,
  type LockPlace,
} from "../core/server/server-commands.js";
import { type Argv } from "../core/shell.js";
import type { Progress } from "./progress.js";
import { connect, type ExecResult, type SshOptions, type SshSession } from "./ssh.js";

/** Open one connection (`open`: ssh2's, or a scripted session in the unit tests), run `body`, close it. */
export async function withSession<T>(
  ssh: SshOptions,
  p: Progress,
  body: (s: SshSession) => Promise<T>,
  open: (o: SshOptions) => Promise<SshSession> = connect,
): Promise<T> {
  const s = await p.step("connect", () => open(ssh), undefined, {
    "vps.host": ssh.host,
    "vps.port": ssh.port,
    "vps.user": ssh.user,
  });
  try {
    return await body(s);
  } finally {
    s.close();
  }
}

/**
 * Take the deploy lock (waiting up to `waitSeconds`), run `body`, let go. The
 * lock is a `flock` held by an SSH channel: a killed deploy cannot leave it
 * behind. When busy past the wait, fail naming the holder.
 */
export async function withLock<T>(
  s: SshSession,
  l: LockPlace,
  p: Progress,
  waitSeconds: number,
  holder: string,
  body: () => Promise<T>,
): Promise<T> {
  const lock = await p.step(
    "lock",
    () => acquire(s, l, waitSeconds, holder),
    (held) => held.waitedFor,
  );
  try {
    return await body();
  } finally {
    await lock.release();
  }
}

interface HeldLock {
  waitedFor: string;
  release(): Promise<void>;
}

/**
 * Start a command that prints LOCKED once it holds a `flock` and keeps it while
 * its stdin stays open. Resolves with a release function once held, or with the
 * command's result when it ended without the lock (busy, or failed).
 */
export async function holdWhileOpen(
  s: SshSession,
  command: Argv,
  firstLine?: string,
): Promise<{ release: () => Promise<void> } | ExecResult> {
  let seen = "";
  let onLocked: () => void = () => {};
  const locked = new Promise<"locked">((r) => (onLocked = () => r("locked")));
  const cmd = s.start(command, {
    keepStdinOpen: true,
    ...(firstLine !== undefined ? { stdin: `${firstLine}\n` } : {}),
    onStdout: (chunk) => {
      seen += chunk;
      if (seen.includes("LOCKED")) onLocked();
    },
  });
  const first = await Promise.race([locked, cmd.result]);
  if (first !== "locked") return first;
  return {
    release: async () => {
      cmd.closeStdin();
      await cmd.result.catch(() => undefined);
    },
  };
}

async function acquire(s: SshSession, l: LockPlace, waitSeconds: number, holder: string): Promise<HeldLock> {
  const t0 = performance.now();
  const first = await holdWhileOpen(s, holdLock(l, waitSeconds, holder));
  if ("release" in first) {
    const waited = (performance.now() - t0) / 1000;
    return { waitedFor: waited > 1 ? `waited ${waited.toFixed(1)}s for another deploy` : "", release: first.release };
  }
  if (first.code === LOCK_BUSY_EXIT) {
    const who = (await s.exec(readOptionalFile(l.holder))).stdout.trim() || "unknown";
    throw new PipelineError(
      "LOCK_BUSY",
      `another deploy holds the lock on ${l.dir} (waited ${waitSeconds}s): ${who}`,
      "wait for it to finish, or raise the lock timeout; if that deploy is gone, its lock went with its SSH connection",
    );
  }
  if (first.code === LOCK_GONE_EXIT)
    throw new PipelineError(
      "LOCK_FAILED",
      `${l.dir} was removed while this waited for its lock (${l.lock}): nothing was done`,
      "it was taken down by the one holding the lock (preview-down, say); run again if it should exist",
    );
  throw new PipelineError(
    "LOCK_FAILED",
    `cannot take the deploy lock in ${l.releases}: ${first.stderr.trim()}`,
    `the deploy user must be able to create ${l.dir}, and the VPS needs \`flock\` (package util-linux)`,
  );
}
