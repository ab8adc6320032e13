/**
 * `x-vps-pipeline:`, the one key under a service of the production compose file
 * where everything the pipeline reads beyond compose itself lives. Compose
 * ignores `x-` keys, so the file stays a plain compose file.
 *
 *     migrate:
 *       image: ghcr.io/acme/gold/api
 *       command: ["./migrate"]
 *       x-vps-pipeline:
 *         job: { timeout: 300 }     # a release-phase job (`job: true` takes the defaults)
 *
 *     web:
 *       ports: ["8080:8000"]
 *       x-vps-pipeline:
 *         http: { port: 8000, health: /healthz, host: gold.example.com, drain: 10 }
 *
 * `http` puts the service behind the pipeline's edge (core/edge.ts): upgrades
 * and rollbacks start the new container beside the old one and switch traffic
 * only once it answers (zero downtime).
 */
import { z } from "zod";
import { DEFAULTS } from "./defaults.js";

export const EXTENSION_KEY = "x-vps-pipeline";

/** Compose profile the release gives its jobs, so that `up` never starts them. */
export const JOB_PROFILE = "vps-pipeline-jobs";

const jobSchema = z
  .object({
    /** Seconds the job may run before it counts as failed. */
    timeout: z.number().int().min(1).max(86_400).default(DEFAULTS.jobTimeout),
    /** Run it again when a rollback returns to this release (default: no). */
    "on-rollback": z.boolean().default(false),
  })
  .strict();

/** A hostname the edge serves over HTTPS: letters, digits, dots and dashes, at least one dot. */
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const httpSchema = z
  .object({
    /** The container port that serves HTTP. */
    port: z.number().int().min(1).max(65_535),
    /** Path the edge asks (2xx or 3xx) before the container gets traffic. */
    health: z.string().regex(/^\/[^\s]*$/, "must be a path starting with / (no spaces)").default(DEFAULTS.httpHealthPath),
    /** Also served at https://<host> (ports 80 and 443 of the VPS). */
    host: z.string().toLowerCase().regex(HOSTNAME, "must be a hostname such as app.example.com").optional(),
    /** Seconds the old container gets to finish its requests once traffic has moved. */
    drain: z.number().int().min(0).max(3_600).default(DEFAULTS.drainSeconds),
  })
  .strict();

export const serviceExtensionSchema = z
  .object({
    job: z.union([z.literal(true).transform(() => jobSchema.parse({})), jobSchema]).optional(),
    http: httpSchema.optional(),
  })
  .strict()
  .refine((x) => !(x.job && x.http), { message: "a service is either a release-phase job or an HTTP service behind the edge, not both" });

/** A service behind the edge (`x-vps-pipeline: { http: … }`). */
export interface HttpSpec {
  service: string;
  port: number;
  health: string;
  host?: string;
  drainSeconds: number;
}

export interface JobSpec {
  service: string;
  timeoutSeconds: number;
  onRollback: boolean;
}

/**
 * The extension of one service, or the problems with it as `path: message`
 * (`services.migrate.x-vps-pipeline.job.timeout: …`).
 */
export function parseServiceExtension(service: string, raw: unknown): { job?: JobSpec; http?: HttpSpec; problems: string[] } {
  if (raw === undefined) return { problems: [] };
  const r = serviceExtensionSchema.safeParse(raw ?? {});
  if (!r.success) {
    return {
      problems: r.error.issues.map((i) => {
        const path = ["services", service, EXTENSION_KEY, ...i.path.map(String)].join(".");
        const known = i.code === "unrecognized_keys" ? " (known keys: job, http; job takes timeout and on-rollback; http takes port, health, host and drain)" : "";
        return `${path}: ${i.message}${known}`;
      }),
    };
  }
  const { job, http } = r.data;
  return {
    ...(job ? { job: { service, timeoutSeconds: job.timeout, onRollback: job["on-rollback"] } } : {}),
    ...(http ? { http: { service, port: http.port, health: http.health, ...(http.host ? { host: http.host } : {}), drainSeconds: http.drain } } : {}),
    problems: [],
  };
}
