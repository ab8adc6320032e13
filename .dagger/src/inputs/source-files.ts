/**
 * Reading, from the source directory, the files a release carries
 * (core/release/release-files.ts decides which): a file's text, or a directory's
 * regular files. A symlink is refused: it may point outside the source.
 */
import { ExistsType, type Directory } from "@dagger.io/dagger";
import { PipelineError } from "../core/errors.js";
import type { FileRef, Found } from "../core/release/release-files.js";

export async function readSourceFiles(source: Directory, refs: readonly FileRef[]): Promise<Map<string, Found>> {
  const out = new Map<string, Found>();
  const paths = [...new Set(refs.map((r) => r.sourcePath).filter((p): p is string => p !== undefined))];
  for (const path of paths) {
    const field = refs.find((r) => r.sourcePath === path)!.field;
    if (await source.exists(path, { expectedType: ExistsType.SymlinkType, doNotFollowSymlinks: true })) {
      throw new PipelineError(
        "COMPOSE_INVALID",
        `${field}: ${path} is a symlink in the repository; a release ships files, never links (one may point outside the source)`,
        "point the compose file at the file itself",
      );
    }
    if (await source.exists(path, { expectedType: ExistsType.RegularType })) {
      out.set(path, { type: "file", content: await source.file(path).contents() });
    } else if (await source.exists(path, { expectedType: ExistsType.DirectoryType })) {
      const dir = source.directory(path);
      const files: { path: string; content: string }[] = [];
      for (const entry of (await dir.glob("**/*")).map((e) => e.replace(/\/$/, ""))) {
        if (await dir.exists(entry, { expectedType: ExistsType.SymlinkType, doNotFollowSymlinks: true })) {
          throw new PipelineError(
            "COMPOSE_INVALID",
            `${field}: ${path}/${entry} is a symlink in the repository; a release ships files, never links`,
            "replace the link with the file, or keep the directory on the server",
          );
        }
        if (await dir.exists(entry, { expectedType: ExistsType.RegularType }))
          files.push({ path: entry, content: await dir.file(entry).contents() });
      }
      out.set(path, { type: "dir", files: files.sort((a, b) => a.path.localeCompare(b.path)) });
    }
  }
  return out;
}
