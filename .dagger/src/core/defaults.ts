/**
 * Every default of the module, in one place: the function signatures read them
 * (Dagger's introspector resolves `DEFAULTS.x` to its literal) and so do the
 * zod schemas, so `--help` and validation cannot disagree.
 */
export const DEFAULTS = {
  registry: "ghcr.io",
  defaultBranch: "main",
  user: "deploy",
  port: 22,
  keepReleases: 5,
  healthTimeout: 120,
  lockTimeout: 300,
  jobTimeout: 600,
  historyLines: 10,
  httpHealthPath: "/",
  drainSeconds: 10,
  /** The edge proxy's image on a real VPS (pin it by digest with `caddy:2@sha256:…`). */
  edgeImage: "caddy:2",
  /**
   * Who issues the edge's certificates for hostname routes: Let's Encrypt/ZeroSSL (`acme`) or Caddy's own CA
   * (`internal`).
   */
  edgeTls: "acme",
  /** restic, for data snapshots (pin it by digest). */
  resticImage: "restic/restic:0.17.3",
  /** Snapshots kept per data service, and the age after which they go (0: by count only). */
  keepSnapshots: 10,
  keepSnapshotDays: 0,
  /** The same for the off-site repository, applied after each copy: it is the longer memory, so it keeps more. */
  keepOffsiteSnapshots: 30,
  keepOffsiteSnapshotDays: 0,
  /** One VPS with compose; `swarm` when the host is a Docker Swarm manager. */
  orchestrator: "compose",
  /**
   * Pull request previews: how many may live, what a new one does when that many do, when an idle one goes, caps per
   * service.
   */
  previewLimit: 5,
  previewWhenFull: "evict",
  previewTtl: 168,
  previewMemory: "512m",
  previewCpus: "1",
  /** What `run` and `logs` return at most (the newest kept), and what a release-phase job prints live. */
  maxOutputBytes: 1048576,
} as const;

/** Below this much free space under the deploy folder, a pull can fill the disk halfway through. */
export const MIN_FREE_MIB = 512;

/** Where a project lives on the VPS when `--dir` is not given. */
export function defaultDir(project: string): string {
  return `~/production/${project}`;
}
