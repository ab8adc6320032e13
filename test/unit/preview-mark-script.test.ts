/**
 * The check preview-down makes before it removes anything, run by a real shell: a folder carrying the mark is
 * the preview; one without it is someone else's (refused); no folder at all is a pull request closed without a
 * live preview (nothing to do, no red job).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NOT_MARKED_EXIT, NO_PREVIEW_EXIT, checkPreviewMark } from "../../.dagger/src/core/preview/preview-commands.js";
import { PREVIEW_MARK_FILE, previewMarkFile } from "../../.dagger/src/core/preview/preview.js";

const code = (argv: string[]) => spawnSync(argv[0]!, argv.slice(1)).status;

describe("the preview mark, checked on the server", () => {
  it("tells a marked preview, another project's folder and no folder apart", () => {
    const home = mkdtempSync(join(tmpdir(), "mark-"));
    const marked = join(home, "app-pr-5");
    mkdirSync(marked);
    writeFileSync(join(marked, PREVIEW_MARK_FILE), previewMarkFile("app", 5));
    expect(code(checkPreviewMark(marked, "app", 5))).toBe(0);
    // the same folder is not preview 6, nor another project's preview 5
    expect(code(checkPreviewMark(marked, "app", 6))).toBe(NOT_MARKED_EXIT);
    expect(code(checkPreviewMark(marked, "other", 5))).toBe(NOT_MARKED_EXIT);
    const twin = join(home, "app-pr-7");
    mkdirSync(twin);
    expect(code(checkPreviewMark(twin, "app", 7))).toBe(NOT_MARKED_EXIT);
    expect(code(checkPreviewMark(join(home, "app-pr-8"), "app", 8))).toBe(NO_PREVIEW_EXIT);
  });
});
