/**
 * Preview stacks: a pull request's release deployed as its own project on the
 * production VPS, behind the shared edge at `pr-<n>.<domain>`. Here: their
 * settings and names, their `.env`, the list `status` shows, and which
 * previews go when there are too many or they are too old. (What makes a
 * release safe to run beside production: core/preview/preview-release.ts.)
 */
import type { LockPlace } from "../server/server-commands.js";

export interface PreviewSettings {
  /** Previews are served at `pr-<n>.<domain>` (a wildcard DNS record points `*.<domain>` at the VPS). */
  domain: string;
  /** Live previews per project at most. */
  limit: number;
  /** With `limit` previews live, a new one removes the one pushed longest ago (`evict`) or is refused (`refuse`). */
  whenFull: "evict" | "refuse";
  /** A preview not pushed to for this many hours is removed by the next preview or preview-down (0: never). */
  ttlHours: number;
  /** Caps for every service that sets none (compose `deploy.resources.limits`). */
  memory: string;
  cpus: string;
  /**
   * A service of the file run in each preview as its last release-phase job (a seed for its empty database); "" for
   * none.
   */
  seed: string;
}

export const previewProject = (project: string, pr: number): string => `${project}-pr-${pr}`;
export const previewDir = (dir: string, pr: number): string => `${dir.replace(/\/+$/, "")}-pr-${pr}`;

/**
 * The lock every preview of a project is deployed and removed under, in production's folder (never deleted, unlike a
 * preview's own): the limit is decided, and the preview it let in deployed, before the next one counts them.
 */
export function previewsLock(prodDir: string): LockPlace {
  const dir = prodDir.replace(/\/+$/, "");
  return {
    dir,
    releases: `${dir}/.releases`,
    lock: `${dir}/.releases/.previews.lock`,
    holder: `${dir}/.releases/.previews.lock-holder`,
  };
}

/**
 * What makes a preview one: a mark we set, never its name (a project called `app-pr-5` is not `app`'s preview 5).
 * The file in its folder names production's project and the pull request; the label is on every container, volume
 * and network of it. Listing, expiry, eviction and removal act on marked things only.
 */
export const PREVIEW_MARK_FILE = ".vps-preview";
export const PREVIEW_LABEL = "io.vps-pipeline.preview";
export const previewMark = (project: string, pr: number): string => `${project}/pr-${pr}`;
export const previewMarkFile = (project: string, pr: number): string => `project=${project}\npr=${pr}\n`;

/** The variables a preview's `.env` gets first, for its own values (and the compose file) to use. */
export interface PreviewVars {
  VPS_PREVIEW_PR: string;
  VPS_PREVIEW_URL: string;
  VPS_PREVIEW_HOST: string;
}

/**
 * The preview's `.env`: its variables first, then the preview env secret with `${VPS_PREVIEW_PR}`,
 * `${VPS_PREVIEW_URL}` and `${VPS_PREVIEW_HOST}` replaced by their values (production's `.env` is never used).
 */
export function previewEnv(given: string | undefined, vars: PreviewVars): string {
  const head = Object.entries(vars)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n");
  const body = (given ?? "").replace(/\$\{(VPS_PREVIEW_(?:PR|URL|HOST))\}/g, (m, k: keyof PreviewVars) => vars[k] ?? m);
  return `${head}\n${body}${body && !body.endsWith("\n") ? "\n" : ""}`;
}

/** A live preview of a project, as `status` lists it. */
export interface PreviewInfo {
  pr: number;
  project: string;
  /** The current release, or "" when none became current (a first preview deploy that failed). */
  release: string;
  url: string;
  /** The last deploy of it (the last push), ISO time. */
  lastDeploy: string;
  /** Disk it uses: its containers' own layers and its volumes, in bytes. */
  bytes: number;
}

/**
 * What `listPreviews` printed (`preview <n> <release|-> <epoch> <url|->` per line); sizes are added by previewsFrom.
 */
export function parsePreviews(out: string, project: string): PreviewInfo[] {
  return out
    .split("\n")
    .flatMap((line) => {
      const m = /^preview (\d+) (\S+) (\d+) (\S+)$/.exec(line.trim());
      if (!m) return [];
      const pr = Number(m[1]);
      return [
        {
          pr,
          project: previewProject(project, pr),
          release: m[2] === "-" ? "" : m[2]!,
          lastDeploy: new Date(Number(m[3]) * 1000).toISOString(),
          bytes: 0,
          url: m[4] === "-" ? "" : m[4]!,
        },
      ];
    })
    .sort((a, b) => a.pr - b.pr);
}

/**
 * Before preview `pr` is deployed: which others go for being older than the TTL, and which ones
 * go, the longest idle first (or why the new one is refused) when the limit is reached. `pr` itself never goes: it is
 * being pushed to.
 */
export function previewsToRemove(
  live: readonly PreviewInfo[],
  pr: number,
  s: Pick<PreviewSettings, "limit" | "whenFull" | "ttlHours">,
  now: Date,
): { expired: PreviewInfo[]; evicted: PreviewInfo[]; refused?: string } {
  const others = live.filter((p) => p.pr !== pr);
  const expired =
    s.ttlHours > 0 ? others.filter((p) => now.getTime() - Date.parse(p.lastDeploy) > s.ttlHours * 3_600_000) : [];
  const left = others
    .filter((p) => !expired.includes(p))
    .sort((a, b) => Date.parse(a.lastDeploy) - Date.parse(b.lastDeploy));
  const isNew = !live.some((p) => p.pr === pr);
  if (!isNew || left.length < s.limit) return { expired, evicted: [] };
  if (s.whenFull === "refuse")
    return {
      expired,
      evicted: [],
      refused: `${left.length} previews are live (${left.map((p) => `#${p.pr}`).join(", ")}), the limit is ${s.limit}`,
    };
  return { expired, evicted: left.slice(0, left.length - s.limit + 1) };
}
