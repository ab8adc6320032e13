/**
 * Every input that is more than a plain string is parsed here, with zod, into a
 * typed value. One call reports every problem at once as `path: message`.
 */
import { z } from "zod";
import { invalidImageReference, invalidRepositoryPath } from "./registry/images.js";
import { DEFAULTS, defaultDir } from "./defaults.js";
import { invalidEdgeTls } from "./edge/edge.js";
import { PipelineError } from "./errors.js";
import { RELEASE_ID } from "./release/release.js";

const HOST = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$/;

const hostname = z
  .string()
  .min(1, "must not be empty")
  .max(253)
  .regex(HOST, "must be a host name or an IP address (no scheme, no path, no spaces)");

/**
 * `ghcr.io`, `registry.example.com:5000`, `10.0.0.5:5443`, `[::1]:5000`: a registry is a host with an optional port,
 * everywhere one is named.
 */
export function invalidRegistryHost(s: string): string | undefined {
  if (s === "") return "must not be empty";
  if (/^[a-z]+:\/\//i.test(s) || s.includes("/"))
    return "must be a registry host such as `ghcr.io` or `registry.example.com:5000` (no scheme, no path)";
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(s);
  const host = m?.[1] ?? "";
  const port = m?.[2];
  if (!HOST.test(host) || host.length > 253) return "must be a host name or an IP address, with an optional `:port`";
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535))
    return `port ${port} is not between 1 and 65535`;
  return undefined;
}

export const registryHost = z.string().superRefine((s, ctx) => {
  const why = invalidRegistryHost(s);
  if (why) ctx.addIssue({ code: "custom", message: why });
});

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
// A known_hosts line: optional host pattern(s), key type, base64 key, optional comment.
const KNOWN_HOSTS =
  /^(?:(\S+)\s+)?((?:ssh-(?:ed25519|rsa|dss))|(?:ecdsa-sha2-nistp(?:256|384|521))|(?:sk-\S+))\s+([A-Za-z0-9+/]+={0,2})(?:\s.*)?$/;

export type HostKeyPin =
  { kind: "fingerprint"; fingerprint: string } | { kind: "key"; keyType: string; keyBase64: string };

/** Parse a host key pin: a `known_hosts` line (with or without host field) or a `SHA256:` fingerprint. */
export function parseHostKeyPin(text: string): HostKeyPin | undefined {
  const s = text.trim();
  if (FINGERPRINT.test(s)) return { kind: "fingerprint", fingerprint: s };
  const m = KNOWN_HOSTS.exec(s);
  if (m && m[2] && m[3]) return { kind: "key", keyType: m[2], keyBase64: m[3] };
  return undefined;
}

const hostKey = z
  .string()
  .min(1, "is required: pin the server's host key (a known_hosts line or a SHA256: fingerprint)")
  .refine((s) => parseHostKeyPin(s) !== undefined, {
    message:
      "must be a known_hosts line (`host ssh-ed25519 AAAA…`) or a fingerprint (`SHA256:` + 43 base64 characters)",
  })
  .transform((s) => parseHostKeyPin(s) as HostKeyPin);

const remoteDir = z
  .string()
  .min(1, "must not be empty")
  .refine((s) => !s.split("/").includes(".."), { message: "must not contain `..`" })
  // A leading `-` would read as an option to the commands that take the path.
  .refine((s) => /^(~\/|\/|[A-Za-z0-9._])/.test(s), {
    message: "must be absolute, or relative to the deploy user's home (`~/…`), and must not start with `-`",
  })
  .refine((s) => s.replace(/\/+$/, "") !== "", {
    message: "must not be `/`: give the project its own folder, e.g. `/srv/<project>`",
  })
  .refine((s) => !/[\0\n]/.test(s), { message: "must not contain NUL or newline" })
  // a preview's folder is `<dir>-pr-<n>`: a production folder named so would be taken for one
  .refine((s) => !/-pr-\d+\/*$/.test(s), {
    message: "ends like a preview's folder (`<dir>-pr-<n>`): give production a folder of another name",
  })
  // ssh exec starts in the user's home, so `~/x` becomes the relative path `x`.
  .transform((s) => (s.startsWith("~/") ? s.slice(2) : s).replace(/\/+$/, "") || ".");

/**
 * Names the pipeline derives from a project are never a project's own: a production project called `app-pr-5` would
 * be taken for preview 5 of `app` (and removed with it), `app-backup-check` for `app`'s scratch copy.
 */
export function derivedNameProblem(name: string): string | undefined {
  if (/-pr-\d+$/.test(name))
    return "ends like a preview's name (`<project>-pr-<n>`, which the pipeline gives a pull request's preview): choose another name";
  if (/-backup-check$/.test(name))
    return "ends like the scratch copy of a backup check (`<project>-backup-check`): choose another name";
  if (name.startsWith("vps-pipeline"))
    return "starts like the pipeline's own containers (`vps-pipeline-edge`): choose another name";
  return undefined;
}

const project = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]*$/,
    "must be a compose project name: lowercase letters, digits, `_` and `-`, starting with a letter or digit",
  )
  .superRefine((name, ctx) => {
    const problem = derivedNameProblem(name);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

const seconds = (max: number) =>
  z.number().int().min(1, "must be at least 1 second").max(max, `must be at most ${max} seconds`);

/** Everything `vps(...)` holds: where the server is, who we are there, where the project lives, how long to wait. */
export const vpsTargetSchema = z
  .object({
    host: hostname,
    port: z.number().int().min(1).max(65535).default(DEFAULTS.port),
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a POSIX user name (lowercase letters, digits, `_`, `-`)"),
    project,
    dir: remoteDir.optional(),
    hostKey,
    lockTimeoutSeconds: z.number().int().min(0).max(3600).default(DEFAULTS.lockTimeout),
    healthTimeoutSeconds: seconds(3600).default(DEFAULTS.healthTimeout),
    keepReleases: z
      .number()
      .int()
      .min(2, "must keep at least 2 releases, or rollback has nothing to return to")
      .default(DEFAULTS.keepReleases),
    by: z
      .string()
      .max(200, "must be at most 200 characters")
      .refine((s) => !/[\0\r\n]/.test(s), { message: "must be one line" })
      .default(""),
    edgeImage: z
      .string()
      .refine((s) => invalidImageReference(s) === undefined, {
        message: "must be an image reference such as caddy:2 or caddy:2@sha256:…",
      })
      .default(DEFAULTS.edgeImage),
    edgeTls: z
      .string()
      .superRefine((v, ctx) => {
        const why = invalidEdgeTls(v);
        if (why) ctx.addIssue({ code: "custom", message: why });
      })
      .default(DEFAULTS.edgeTls),
    resticImage: z
      .string()
      .refine((s) => invalidImageReference(s) === undefined, {
        message: "must be an image reference such as restic/restic:0.17.3",
      })
      .default(DEFAULTS.resticImage),
    keepSnapshots: z
      .number()
      .int()
      .min(1, "must keep at least 1 snapshot, or a rollback has no data to return to")
      .max(1000)
      .default(DEFAULTS.keepSnapshots),
    keepSnapshotDays: z.number().int().min(0).max(36_500).default(DEFAULTS.keepSnapshotDays),
    keepOffsiteSnapshots: z
      .number()
      .int()
      .min(1, "must keep at least 1 snapshot off-site, or a new server has nothing to be rebuilt from")
      .max(10_000)
      .default(DEFAULTS.keepOffsiteSnapshots),
    keepOffsiteSnapshotDays: z.number().int().min(0).max(36_500).default(DEFAULTS.keepOffsiteSnapshotDays),
    orchestrator: z
      .enum(["compose", "swarm"], { message: "must be compose (one VPS) or swarm (the host is a swarm manager)" })
      .default(DEFAULTS.orchestrator),
  })
  .transform((v) => ({ ...v, dir: v.dir ?? remoteDir.parse(defaultDir(v.project)) }));
export type VpsTarget = z.output<typeof vpsTargetSchema>;

/** A registry account as docker's config and HTTP basic auth can carry it. */
export const registryUser = z
  .string()
  .min(1, "must name the registry account (for GHCR: the GitHub user or `x-access-token`)")
  .refine((s) => !/[:"\\\0-\x1f]/.test(s), {
    message: "must not contain `:`, quotes, backslashes or control characters",
  });

export const registrySchema = z.object({
  host: registryHost.default(DEFAULTS.registry),
  user: registryUser,
  // `<host>/<owner>/<repo>`: where services without an `image:` are published.
  // GitHub repository names may have upper case; GHCR refuses it, so lowercase here.
  imagePrefix: z
    .string()
    .transform((p) => p.toLowerCase().replace(/\/+$/, ""))
    .superRefine((p, ctx) => {
      const [host, ...rest] = p.split("/");
      if (!host || rest.length === 0) {
        ctx.addIssue({ code: "custom", message: "must look like `ghcr.io/<owner>/<repo>`" });
        return;
      }
      const why = invalidRepositoryPath(rest.join("/"));
      if (why) ctx.addIssue({ code: "custom", message: why });
    })
    .optional(),
});
export type RegistryConfig = z.output<typeof registrySchema>;

export const gitInfoSchema = z.object({
  sha: z.string().regex(/^[0-9a-f]{7,40}$/, "must be a git commit sha (7 to 40 lowercase hex characters)"),
  ref: z
    .string()
    .regex(/^refs\/(heads|tags)\/\S+$/, "must be a full git ref such as `refs/heads/main` or `refs/tags/v1.2.3`")
    .optional(),
  defaultBranch: z.string().min(1).default(DEFAULTS.defaultBranch),
  /** The commit's time (RFC 3339): the `created` label, so the same commit always builds the same image. */
  commitTime: z
    .string()
    .refine(
      (s) =>
        /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/.test(s) &&
        !Number.isNaN(new Date(s).getTime()),
      {
        message: "must be an RFC 3339 time such as 2026-11-25T12:00:00Z (`git log -1 --format=%cI`)",
      },
    )
    .transform((s) => new Date(s))
    .optional(),
});
export type GitInfo = z.output<typeof gitInfoSchema>;

/** A release id as `status` prints it, for `rollback --to`. */
export const releaseIdSchema = z
  .string()
  .regex(RELEASE_ID, "must be a release id as `status` prints it, e.g. 20261125T212233.123Z-abc1234");

/**
 * Parse `input` with `schema`; on failure throw one INVALID_INPUT error that lists
 * every problem as `<what>.<path>: <message>`.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => {
    const path = [what, ...i.path.map(String)].join(".");
    return `${path}: ${i.message}`;
  });
  throw new PipelineError(
    "INVALID_INPUT",
    `invalid ${what}:\n  ${lines.join("\n  ")}`,
    "fix the arguments named above; nothing was sent to the server",
  );
}
