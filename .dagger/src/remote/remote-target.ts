/**
 * What every remote operation is given, and what deploy and rollback return:
 * types only, so any file of remote/ can import them without a circle.
 */
import type { OffsiteRepository } from "../core/data/offsite.js";
import { DEFAULTS } from "../core/defaults.js";
import type { EdgeTls } from "../core/edge/edge.js";
import type { SshOptions } from "./ssh.js";
import type { Tracing } from "./trace.js";

/** The edge in front of services with `x-vps-pipeline.http`. */
export interface EdgeOptions {
  /** The edge's image (`caddy:2`, pinnable by digest). */
  image: string;
  /** Who signs certificates for this project's hostname routes (each route keeps its own). */
  tls: EdgeTls;
}

/** Data snapshots (services with `x-vps-pipeline.data`): restic in a container on the server. */
export interface BackupOptions {
  /** The restic repository's password (a secret: it never reaches a command line or a file). */
  password: string;
  /** restic's image. */
  image: string;
  /** Snapshots kept per data service. */
  keep: number;
  /** Also drop snapshots older than this many days (0: by count only). */
  keepDays: number;
  /** A second repository off the VPS every snapshot is copied to. */
  offsite?: OffsiteRepository;
  /** Its retention, the same rules as keep/keepDays, after each copy (defaults: DEFAULTS.keepOffsiteSnapshots…). */
  offsiteKeep?: number;
  offsiteKeepDays?: number;
}

export type { OffsiteRepository } from "../core/data/offsite.js";

export const DEFAULT_EDGE: EdgeOptions = { image: DEFAULTS.edgeImage, tls: DEFAULTS.edgeTls };

export interface RemoteTarget {
  ssh: SshOptions;
  /** Deploy directory, absolute or relative to the deploy user's home. */
  dir: string;
  project: string;
  lockTimeoutSeconds: number;
  /** compose on one VPS (default), or a Docker Swarm whose manager is the host (`docker stack deploy`). */
  orchestrator?: "compose" | "swarm";
  /** The edge in front of services with `x-vps-pipeline.http` (default: caddy:2, certificates from ACME). */
  edge?: EdgeOptions;
  /** Data snapshots; required when a release declares data. */
  backup?: BackupOptions;
  /** Where the spans of this operation go (default: the global OpenTelemetry tracer, under the caller's span). */
  tracing?: Tracing;
}

/** Credentials the VPS pulls with, for one registry; they live only in a throwaway config during the pull. */
export interface RegistryLogin {
  host: string;
  user: string;
  token: string;
}

/** What deploy and rollback return. */
export interface DeployResult {
  release: string;
  previous?: string;
  /** service → image of the release now running. */
  images: Record<string, string>;
  durations: Record<string, number>;
  /** Parts of the steps, where a step times them (the switch behind the edge: `switch.ready`, `switch.route`…). */
  parts?: Record<string, number>;
}
