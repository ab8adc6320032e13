/**
 * What is built and published is a commit, not a working tree: when the source carries its `.git`, the files come
 * from the commit named by --git-sha in that repository (uncommitted and ignored files never reach an image or the
 * server); a sha the repository does not have is refused. A plain directory (no `.git`) is used as it is, and the
 * output says so.
 */
import type { Directory } from "@dagger.io/dagger";
import { PipelineError } from "../core/errors.js";

export interface CommittedSource {
  source: Directory;
  /** The full sha the files come from (undefined: a plain directory). */
  commit?: string;
  notes: string[];
}

const listed = (paths: string[]) => `${paths.slice(0, 5).join(", ")}${paths.length > 5 ? `, … (${paths.length})` : ""}`;

export async function committedSource(source: Directory, sha: string): Promise<CommittedSource> {
  const root = (await source.entries()).map((e) => e.replace(/\/$/, ""));
  if (!root.includes(".git"))
    return {
      source,
      notes: [
        `the source has no .git: its files are used as they are, under ${sha.slice(0, 7)} (pass the repository's checkout to publish exactly that commit)`,
      ],
    };
  const repo = source.asGit();
  const ref = repo.commit(sha);
  const tree = ref.tree({ discardGitDir: true });
  let commit: string;
  try {
    // the engine answers any sha with itself; only checking the commit out says whether the repository has it
    await tree.entries();
    commit = await ref.commit();
  } catch (e) {
    throw new PipelineError(
      "INVALID_INPUT",
      `gitSha: ${sha} is not a commit of the source's repository`,
      "pass the sha of a commit the checkout has (git rev-parse HEAD); fetch it first when it was made elsewhere",
      { cause: e },
    );
  }
  const notes: string[] = [];
  const head = await repo
    .head()
    .commit()
    .catch(() => "");
  if (head && head !== commit)
    notes.push(`the checkout is at ${head.slice(0, 7)}; ${commit.slice(0, 7)} is used, as --git-sha says`);
  const changes = repo.uncommitted();
  if (!(await changes.isEmpty())) {
    const [added, modified, removed] = await Promise.all([
      changes.addedPaths(),
      changes.modifiedPaths(),
      changes.removedPaths(),
    ]);
    notes.push(
      `uncommitted changes are not used (only commit ${commit.slice(0, 7)} is): ${listed([...modified, ...added, ...removed])}`,
    );
  }
  return { source: tree, commit, notes };
}
