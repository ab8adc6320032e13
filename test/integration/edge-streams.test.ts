/**
 * Long-lived connections behind the shared edge (the real Caddy on the test bed): a live-prices app's WebSockets
 * and event streams stay open through everything another project does to the edge's config (an upgrade, a rollback,
 * maintenance, a preview up and down, a first deploy on a hostname), and a project's own streams end only at its own
 * rollover, after its new release answers. (A first deploy that publishes a new host port still replaces the edge
 * container and closes every stream: docs/edge.md, "Long-lived connections".)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { setMaintenance } from "../../.dagger/src/remote/edge/edge-admin.js";
import { previewRelease } from "../../.dagger/src/core/preview/preview-release.js";
import { previewDir, previewEnv, previewProject } from "../../.dagger/src/core/preview/preview.js";
import { deployPreview, previewDown } from "../../.dagger/src/remote/preview/preview.js";
import { rollback } from "../../.dagger/src/remote/rollback.js";
import { auditSecrets } from "../testbed/audit.js";
import {
  bed,
  deployRequest,
  freshProject,
  releaseCompose,
  sshOptions,
  testEdge,
  testPreviews,
} from "../testbed/bed.js";
import { openStreams, ownRollover, streamsCompose, type Streams } from "../testbed/streams.js";

auditSecrets();
const LIVE = "st-live";
const OTHER = "st-other";
/** Holds a hostname from the start, so that the edge publishes 80 and 443 before any stream opens. */
const HOSTED = "st-host";
/** Deployed for the first time while the streams are open, on a hostname. */
const NEWCOMER = "st-new";
const LIVE_PORT = 18301;
const OTHER_PORT = 18302;
const DOMAIN = "vps-testbed.internal";
const PREVIEWS = testPreviews;

const liveRequest = (v: "v1" | "v2") =>
  deployRequest(LIVE, LIVE_PORT, { compose: streamsCompose(v), env: `LIVE_PORT=${LIVE_PORT}\n` });
const other = { ssh: sshOptions(), dir: `production/${OTHER}`, project: OTHER, lockTimeoutSeconds: 60, edge: testEdge };
const onHost = (project: string) =>
  deployRequest(project, 0, { compose: streamsCompose("v1", { host: `${project}.${DOMAIN}` }), env: "" });
/** OTHER's pull request `pr` as a preview, as the preview workflow deploys it. */
function previewOfOther(pr: number) {
  const p = previewRelease(releaseCompose("v1"), pr, { ...PREVIEWS, project: OTHER });
  const env = previewEnv("GOLD_API_KEY=not-a-real-key\n", {
    VPS_PREVIEW_PR: String(pr),
    VPS_PREVIEW_URL: p.url!,
    VPS_PREVIEW_HOST: new URL(p.url!).host,
  });
  return deployPreview(other, pr, PREVIEWS, {
    ...deployRequest(previewProject(OTHER, pr), 0, { dir: previewDir(other.dir, pr), compose: p.compose, env }),
    confined: p.hostPaths,
  });
}

let streams: Streams | undefined;
const projects = [LIVE, OTHER, HOSTED, NEWCOMER, previewProject(OTHER, 1)];
beforeAll(async () => {
  for (const p of projects) freshProject(p);
  // every port and 80/443 are on the edge before the streams open: what follows changes routes only
  await deploy(liveRequest("v1"));
  await deploy(deployRequest(OTHER, OTHER_PORT));
  await deploy(onHost(HOSTED));
}, 300_000);
afterAll(() => {
  streams?.close();
  for (const p of projects) freshProject(p);
});

describe("long-lived connections behind the edge", () => {
  it("another project's upgrade, rollback, maintenance toggles, preview up and down, and a first deploy on a hostname close none of 10 WebSockets and 10 event streams", async () => {
    streams = await openStreams(bed.vps.hostIp, LIVE_PORT, 10, 10);
    expect(streams.all.every((s) => s.ticks > 0)).toBe(true);
    await deploy(deployRequest(OTHER, OTHER_PORT, { compose: releaseCompose("v2") }));
    expect(streams.lost().map((s) => s.kind)).toEqual([]);
    await rollback({ ...other, healthTimeoutSeconds: 30, log: () => {}, by: "vitest" });
    expect(streams.lost().map((s) => s.kind)).toEqual([]);
    await setMaintenance(other, true);
    await setMaintenance(other, false);
    expect(streams.lost().map((s) => s.kind)).toEqual([]);
    await previewOfOther(1);
    expect(streams.lost().map((s) => s.kind)).toEqual([]);
    await previewDown({ ...other, log: () => {}, by: "vitest" }, { prs: [1] });
    expect(streams.lost().map((s) => s.kind)).toEqual([]);
    await deploy(onHost(NEWCOMER));
    await new Promise((r) => setTimeout(r, 1000));
    // open and still ticking, from the release they were opened on
    expect(streams.lost().map((s) => s.kind)).toEqual([]);
    expect(new Set(streams.all.map((s) => s.version))).toEqual(new Set(["v1"]));
  }, 300_000);

  it("a project's own streams end at its rollover, after its new release answers, and new ones open on it", async () => {
    const own = streams ?? (await openStreams(bed.vps.hostIp, LIVE_PORT, 10, 10));
    const { firstAnswered, closedAt } = await ownRollover(own, bed.vps.hostIp, LIVE_PORT, "v2", () =>
      deploy(liveRequest("v2")),
    );
    expect(firstAnswered).toBeGreaterThan(0);
    expect(closedAt.filter((t) => t === undefined)).toEqual([]);
    // none closed before the edge sent requests to v2 (the 50 ms poll's slack)
    expect(Math.min(...(closedAt as number[]))).toBeGreaterThanOrEqual(firstAnswered - 60);
    const next = await openStreams(bed.vps.hostIp, LIVE_PORT, 2, 2);
    try {
      expect(next.all.map((s) => s.version)).toEqual(["v2", "v2", "v2", "v2"]);
    } finally {
      next.close();
    }
  }, 300_000);
});
