/**
 * What a backup repository holds for a project, read from restic's own list
 * (`restic snapshots --json`) rather than from the server's records: on a new
 * server the records are gone, the repository (copied back from off-site) is
 * all there is. Data snapshots and release records carry their meaning in
 * their tags (remote/data/data.ts writes them).
 */
import { PipelineError } from "../errors.js";
import { findSnapshot, type SnapshotRecord } from "./data.js";

interface ResticSnapshot {
  id?: string;
  time?: string;
  paths?: string[];
  tags?: string[];
}

/**
 * A release record: the release's folder, shipped files and history, kept with the data (core/data/data-commands.ts
 * captureRecord).
 */
export interface ReleaseRecord {
  id: string;
  release: string;
  at: string;
}

export interface Catalog {
  data: SnapshotRecord[];
  records: ReleaseRecord[];
}

const tag = (tags: readonly string[], key: string): string | undefined =>
  tags.find((t) => t.startsWith(`${key}=`))?.slice(key.length + 1);

/** restic's list as records; `offsite`: they came from (so are kept in) the off-site repository. */
export function parseCatalog(json: string, offsite: boolean): Catalog {
  let list: unknown;
  try {
    list = JSON.parse(json.trim() || "[]");
  } catch {
    throw new PipelineError(
      "RESTORE_FAILED",
      `restic's list of snapshots is not JSON: ${json.slice(0, 120)}`,
      "run the restic image's `snapshots --json` by hand to see what it prints",
    );
  }
  const out: Catalog = { data: [], records: [] };
  for (const x of Array.isArray(list) ? (list as ResticSnapshot[]) : []) {
    const tags = x.tags ?? [];
    const release = tag(tags, "release");
    if (!x.id || !/^[0-9a-f]{64}$/.test(x.id) || !release || !x.time) continue;
    if (tags.includes("record")) {
      out.records.push({ id: x.id, release, at: new Date(x.time).toISOString() });
      continue;
    }
    const service = tag(tags, "service");
    if (!service) continue;
    // snapshots from before the capture tag: a dump is one file named for its service
    const capture = tag(tags, "capture") ?? ((x.paths ?? []).some((p) => p.endsWith(".dump")) ? "logical" : "physical");
    out.data.push({
      id: x.id,
      service,
      capture: capture === "logical" ? "logical" : "physical",
      release,
      before: tag(tags, "before") ?? "manual",
      at: new Date(x.time).toISOString(),
      bytes: 0,
      seconds: 0,
      ...(offsite ? { offsite: true } : {}),
    });
  }
  out.data.sort((a, b) => a.at.localeCompare(b.at));
  return out;
}

/**
 * The release a new server is rebuilt as: the one whose data the chosen snapshot
 * is (default: the newest snapshot), with the newest record kept of it.
 */
export function chooseRebuild(
  c: Catalog,
  snapshot?: string,
): { release: string; record: ReleaseRecord; chosen: SnapshotRecord } {
  if (c.data.length === 0)
    throw new PipelineError(
      "RESTORE_FAILED",
      "the backup holds no data snapshot of this project; nothing was changed",
      "check --project and the repository (--backup-offsite); snapshots are taken by `backup` and before each release's jobs",
    );
  const chosen = snapshot ? findSnapshot(c.data, snapshot, "in the backup")[0]! : c.data[c.data.length - 1]!;
  const records = c.records.filter((r) => r.release === chosen.release).sort((a, b) => a.at.localeCompare(b.at));
  const record = records[records.length - 1];
  if (!record)
    throw new PipelineError(
      "RESTORE_FAILED",
      `the backup has no record of release ${chosen.release} (its compose file, .env and files) to rebuild with; nothing was changed`,
      "snapshots taken by a version of the pipeline before records were kept cannot rebuild a server alone: deploy the release, then `restore --snapshot`",
    );
  return { release: chosen.release, record, chosen };
}
