/**
 * Data a release owns (`x-vps-pipeline: { data: … }`, core/compose/extension.ts): the
 * checks of its declaration against the compose file, the snapshot records kept
 * beside the release history, and the choices made from them (which snapshot a
 * rollback returns to, what a capture must cover). Snapshots live in a restic
 * repository (core/data/data-commands.ts); the records hold no secret and let status
 * list them without the repository's password.
 */
import type { DataSpec } from "../compose/extension.js";
import { PipelineError } from "../errors.js";

/** What of a release's shape (core/compose/compose.ts) the choices below read. */
interface Shape {
  images: Record<string, string>;
  jobs: readonly unknown[];
  data: DataSpec[];
}

/** The named volumes a service mounts (`name:/path[:mode]` or `{ type: volume, source: name }`). */
export function mountedVolumes(svc: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const v of Array.isArray(svc.volumes) ? svc.volumes : []) {
    if (typeof v === "string") {
      const src = v.split(":")[0] ?? "";
      if (src && !src.startsWith(".") && !src.startsWith("/") && !src.startsWith("~") && v.includes(":")) out.push(src);
    } else if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      if ((o.type === undefined || o.type === "volume") && typeof o.source === "string") out.push(o.source);
    }
  }
  return out;
}

/**
 * Why a data declaration does not fit its service: each volume must be declared at the top level and mounted by the
 * service.
 */
export function dataProblems(
  where: string,
  svc: Record<string, unknown>,
  spec: DataSpec,
  topVolumes: Record<string, unknown>,
): string[] {
  const problems: string[] = [];
  const mounted = mountedVolumes(svc);
  spec.volumes.forEach((v, i) => {
    if (!(v in (topVolumes ?? {})))
      problems.push(
        `${where}.x-vps-pipeline.data.volumes.${i}: \`${v}\` is not a named volume of the file; declare it under the top-level \`volumes:\``,
      );
    else if (!mounted.includes(v))
      problems.push(
        `${where}.x-vps-pipeline.data.volumes.${i}: \`${v}\` is not mounted by this service; mount it (\`volumes: ["${v}:/path"]\`) or name the volume the service writes`,
      );
  });
  return problems;
}

/** One snapshot, as recorded in `.releases/snapshots.jsonl` after restic made it. */
export interface SnapshotRecord {
  /**
   * restic's snapshot id: the hash of its content, its checksum (64 hex; the short form backup printed until the
   * retention pass that follows).
   */
  id: string;
  service: string;
  capture: "physical" | "logical";
  /** The release that was current while the data was captured: restoring it goes with returning to that release. */
  release: string;
  /** Why it was taken: the release whose jobs came next, or `manual` (backup). */
  before: string;
  at: string;
  bytes: number;
  seconds: number;
  /** physical: how long the service was stopped. */
  stoppedSeconds?: number;
  /** Copied to the off-site repository. */
  offsite?: boolean;
  /** When check-backup last restored it into a scratch copy and its check passed. */
  verified?: string;
}

export function parseSnapshots(text: string): SnapshotRecord[] {
  return text
    .split("\n")
    .filter((x) => x.trim())
    .flatMap((line) => {
      try {
        const r = JSON.parse(line) as SnapshotRecord;
        return typeof r.id === "string" && /^[0-9a-f]{8,64}$/.test(r.id) ? [r] : [];
      } catch {
        return [];
      }
    });
}

/**
 * The data specs a capture before `next` covers: those of the release that runs now (its containers hold the data),
 * else the next one's for services both have.
 */
export function specsToCapture(current: Shape | undefined, next: Shape): DataSpec[] {
  if (!current) return [];
  const out = new Map(current.data.map((d) => [d.service, d]));
  for (const d of next.data) if (!out.has(d.service) && d.service in current.images) out.set(d.service, d);
  return [...out.values()];
}

/**
 * Whether a deploy from `current` to `next` must capture first: its jobs may
 * change the data, or a data service's image or definition changes.
 */
export function mustCapture(current: Shape | undefined, next: Shape, specs: readonly DataSpec[]): boolean {
  if (!current || specs.length === 0) return false;
  if (next.jobs.length > 0) return true;
  return specs.some((d) => current.images[d.service] !== next.images[d.service]);
}

/**
 * The snapshots that put a service's data back as it was while `release` was
 * current: the newest of each data service taken while it was current (any
 * release: the newest of each).
 */
export function snapshotsFor(
  records: readonly SnapshotRecord[],
  release: string | undefined,
  services: readonly string[],
): SnapshotRecord[] {
  return services.flatMap((service) => {
    const mine = records.filter((r) => r.service === service && (release === undefined || r.release === release));
    return mine.length ? [mine.reduce((a, b) => (a.at >= b.at ? a : b))] : [];
  });
}

/**
 * The snapshot named by the user: a prefix of at least 8 hex digits, of exactly one record (`where` the records are,
 * for the error).
 */
export function findSnapshot(
  records: readonly SnapshotRecord[],
  id: string,
  where = "on this server",
): SnapshotRecord[] {
  if (!/^[0-9a-f]{8,64}$/.test(id))
    throw new PipelineError(
      "INVALID_INPUT",
      `snapshot: \`${id}\` is not a snapshot id`,
      "give the id status lists (at least 8 hex digits)",
    );
  const found = records.filter((r) => r.id.startsWith(id));
  if (found.length === 0)
    throw new PipelineError(
      "INVALID_INPUT",
      `snapshot: no snapshot ${id} ${where}`,
      `snapshots ${where}: ${records.map((x) => `${x.id.slice(0, 12)} (${x.service}, ${x.at})`).join(", ") || "none"}`,
    );
  const ids = new Set(found.map((r) => r.id));
  if (ids.size > 1)
    throw new PipelineError(
      "INVALID_INPUT",
      `snapshot: ${id} matches ${ids.size} snapshots`,
      "give more of its digits",
    );
  return found;
}
