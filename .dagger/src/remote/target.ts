/** What every remote operation needs to know about the VPS and the project on it. */
import type { EdgeOptions } from "./edge.js";
import type { SshOptions } from "./ssh.js";
import type { Tracing } from "./trace.js";

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
  /** Where the spans of this operation go (default: the global OpenTelemetry tracer, under the caller's span). */
  tracing?: Tracing;
}

/** Credentials the VPS pulls with, for one registry; they live only in a throwaway config during the pull. */
export interface RegistryLogin {
  host: string;
  user: string;
  token: string;
}
