/**
 * From the module's arguments to the core's checked values: everything parsed
 * with zod (every problem at once, before anything goes over the network), and
 * every `Secret.plaintext()` of the module read here and nowhere else.
 */
import type { Directory, Secret } from "@dagger.io/dagger";
import {
  gitInfoSchema,
  parseInput,
  registryHost,
  registrySchema,
  registryUser,
  releaseIdSchema,
  vpsTargetSchema,
  type GitInfo,
  type VpsTarget,
} from "../core/config.js";
import type { ComposeStack } from "../core/compose/compose.js";
import { PipelineError } from "../core/errors.js";
import { builtImagesRegistry, invalidImageReference } from "../core/registry/images.js";
import { DEFAULTS } from "../core/defaults.js";
import { backupPasswordValue, envFileValue, passphraseValue, tokenValue } from "../core/secret-values.js";
import { parseProbe, type ProbeSpec } from "../core/release/report.js";
import type { OffsiteRepository, RegistryLogin, RemoteTarget } from "../remote/remote-target.js";
import { offsiteCa, offsiteKind, offsiteKnownHosts, s3Credentials } from "../core/data/offsite.js";
import { previewDir, previewProject, type PreviewSettings } from "../core/preview/preview.js";
import { HOSTNAME } from "../core/compose/extension.js";
import type { LogOptions } from "../core/day-two/logs.js";
import { z } from "zod";

/** What `vps(...)` was given, as the Vps object holds it. */
export interface VpsArgs {
  host: string;
  hostKey: string;
  sshKey: Secret;
  sshKeyPassphrase?: Secret | undefined;
  user: string;
  port: number;
  project: string;
  dir: string;
  lockTimeout: number;
  healthTimeout: number;
  keepReleases: number;
  by: string;
  edgeImage: string;
  edgeTls: string;
  orchestrator: string;
  backupPassword?: Secret | undefined;
  resticImage: string;
  keepSnapshots: number;
  keepSnapshotDays: number;
  keepOffsiteSnapshots: number;
  keepOffsiteSnapshotDays: number;
  backupOffsite: string;
  backupOffsiteKey?: Secret | undefined;
  backupOffsiteHostKey: string;
}

/** The preview settings `vps(...)` was given. */
export interface PreviewArgs {
  previewDomain: string;
  previewEnv?: Secret | undefined;
  previewLimit: number;
  previewWhenFull: string;
  previewTtl: number;
  previewMemory: string;
  previewCpus: string;
  previewSeed: string;
}

export interface VpsInputs extends RemoteTarget {
  healthTimeoutSeconds: number;
  keepReleases: number;
  by: string;
}

/** The off-site repository, when one is set: all three settings, checked; the key read last. */
async function offsite(a: VpsArgs): Promise<{ offsite?: OffsiteRepository }> {
  if (!a.backupOffsite) {
    if (a.backupOffsiteKey || a.backupOffsiteHostKey)
      throw new PipelineError(
        "INVALID_INPUT",
        "backupOffsite: --backup-offsite-key and --backup-offsite-host-key go with --backup-offsite",
        "give the off-site repository (sftp:user@host:/path or s3:https://host/bucket/path), or drop them",
      );
    return {};
  }
  const kind = offsiteKind(a.backupOffsite);
  // checked before any secret is read
  const knownHosts = kind === "sftp" ? offsiteKnownHosts(a.backupOffsite, a.backupOffsiteHostKey) : "";
  const ca = kind === "s3" ? offsiteCa(a.backupOffsiteHostKey) : "";
  if (!a.backupOffsiteKey)
    throw new PipelineError(
      "INVALID_INPUT",
      kind === "sftp"
        ? "backupOffsiteKey: the off-site repository needs an SSH private key"
        : "backupOffsiteKey: the S3 repository needs its access key (AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=… lines)",
      kind === "sftp"
        ? "pass --backup-offsite-key=env:BACKUP_SSH_KEY (a key that can reach only the backups)"
        : "pass --backup-offsite-key=env:BACKUP_S3_KEY (a key of its own, allowed only on the backups' bucket)",
    );
  const secret = await a.backupOffsiteKey.plaintext();
  if (kind === "s3") return { offsite: { kind, repository: a.backupOffsite, credentials: s3Credentials(secret), ca } };
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(secret))
    throw new PipelineError(
      "INVALID_INPUT",
      "backupOffsiteKey: is not a private key (no -----BEGIN … PRIVATE KEY----- line)",
      "give the private key file's content (OpenSSH or PEM), not its .pub",
    );
  return { offsite: { kind, repository: a.backupOffsite, sshKey: secret, knownHosts } };
}

/** Check the VPS settings (all at once), then read the SSH key. */
export async function vpsInputs(a: VpsArgs): Promise<VpsInputs> {
  const v: VpsTarget = parseInput(
    vpsTargetSchema,
    {
      host: a.host,
      hostKey: a.hostKey,
      user: a.user,
      port: a.port,
      project: a.project,
      ...(a.dir ? { dir: a.dir } : {}),
      lockTimeoutSeconds: a.lockTimeout,
      healthTimeoutSeconds: a.healthTimeout,
      keepReleases: a.keepReleases,
      by: a.by,
      edgeImage: a.edgeImage,
      edgeTls: a.edgeTls,
      orchestrator: a.orchestrator,
      resticImage: a.resticImage,
      keepSnapshots: a.keepSnapshots,
      keepSnapshotDays: a.keepSnapshotDays,
      keepOffsiteSnapshots: a.keepOffsiteSnapshots,
      keepOffsiteSnapshotDays: a.keepOffsiteSnapshotDays,
    },
    "vps",
  );
  const privateKey = await a.sshKey.plaintext();
  const passphrase = a.sshKeyPassphrase ? passphraseValue(await a.sshKeyPassphrase.plaintext()) : undefined;
  // Dagger functions do not see who called them: without --by, name the key that deployed, never the function's
  // container.
  const { publicKeyFingerprint } = await import("../remote/ssh.js"); // ssh2: loaded by the functions that connect, only
  const key = publicKeyFingerprint(privateKey, passphrase);
  return {
    ssh: {
      host: v.host,
      port: v.port,
      user: v.user,
      hostKey: v.hostKey,
      privateKey,
      ...(passphrase !== undefined ? { passphrase } : {}),
    },
    dir: v.dir,
    project: v.project,
    lockTimeoutSeconds: v.lockTimeoutSeconds,
    healthTimeoutSeconds: v.healthTimeoutSeconds,
    keepReleases: v.keepReleases,
    by: v.by || `unnamed deployer with key ${key ?? "(unreadable)"} (pass --by)`,
    edge: { image: v.edgeImage, tls: v.edgeTls },
    orchestrator: v.orchestrator,
    ...(a.backupPassword
      ? {
          backup: {
            password: backupPasswordValue(await a.backupPassword.plaintext()),
            image: v.resticImage,
            keep: v.keepSnapshots,
            keepDays: v.keepSnapshotDays,
            offsiteKeep: v.keepOffsiteSnapshots,
            offsiteKeepDays: v.keepOffsiteSnapshotDays,
            ...(await offsite(a)),
          },
        }
      : {}),
  };
}

const previewSchema = z.object({
  pr: z.number().int("must be a whole number").min(1, "must be a pull request's number (1 or more)").max(999_999_999),
  domain: z
    .string()
    .min(
      1,
      "is required for a preview: the domain whose wildcard record (*.<domain>) points at the VPS, e.g. preview.example.com",
    )
    .toLowerCase()
    .regex(HOSTNAME, "must be a domain such as preview.example.com"),
  limit: z.number().int().min(1, "must allow at least one preview").max(100),
  whenFull: z.enum(["evict", "refuse"], { message: "must be evict (remove the preview pushed longest ago) or refuse" }),
  ttlHours: z
    .number()
    .int()
    .min(0)
    .max(8760, "must be at most a year (8760 h); 0 keeps previews until their pull request closes"),
  memory: z.string().regex(/^\d+(\.\d+)?[bkmg]$/i, "must be a size such as 512m or 1g"),
  seed: z.string().regex(/^$|^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, "must be a service name of the compose file"),
  cpus: z
    .string()
    .regex(/^(\d+(\.\d+)?)$/, "must be a number of CPUs such as 0.5 or 1")
    .refine((c) => Number(c) > 0, { message: "must be more than 0" }),
});

/** The preview settings of `vps(...)` for pull request `pr`, checked (every problem at once). */
export function previewSettings(a: PreviewArgs, pr: number): PreviewSettings & { pr: number } {
  const whenFull = a.previewWhenFull as PreviewSettings["whenFull"];
  return parseInput(
    previewSchema,
    {
      pr,
      domain: a.previewDomain,
      limit: a.previewLimit,
      whenFull,
      ttlHours: a.previewTtl,
      memory: a.previewMemory,
      cpus: a.previewCpus,
      seed: a.previewSeed,
    },
    "vps.preview",
  );
}

/** The checked pull request number alone (preview-down, verify: no domain needed). */
export function prNumber(pr: number): number {
  return parseInput(previewSchema.pick({ pr: true }), { pr }, "preview").pr;
}

/**
 * The target of preview `pr`: production's settings, its own project and folder. A swarm has no edge to serve previews.
 */
export function previewTarget(v: VpsInputs, pr: number): VpsInputs {
  if (v.orchestrator === "swarm")
    throw new PipelineError(
      "INVALID_INPUT",
      "pr: previews run on one VPS with compose, behind its edge; a swarm has no edge",
      "deploy previews to a compose VPS (another vps(...) with its own --host)",
    );
  // a preview takes no snapshot (core/preview/preview-release.ts drops data declarations)
  const { backup: _, ...production } = v;
  return { ...production, project: previewProject(v.project, pr), dir: previewDir(v.dir, pr) };
}

const serviceName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, "must be a service name of the compose file");
const maxBytes = z
  .number()
  .int()
  .min(1024, "must be at least 1024")
  .max(64 * 1024 * 1024, "must be at most 64 MiB");

const logSchema = z.object({
  services: z.array(serviceName),
  since: z
    .string()
    .regex(
      /^(\d+(\.\d+)?[smh]|\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?$/,
      "must be a duration such as 10m or 2h, or a time such as 2026-12-01T08:00:00Z",
    )
    .optional(),
  tail: z.number().int().min(1, "must be at least 1").max(100_000),
  maxBytes,
});

/**
 * The notification webhook's URL (a secret: it carries a token), trimmed of the newline a file gives it; never echoed.
 */
export async function notifyUrlValue(secret: Secret | undefined): Promise<string | undefined> {
  if (!secret) return undefined;
  const url = (await secret.plaintext()).trim();
  let ok = false;
  try {
    ok = /^https?:$/.test(new URL(url).protocol);
  } catch {
    ok = false;
  }
  if (!ok)
    throw new PipelineError(
      "INVALID_INPUT",
      "notifyUrl: is not an http(s) URL (its value is not shown: it is a secret)",
      "pass the incoming webhook's whole URL, e.g. --notify-url=env:NOTIFY_URL holding https://hooks.slack.com/services/…",
    );
  return url;
}

/** `--platforms`: `os/arch[/variant]` each, once each; empty stays empty (the engine's own platform). */
export function platformList(platforms: readonly string[]): string[] {
  const bad = platforms.filter((p) => !/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/.test(p));
  if (bad.length)
    throw new PipelineError(
      "INVALID_INPUT",
      `platforms: ${bad.map((b) => `\`${b}\``).join(", ")} is not os/arch[/variant]`,
      "write each as linux/amd64, linux/arm64 or linux/arm/v7",
    );
  if (new Set(platforms).size !== platforms.length)
    throw new PipelineError("INVALID_INPUT", "platforms: names a platform twice", "list each platform once");
  return [...platforms];
}

/** `logs`' arguments, checked. */
export function logOptions(o: { services: string[]; since: string; tail: number; maxBytes: number }): LogOptions {
  const v = parseInput(logSchema, { ...o, ...(o.since ? {} : { since: undefined }) }, "logs");
  return { services: v.services, tail: v.tail, maxBytes: v.maxBytes, ...(v.since ? { since: v.since } : {}) };
}

const runSchema = z
  .object({
    service: serviceName,
    // one shell line: a string, so the CLI never splits it at a comma
    cmd: z.string(),
    argv: z.string(),
    timeoutSeconds: z.number().int().min(1).max(86_400),
    maxBytes,
  })
  .superRefine((o, ctx) => {
    const given = [o.cmd.trim() !== "", o.argv.trim() !== ""].filter(Boolean).length;
    if (given !== 1)
      ctx.addIssue({
        code: "custom",
        path: ["cmd"],
        message:
          given === 0
            ? 'give the command to run: --cmd="./manage.py migrate" (a shell line) or --argv=\'["./manage.py","migrate"]\' (the words as is)'
            : "give --cmd or --argv, not both",
      });
  });

const argvWords = z
  .array(z.string(), { error: 'must be a JSON array of strings, e.g. --argv=\'["psql","-c","select 1, 2"]\'' })
  .min(1, "must name a program: at least one word");

/** `run`'s arguments, checked: `--cmd` is one shell line (run by `sh -c`), `--argv` a JSON array of words. */
export function oneOffOptions(o: {
  service: string;
  cmd: string;
  argv: string;
  timeoutSeconds: number;
  maxBytes: number;
}): { service: string; command: string[]; shell: boolean; timeoutSeconds: number; maxBytes: number } {
  const v = parseInput(runSchema, o, "run");
  const rest = { service: v.service, timeoutSeconds: v.timeoutSeconds, maxBytes: v.maxBytes };
  if (v.cmd.trim()) return { ...rest, command: [v.cmd], shell: true };
  let words: unknown;
  try {
    words = JSON.parse(v.argv);
  } catch {
    words = v.argv;
  }
  return { ...rest, command: parseInput(z.object({ argv: argvWords }), { argv: words }, "run").argv, shell: false };
}

/** The registry everything is pushed to and pulled from: `host` or `host:port`. */
export function checkRegistry(host: string): string {
  return parseInput(registryHost, host, "registry");
}

/**
 * Credentials for `registry` (empty: the release's, decided on the server), when a token was given. The user is
 * required with a token.
 */
export async function registryLogin(
  registry: string,
  user: string,
  token: Secret | undefined,
  what: string,
): Promise<RegistryLogin | undefined> {
  if (!token) return undefined;
  const host = registry ? checkRegistry(registry) : "";
  const u = parseInput(registryUser, user, what);
  return {
    host,
    user: u,
    token: tokenValue(await token.plaintext(), what === "pullUser" ? "pullToken" : "registryToken"),
  };
}

export function checkImagePrefix(imagePrefix: string): string | undefined {
  if (!imagePrefix) return undefined;
  return parseInput(registrySchema.pick({ imagePrefix: true }), { imagePrefix }, "registry").imagePrefix;
}

/**
 * The registry the tokens are for: --registry when given (every built image
 * must be there), else the one registry the built images are on, else ghcr.io.
 */
export function stackRegistry(stack: ComposeStack, registry: string): string {
  const explicit = registry ? checkRegistry(registry) : undefined;
  return builtImagesRegistry(stack.builds, explicit) ?? explicit ?? DEFAULTS.registry;
}

export function gitInfo(
  sha: string,
  more: { ref?: string | undefined; defaultBranch?: string; commitTime?: string | undefined } = {},
): GitInfo {
  return parseInput(
    gitInfoSchema,
    {
      sha,
      ...(more.ref ? { ref: more.ref } : {}),
      ...(more.defaultBranch ? { defaultBranch: more.defaultBranch } : {}),
      ...(more.commitTime ? { commitTime: more.commitTime } : {}),
    },
    "git",
  );
}

export function releaseToGo(to: string): string | undefined {
  return to ? parseInput(releaseIdSchema, to, "rollback.to") : undefined;
}

export function probes(specs: readonly string[]): ProbeSpec[] {
  return specs.map((p) => {
    try {
      return parseProbe(p);
    } catch (e) {
      throw new PipelineError(
        "INVALID_INPUT",
        `probes: ${(e as Error).message}`,
        "write each probe as URL[=STATUS][*RETRIES]",
      );
    }
  });
}

export type Format = "text" | "json" | "markdown";

export function outputFormat(format: string): Format {
  if (format === "text" || format === "json" || format === "markdown") return format;
  throw new PipelineError(
    "INVALID_INPUT",
    `format: \`${format}\` is not one of text, json, markdown`,
    "pass --format=text, --format=json or --format=markdown",
  );
}

export async function composeText(source: Directory, composeFile: string): Promise<string> {
  const read = async (file: string, by?: string) => {
    try {
      return await source.file(file).contents();
    } catch (e) {
      throw new PipelineError(
        "COMPOSE_NOT_FOUND",
        by
          ? `cannot read ${file} (named by ${by}'s extends or include) in the source directory`
          : `cannot read ${composeFile} in the source directory`,
        by
          ? "name the file relative to the compose file that pulls it in, inside --source"
          : "pass --compose-file with the production compose file's path inside --source",
        { cause: e },
      );
    }
  };
  const files = new Map([[composeFile, await read(composeFile)]]);
  // extends and include name other repository files: read them all (each round, those just found), then resolve
  const [{ composeFilesWanted, resolveComposeText }, { COMPOSE_YAML }] = await Promise.all([
    import("../core/compose/resolve.js"),
    import("../core/compose/compose.js"),
  ]);
  for (let want = composeFilesWanted(composeFile, files, COMPOSE_YAML); want.length;) {
    for (const [f, text] of await Promise.all(want.map(async (f) => [f, await read(f, composeFile)] as const)))
      files.set(f, text);
    want = composeFilesWanted(composeFile, files, COMPOSE_YAML);
  }
  return resolveComposeText(composeFile, files.get(composeFile)!, (f) => files.get(f), COMPOSE_YAML);
}

export async function loadStack(
  source: Directory,
  composeFile: string,
  imagePrefix?: string,
  buildVars?: ReadonlyMap<string, string>,
): Promise<ComposeStack> {
  // yaml: loaded by the functions that read the stack, only
  const { parseComposeStack } = await import("../core/compose/compose.js");
  const text = await composeText(source, composeFile);
  return parseComposeStack(text, composeFile, imagePrefix, buildVars, buildVars !== undefined);
}

/** The production `.env`, when one was given. */
export async function envText(envFile: Secret | undefined, what = "envFile"): Promise<string | undefined> {
  if (!envFile) return undefined;
  const text = envFileValue(await envFile.plaintext(), what);
  const { dotenvProblem } = await import("../core/compose/env-file.js");
  // compose would refuse it on the server, after the upload: refused here (the message names a line, never a value)
  const problem = dotenvProblem(text);
  if (problem)
    throw new PipelineError(
      "INVALID_INPUT",
      `${what}: compose cannot read this .env (${problem}); nothing was uploaded`,
      "write each line as KEY=value (no space in the key; quote a value that has spaces or #); `docker compose config` shows the same",
    );
  return text;
}

/** `NAME=value` pairs into a map; an entry without `=` is an input error naming it. */
export function keyValues(pairs: readonly string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf("=");
    if (eq <= 0)
      throw new PipelineError(
        "INVALID_INPUT",
        `${what}: \`${p}\` is not NAME=value`,
        `write each ${what} as NAME=value`,
      );
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

/** The edge's new image (`edge --image`), checked like `--edge-image`. */
export function edgeImageValue(image: string): string {
  const why = invalidImageReference(image);
  if (why !== undefined)
    throw new PipelineError(
      "INVALID_INPUT",
      `image: ${why}`,
      "give an image reference such as caddy:2 or caddy:2@sha256:…",
    );
  return image;
}
