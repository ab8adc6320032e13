/**
 * The files a release carries (core/release-files.ts) on the server: uploaded
 * once per content (a file already there under its hash is not sent again),
 * several at a time on the one connection; and removed once no kept release
 * names them.
 */
import { FILES_DIR, referencedHashes, type ShippedFile } from "../core/release-files.js";
import { keptComposeFiles, listShippedFiles, removeShippedFiles, type Layout } from "../core/remote-commands.js";
import type { SshSession } from "./ssh.js";

/** Channels at once: OpenSSH allows 10 sessions per connection, and the lock and the event watch hold some. */
const PARALLEL = 6;

/** Upload what the server lacks; returns how many files were sent and how many were already there. */
export async function uploadShippedFiles(s: SshSession, l: Layout, files: readonly ShippedFile[]): Promise<{ sent: number; present: number }> {
  if (files.length === 0) return { sent: 0, present: 0 };
  const there = new Set((await s.run(listShippedFiles(l), "listing the shipped files")).split("\n").filter(Boolean).map((f) => `${FILES_DIR}/${f}`));
  const missing = files.filter((f) => !there.has(f.path));
  for (let i = 0; i < missing.length; i += PARALLEL) {
    // readable by the containers that mount them (umask 022), a secret's own file 0600
    await Promise.all(missing.slice(i, i + PARALLEL).map((f) => s.upload(`${l.dir}/${f.path}`, f.content, f.mode, "022")));
  }
  return { sent: missing.length, present: files.length - missing.length };
}

/** Remove the shipped files no kept release names any more (after the releases themselves were pruned). */
export async function pruneShippedFiles(s: SshSession, l: Layout): Promise<number> {
  const present = new Set((await s.run(listShippedFiles(l), "listing the shipped files")).split("\n").filter(Boolean).map((f) => f.split("/")[0]!));
  if (present.size === 0) return 0;
  const kept = referencedHashes(await s.run(keptComposeFiles(l), "reading the kept releases"));
  const doomed = [...present].filter((h) => !kept.has(h));
  if (doomed.length) await s.run(removeShippedFiles(l, doomed), "removing shipped files no release names");
  return doomed.length;
}
