/**
 * The one error type the pipeline throws on purpose. `code` is one of a closed
 * set (tests and users grep for it; docs/troubleshooting.md has a row
 * for each), `hint` says what to do next, `cause` keeps the original.
 */
export const ERROR_CODES = [
  // inputs and the compose file: nothing was sent anywhere
  "INVALID_INPUT",
  "SETTINGS_INVALID",
  "SOURCE_IS_MODULE",
  "COMPOSE_NOT_FOUND",
  "COMPOSE_INVALID",
  "DIGEST_MISSING",
  "BAD_DIGEST",
  // building and publishing
  "BUILD_FAILED",
  "TAG_TAKEN",
  // registries
  "REGISTRY_UNAUTHORIZED",
  "REGISTRY_DENIED",
  "REGISTRY_INSUFFICIENT_SCOPE",
  "REGISTRY_NOT_FOUND",
  "REGISTRY_UNREACHABLE",
  "REGISTRY_CERT_UNTRUSTED",
  "REGISTRY_INSECURE",
  "REGISTRY_FAILED",
  // SSH
  "SSH_KEY_INVALID",
  "SSH_AUTH_FAILED",
  "SSH_UNREACHABLE",
  "SSH_FAILED",
  "HOST_KEY_MISMATCH",
  "SSH_CONNECTION_LOST",
  // the VPS
  "REMOTE_COMMAND_FAILED",
  "REMOTE_OUTPUT_INVALID",
  "LOCK_BUSY",
  "LOCK_FAILED",
  "DOCKER_UNREACHABLE",
  "COMPOSE_V2_MISSING",
  "DISK_LOW",
  "SWARM_NOT_MANAGER",
  // the edge (zero-downtime proxy)
  "EDGE_PORT_TAKEN",
  "EDGE_CONFLICT",
  "EDGE_FAILED",
  "PREVIEW_LIMIT",
  "PREVIEW_NOT_OURS",
  "PREVIEW_ESCAPE",
  // data: snapshots and their restore
  "BACKUP_FAILED",
  "BACKUP_NO_SPACE",
  "BACKUP_PASSWORD",
  "RESTORE_FAILED",
  "BACKUP_CHECK_FAILED",
  // deploys and their outcome
  "PLATFORM_MISSING",
  "PULL_FAILED",
  "JOB_FAILED",
  "DEPLOY_FAILED",
  "DEPLOY_ROLLED_BACK",
  "RELEASE_NOT_FOUND",
  "ROLLBACK_FAILED",
  "VERIFY_FAILED",
  "DOCTOR_FAILED",
  "CHECK_FAILED",
  "RUN_FAILED",
  // a bug or a surprise of ours: never expected, always explained
  "INTERNAL",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * The exit code a failed call ends with, one per class of failure, so that a script can tell an input to fix from
 * a server to look at without reading the text (docs/troubleshooting.md). 1 stays the CLI's own (a flag it does
 * not know) and the unexpected.
 */
export const EXIT_CLASSES = [
  {
    exit: 2,
    what: "input: an argument or the compose file; nothing was sent",
    codes: [
      "INVALID_INPUT",
      "SETTINGS_INVALID",
      "SOURCE_IS_MODULE",
      "COMPOSE_NOT_FOUND",
      "COMPOSE_INVALID",
      "DIGEST_MISSING",
      "BAD_DIGEST",
    ],
  },
  { exit: 3, what: "build and publish", codes: ["BUILD_FAILED", "TAG_TAKEN"] },
  {
    exit: 4,
    what: "registry: credentials, scope, names, trust",
    codes: [
      "REGISTRY_UNAUTHORIZED",
      "REGISTRY_DENIED",
      "REGISTRY_INSUFFICIENT_SCOPE",
      "REGISTRY_NOT_FOUND",
      "REGISTRY_UNREACHABLE",
      "REGISTRY_CERT_UNTRUSTED",
      "REGISTRY_INSECURE",
      "REGISTRY_FAILED",
      "PLATFORM_MISSING",
      "PULL_FAILED",
    ],
  },
  {
    exit: 5,
    what: "SSH: the key, the host key, the connection",
    codes: [
      "SSH_KEY_INVALID",
      "SSH_AUTH_FAILED",
      "SSH_UNREACHABLE",
      "SSH_FAILED",
      "HOST_KEY_MISMATCH",
      "SSH_CONNECTION_LOST",
    ],
  },
  {
    exit: 6,
    what: "the server: docker, compose, disk, the lock, the edge",
    codes: [
      "REMOTE_COMMAND_FAILED",
      "REMOTE_OUTPUT_INVALID",
      "LOCK_BUSY",
      "LOCK_FAILED",
      "DOCKER_UNREACHABLE",
      "COMPOSE_V2_MISSING",
      "DISK_LOW",
      "SWARM_NOT_MANAGER",
      "EDGE_PORT_TAKEN",
      "EDGE_CONFLICT",
      "EDGE_FAILED",
      "PREVIEW_LIMIT",
      "PREVIEW_NOT_OURS",
      "PREVIEW_ESCAPE",
    ],
  },
  {
    exit: 7,
    what: "data: snapshots, restores, their checks",
    codes: ["BACKUP_FAILED", "BACKUP_NO_SPACE", "BACKUP_PASSWORD", "RESTORE_FAILED", "BACKUP_CHECK_FAILED"],
  },
  {
    exit: 8,
    what: "the release did not go live; what ran before runs on (a job failed, or it was rolled back)",
    codes: ["JOB_FAILED", "DEPLOY_ROLLED_BACK"],
  },
  {
    exit: 9,
    what: "the release failed and nothing healthy may be running",
    codes: ["DEPLOY_FAILED", "ROLLBACK_FAILED", "RELEASE_NOT_FOUND"],
  },
  {
    exit: 10,
    what: "a check said no: verify, doctor, dagger check, a one-off command",
    codes: ["VERIFY_FAILED", "DOCTOR_FAILED", "CHECK_FAILED", "RUN_FAILED"],
  },
  { exit: 1, what: "unexpected (a bug of ours, or a surprise from the server)", codes: ["INTERNAL"] },
] as const satisfies readonly { exit: number; what: string; codes: readonly ErrorCode[] }[];

/** The exit code of a failure with `code`. */
export function exitCodeOf(code: ErrorCode): number {
  return EXIT_CLASSES.find((c) => (c.codes as readonly ErrorCode[]).includes(code))?.exit ?? 1;
}

export class PipelineError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  /** The history line a failed deploy wrote for it, when there is one. */
  history?: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, hint: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PipelineError";
    this.code = code;
    this.hint = hint;
  }

  /** Message, code and hint on one readable block: what the Dagger TUI and CI logs show. */
  describe(): string {
    return `${this.code}: ${this.message}\n  hint: ${this.hint}`;
  }
}

/** A failure as one JSON object, for `--format=json`: what a script reads instead of the text. */
export function failureJson(e: PipelineError): string {
  return JSON.stringify({
    error: {
      code: e.code,
      exitCode: exitCodeOf(e.code),
      message: e.message,
      hint: e.hint,
      ...(e.history ? { history: e.history } : {}),
    },
  });
}

export function isPipelineError(e: unknown, code?: ErrorCode): e is PipelineError {
  return e instanceof PipelineError && (code === undefined || e.code === code);
}

/**
 * Any thrown value as a PipelineError: ours pass through, anything else becomes INTERNAL with the original as cause.
 */
export function asPipelineError(e: unknown, doing: string): PipelineError {
  if (isPipelineError(e)) return e;
  const why = e instanceof Error ? e.message : String(e);
  return new PipelineError(
    "INTERNAL",
    `unexpected failure while ${doing}: ${why}`,
    "this is a bug of vps-pipeline or a surprise from the server: please report it with the output above",
    { cause: e },
  );
}

/** JSON from a command's output; text that is not JSON is a coded error naming where it came from. */
export function parseJson<T>(text: string, from: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new PipelineError(
      "REMOTE_OUTPUT_INVALID",
      `${from} printed something that is not JSON: ${tail(text, 2).slice(0, 200)}`,
      "check the versions of docker and compose on the VPS (`docker version`, `docker compose version`)",
      { cause: e },
    );
  }
}

/** The last lines of a command's output: enough to explain a failure, short enough to log. */
export function tail(text: string, lines = 12): string {
  const all = text.trimEnd().split("\n");
  return all.slice(-lines).join("\n");
}
