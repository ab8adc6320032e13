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
 * `http` puts the service behind the pipeline's edge (core/edge/edge.ts): upgrades
 * and rollbacks start the new container beside the old one and switch traffic
 * only once it answers (zero downtime).
 *
 *     db:
 *       volumes: [dbdata:/var/lib/postgresql/data]
 *       x-vps-pipeline:
 *         data: { volumes: [dbdata] }        # physical: stopped, copied, started
 *
 * `data` says the service owns data (core/data/data.ts): it is captured before every
 * release's jobs, and a rollback can return to it.
 */
import { z } from "zod";
import { DEFAULTS } from "../defaults.js";

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
export const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const httpSchema = z
  .object({
    /** The container port that serves HTTP. */
    port: z.number().int().min(1).max(65_535),
    /** Path the edge asks (2xx or 3xx) before the container gets traffic. */
    health: z
      .string()
      .regex(/^\/[^\s]*$/, "must be a path starting with / (no spaces)")
      .default(DEFAULTS.httpHealthPath),
    /** Also served at https://<host> (ports 80 and 443 of the VPS). */
    host: z.string().toLowerCase().regex(HOSTNAME, "must be a hostname such as app.example.com").optional(),
    /** Seconds the old container gets to finish its requests once traffic has moved. */
    drain: z.number().int().min(0).max(3_600).default(DEFAULTS.drainSeconds),
  })
  .strict();

/** A command run in the service's container: a string (run by its `sh -c`) or an argument list. */
const command = z.union([z.string().min(1, "must not be empty"), z.array(z.string()).min(1, "must not be empty")]);

const dataSchema = z
  .object({
    /** Named volumes of the service that hold its data (they must be mounted by it). */
    volumes: z
      .array(z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, "must be a named volume of the compose file"))
      .default([]),
    /**
     * physical: the service is stopped, its volumes copied, started again; logical: `dump` runs in the running service.
     */
    capture: z
      .enum(["physical", "logical"], {
        message: "must be physical (stop, copy the volumes, start) or logical (dump and restore commands)",
      })
      .default("physical"),
    /** logical: prints the data on stdout (e.g. pg_dump --clean --if-exists -U app app). */
    dump: command.optional(),
    /** logical: reads what `dump` printed on stdin (e.g. psql -U app -d app). */
    restore: command.optional(),
    /**
     * When a deploy fails and rolls back automatically: put the data back as it was before its jobs (restore) or leave
     * it (keep).
     */
    "on-failed-deploy": z.enum(["restore", "keep"], { message: "must be restore or keep" }).default("keep"),
    /** A command that must succeed in a copy of the service started on restored data (verify-backup). */
    check: command.optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (d.capture === "logical") {
      for (const k of ["dump", "restore"] as const)
        if (!d[k]) ctx.addIssue({ code: "custom", path: [k], message: "is required with capture: logical" });
    } else {
      if (d.volumes.length === 0)
        ctx.addIssue({
          code: "custom",
          path: ["volumes"],
          message: "name at least one volume of the service to copy (capture: physical)",
        });
      for (const k of ["dump", "restore"] as const)
        if (d[k])
          ctx.addIssue({
            code: "custom",
            path: [k],
            message: "goes with capture: logical; a physical capture copies the volumes",
          });
    }
    if (new Set(d.volumes).size !== d.volumes.length)
      ctx.addIssue({ code: "custom", path: ["volumes"], message: "names a volume twice" });
  });

export const serviceExtensionSchema = z
  .object({
    job: z.union([z.literal(true).transform(() => jobSchema.parse({})), jobSchema]).optional(),
    http: httpSchema.optional(),
    data: dataSchema.optional(),
  })
  .strict()
  .refine((x) => !(x.job && x.http), {
    message: "a service is either a release-phase job or an HTTP service behind the edge, not both",
  })
  .refine((x) => !(x.data && (x.job || x.http)), {
    message:
      "a service that owns data is neither a job nor behind the edge (two copies of it would write the same data)",
  });

/** A service behind the edge (`x-vps-pipeline: { http: … }`). */
export interface HttpSpec {
  service: string;
  port: number;
  health: string;
  host?: string;
  drainSeconds: number;
}

/** A service that owns data (`x-vps-pipeline: { data: … }`). */
export interface DataSpec {
  service: string;
  volumes: string[];
  capture: "physical" | "logical";
  /** argv run in the service's container */
  dump?: string[];
  restore?: string[];
  check?: string[];
  /** The automatic rollback of a failed deploy puts the data back. */
  restoreOnFailedDeploy: boolean;
}

const argv = (c: string | string[]) => (typeof c === "string" ? ["sh", "-c", c] : c);

export interface JobSpec {
  service: string;
  timeoutSeconds: number;
  onRollback: boolean;
}

/**
 * The extension of one service, or the problems with it as `path: message`
 * (`services.migrate.x-vps-pipeline.job.timeout: …`).
 */
export function parseServiceExtension(
  service: string,
  raw: unknown,
): { job?: JobSpec; http?: HttpSpec; data?: DataSpec; problems: string[] } {
  if (raw === undefined) return { problems: [] };
  const r = serviceExtensionSchema.safeParse(raw ?? {});
  if (!r.success) {
    return {
      problems: r.error.issues.map((i) => {
        const path = ["services", service, EXTENSION_KEY, ...i.path.map(String)].join(".");
        const known =
          i.code === "unrecognized_keys"
            ? " (known keys: job, http, data; job takes timeout and on-rollback; http takes port, health, host and drain; data takes volumes, capture, dump, restore, on-failed-deploy and check)"
            : "";
        return `${path}: ${i.message}${known}`;
      }),
    };
  }
  const { job, http, data } = r.data;
  return {
    ...(data
      ? {
          data: {
            service,
            volumes: data.volumes,
            capture: data.capture,
            restoreOnFailedDeploy: data["on-failed-deploy"] === "restore",
            ...(data.dump ? { dump: argv(data.dump) } : {}),
            ...(data.restore ? { restore: argv(data.restore) } : {}),
            ...(data.check ? { check: argv(data.check) } : {}),
          },
        }
      : {}),
    ...(job ? { job: { service, timeoutSeconds: job.timeout, onRollback: job["on-rollback"] } } : {}),
    ...(http
      ? {
          http: {
            service,
            port: http.port,
            health: http.health,
            ...(http.host ? { host: http.host } : {}),
            drainSeconds: http.drain,
          },
        }
      : {}),
    problems: [],
  };
}
