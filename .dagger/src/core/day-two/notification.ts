/**
 * The one message a deploy, a rollback (automatic or by hand) or a failure
 * sends to `--notify-url`: the facts as JSON, and a `text` a Slack or
 * Mattermost incoming webhook shows as it is. Never a secret: no URL, no token,
 * no `.env` (the receiver may be a chat room).
 */
export interface Notification {
  /** What Slack and Mattermost show. */
  text: string;
  project: string;
  action: "deploy" | "rollback" | "preview" | "run";
  /** ok, failed, or rolled-back (the new release failed and the previous one serves again). */
  result: "ok" | "failed" | "rolled-back";
  release?: string;
  previous?: string;
  /** Where a preview answers. */
  url?: string;
  /** service → image pinned by digest. */
  images?: Record<string, string>;
  /** step → seconds. */
  durations?: Record<string, number>;
  code?: string;
  error?: string;
  hint?: string;
  by: string;
  at: string;
}

export interface Outcome {
  release?: string | undefined;
  previous?: string | undefined;
  images?: Record<string, string> | undefined;
  durations?: Record<string, number> | undefined;
  url?: string | undefined;
}

/** The message for an outcome (`error` set when the operation threw). */
export function notification(o: {
  project: string;
  action: Notification["action"];
  by: string;
  now: Date;
  outcome?: Outcome;
  error?: { code: string; message: string; hint: string };
}): Notification {
  const result: Notification["result"] = !o.error
    ? "ok"
    : o.error.code === "DEPLOY_ROLLED_BACK"
      ? "rolled-back"
      : "failed";
  const r = o.outcome ?? {};
  const seconds = r.durations ? Object.values(r.durations).reduce((a, b) => a + b, 0) : undefined;
  const first = o.error?.message.split("\n")[0] ?? "";
  const text = !o.error
    ? `✅ ${o.project}: ${o.action} of ${r.release ?? "?"} ok${r.url ? ` at ${r.url}` : ""}${r.previous ? ` (previous ${r.previous})` : ""}${seconds !== undefined ? ` in ${seconds.toFixed(1)}s` : ""}, by ${o.by}`
    : `${result === "rolled-back" ? "↩️" : "❌"} ${o.project}: ${o.action} ${result === "rolled-back" ? "rolled back" : "failed"}, ${o.error.code}: ${first} (hint: ${o.error.hint}), by ${o.by}`;
  return {
    text,
    project: o.project,
    action: o.action,
    result,
    by: o.by,
    at: o.now.toISOString(),
    ...(r.release ? { release: r.release } : {}),
    ...(r.previous ? { previous: r.previous } : {}),
    ...(r.url ? { url: r.url } : {}),
    ...(r.images ? { images: r.images } : {}),
    ...(r.durations ? { durations: r.durations } : {}),
    ...(o.error ? { code: o.error.code, error: first, hint: o.error.hint } : {}),
  };
}

/**
 * Whether an answer is worth another try: no answer, a server error, 408 or 429; a 4xx says the message will never be
 * taken.
 */
export function retryable(status: number | undefined): boolean {
  return status === undefined || status >= 500 || status === 408 || status === 429;
}

/** Pauses between attempts: 0.25 s doubling, within what is left of the budget. */
export function backoff(attempt: number): number {
  return 250 * 2 ** attempt;
}
