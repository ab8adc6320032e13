import { describe, expect, it } from "vitest";
import {
  historyLine,
  parseHistory,
  releaseId,
  releasesToPrune,
  type HistoryRecord,
} from "../../.dagger/src/core/release/release.js";

describe("releases", () => {
  it("ids sort by time to the millisecond and name the commit", () => {
    const a = releaseId(new Date("2026-11-25T21:22:33.004Z"), "0123456789abcdef");
    const b = releaseId(new Date("2026-11-25T21:22:33.005Z"), "0123456789abcdef");
    expect(a).toBe("20261125T212233.004Z-0123456");
    expect([b, a].sort()).toEqual([a, b]);
  });

  it("prunes the oldest beyond `keep`, never the current or previous, never foreign entries", () => {
    const ids = [
      "20260101T000000.000Z-aaaaaaa",
      "20260102T000000.000Z-bbbbbbb",
      "20260103T000000.000Z-ccccccc",
      "20260104T000000.000Z-ddddddd",
      ".lock",
      "history.jsonl",
      "current",
      "notes",
    ];
    expect(releasesToPrune(ids, 2, ["20260104T000000.000Z-ddddddd", "20260103T000000.000Z-ccccccc"])).toEqual([
      "20260101T000000.000Z-aaaaaaa",
      "20260102T000000.000Z-bbbbbbb",
    ]);
    // the previous release is protected even when it is old
    expect(releasesToPrune(ids, 2, ["20260104T000000.000Z-ddddddd", "20260101T000000.000Z-aaaaaaa"])).toEqual([
      "20260102T000000.000Z-bbbbbbb",
    ]);
    expect(releasesToPrune(ids, 5, [])).toEqual([]);
  });

  it("history is one JSON object per line; a torn last line is skipped", () => {
    const r: HistoryRecord = {
      release: "r1",
      action: "deploy",
      result: "ok",
      at: "t",
      by: "me",
      sha: "abc",
      images: { api: "x@sha256:1" },
      durations: { pull: 1.5 },
    };
    const text =
      historyLine(r) +
      historyLine({ ...r, release: "r2", result: "rolled-back", rolledBackTo: "r1" }) +
      '{"release":"r3","act';
    expect(historyLine(r).endsWith("\n")).toBe(true);
    expect(parseHistory(text).map((h) => [h.release, h.result])).toEqual([
      ["r1", "ok"],
      ["r2", "rolled-back"],
    ]);
  });
});
