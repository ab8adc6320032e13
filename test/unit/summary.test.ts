import { describe, expect, it } from "vitest";
import { formatStatus, markdownRelease, markdownStatus } from "../../.dagger/src/core/release/summary.js";
import type { HistoryRecord } from "../../.dagger/src/core/release/release.js";

const failed: HistoryRecord = {
  release: "20261127T000039.908Z-3333333",
  action: "deploy",
  result: "rolled-back",
  at: "2026-11-27T00:00:39Z",
  by: "octocat run 42",
  sha: "3".repeat(40),
  images: {},
  reason: "api unhealthy",
  code: "DEPLOY_ROLLED_BACK",
  hint: "look at docker compose logs",
  durations: {},
};

describe("job summaries", () => {
  it("show a release with its images and where the time went", () => {
    const md = markdownRelease({
      action: "rollback",
      release: "r2",
      previous: "r3",
      images: { api: "ghcr.io/a/api@sha256:1" },
      durations: { connect: 0.1, switch: 2 },
    });
    expect(md).toMatch(/rolled back to `r2` \(previous: `r3`\)/);
    expect(md).toContain("| api | `ghcr.io/a/api@sha256:1` |");
    expect(md).toContain("connect 0.10s · switch 2.00s — 2.10s in all");
  });

  it("show the last failure's code, reason and hint, and kept releases whose images are gone", () => {
    const view = {
      release: "r2",
      services: [],
      releases: [
        { id: "r1", current: false, missing: ["ghcr.io/a/api@sha256:1"] },
        { id: "r2", current: true, missing: [] },
      ],
      history: [failed],
    };
    expect(markdownStatus(view)).toMatch(
      /> `DEPLOY_ROLLED_BACK`: api unhealthy\n>\n> hint: look at docker compose logs/,
    );
    expect(markdownStatus(view)).toContain("| `r1` | 1 missing |");
    expect(formatStatus(view)).toMatch(/r1 {2}images missing \(a rollback pulls them back\)/);
    expect(formatStatus(view)).toMatch(/\* r2 {2}images present/);
  });
});
