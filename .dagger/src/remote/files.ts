/**
 * The files a release carries (core/release/release-files.ts) on the server: the sets
 * the server lacks (a set per content hash) sent as one tar stream on one
 * channel and moved into place whole; and removed once no kept release names them.
 */
import { FILES_DIR, referencedHashes, type ShippedFile } from "../core/release/release-files.js";
import {
  extractShipped,
  keptComposeFiles,
  listShippedSets,
  removeShippedFiles,
} from "../core/release/release-commands.js";
import { type Layout } from "../core/server/server-commands.js";
import { tarArchive } from "../core/release/tar.js";
import type { SshSession } from "./ssh.js";

/** The content hash a shipped file's path names (`.releases/files/<hash>/…`). */
const setOf = (f: ShippedFile) => f.path.slice(FILES_DIR.length + 1).split("/")[0]!;

async function presentSets(s: SshSession, l: Layout): Promise<Set<string>> {
  return new Set(
    (await s.run(listShippedSets(l), "listing the shipped files"))
      .split("\n")
      .map((x) => x.trim())
      .filter((x) => x && !x.startsWith(".")),
  );
}

/** Upload what the server lacks; returns how many files were sent and how many were already there. */
export async function uploadShippedFiles(
  s: SshSession,
  l: Layout,
  files: readonly ShippedFile[],
): Promise<{ sent: number; present: number }> {
  if (files.length === 0) return { sent: 0, present: 0 };
  const there = await presentSets(s, l);
  const missing = files.filter((f) => !there.has(setOf(f)));
  if (missing.length > 0) {
    const archive = tarArchive(
      missing.map((f) => ({ path: f.path.slice(FILES_DIR.length + 1), content: f.content, mode: f.mode })),
    );
    await s.run(extractShipped(l), "unpacking the files the release carries", {
      stdin: archive,
      hint: "the VPS needs `tar`, and the deploy user must own the deploy folder (and the disk must not be full)",
    });
  }
  return { sent: missing.length, present: files.length - missing.length };
}

/** Remove the shipped files no kept release names any more (after the releases themselves were pruned). */
export async function pruneShippedFiles(s: SshSession, l: Layout): Promise<number> {
  const present = await presentSets(s, l);
  if (present.size === 0) return 0;
  const kept = referencedHashes(await s.run(keptComposeFiles(l), "reading the kept releases"));
  const doomed = [...present].filter((h) => !kept.has(h));
  if (doomed.length) await s.run(removeShippedFiles(l, doomed), "removing shipped files no release names");
  return doomed.length;
}
