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

export const serviceExtensionSchema = z
  .object({
    job: z.union([z.literal(true).transform(() => jobSchema.parse({})), jobSchema]).optional(),
  })
  .strict();

export interface JobSpec {
  service: string;
  timeoutSeconds: number;
  onRollback: boolean;
}

/**
 * The extension of one service, or the problems with it as `path: message`
 * (`services.migrate.x-vps-pipeline.job.timeout: …`).
 */
export function parseServiceExtension(service: string, raw: unknown): { job?: JobSpec; problems: string[] } {
  if (raw === undefined) return { problems: [] };
  const r = serviceExtensionSchema.safeParse(raw ?? {});
  if (!r.success) {
    return {
      problems: r.error.issues.map((i) => {
        const path = ["services", service, EXTENSION_KEY, ...i.path.map(String)].join(".");
        const known = i.code === "unrecognized_keys" ? " (known keys: job; job takes timeout and on-rollback)" : "";
        return `${path}: ${i.message}${known}`;
      }),
    };
  }
  const job = r.data.job;
  return job ? { job: { service, timeoutSeconds: job.timeout, onRollback: job["on-rollback"] }, problems: [] } : { problems: [] };
}
