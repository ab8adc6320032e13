/**
 * Deliver one notification (core/day-two/notification.ts) to a webhook: POST JSON,
 * retried with backoff within a time budget. Never throws and never outlasts
 * the budget: what could not be delivered is a warning for the output. The URL
 * carries a token: it appears in no message, span or record.
 */
import { backoff, retryable, type Notification } from "../core/day-two/notification.js";

export interface Delivery {
  delivered: boolean;
  attempts: number;
  seconds: number;
  /** Why it was not delivered (HTTP status or network error code), without the URL. */
  why?: string;
}

export const NOTIFY_BUDGET_MS = 10_000;

export async function deliver(url: string, n: Notification, budgetMs = NOTIFY_BUDGET_MS): Promise<Delivery> {
  const t0 = performance.now();
  const left = () => budgetMs - (performance.now() - t0);
  const seconds = () => Math.round(performance.now() - t0) / 1000;
  let why = "";
  for (let attempt = 0; ; attempt++) {
    let status: number | undefined;
    try {
      const r = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(n),
        signal: AbortSignal.timeout(Math.max(1, Math.floor(Math.min(5000, left())))),
      });
      await r.arrayBuffer().catch(() => undefined);
      if (r.ok) return { delivered: true, attempts: attempt + 1, seconds: seconds() };
      status = r.status;
      why = `HTTP ${r.status}`;
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code;
      why = (e as Error).name === "TimeoutError" ? "no answer in time" : (cause ?? "the request failed");
    }
    const pause = backoff(attempt);
    if (!retryable(status) || left() <= pause + 50)
      return { delivered: false, attempts: attempt + 1, seconds: seconds(), why };
    await new Promise((r) => setTimeout(r, pause));
  }
}

/** The warning line for the output and the job summary, or "" when delivered. */
export function deliveryWarning(d: Delivery): string {
  return d.delivered
    ? ""
    : `notification not delivered (${d.why}, ${d.attempts} attempt(s) in ${d.seconds.toFixed(1)}s); the operation itself is not affected`;
}

/**
 * Run `operation` and notify its outcome (or its failure, which is then rethrown as it was). `url`
 * undefined: no notification. `warn` receives the warning when delivery failed.
 */
export async function notifying<
  T extends {
    release?: string | undefined;
    previous?: string | undefined;
    images?: Record<string, string>;
    durations?: Record<string, number>;
    url?: string | undefined;
  },
>(
  url: string | undefined,
  what: { project: string; action: Notification["action"]; by: string },
  warn: (line: string) => void,
  operation: () => Promise<T>,
  budgetMs = NOTIFY_BUDGET_MS,
): Promise<T> {
  if (!url) return operation();
  const { notification } = await import("../core/day-two/notification.js");
  const { asPipelineError } = await import("../core/errors.js");
  let out: T;
  try {
    out = await operation();
  } catch (e) {
    const err = asPipelineError(e, `${what.action}`);
    const d = await deliver(
      url,
      notification({ ...what, now: new Date(), error: { code: err.code, message: err.message, hint: err.hint } }),
      budgetMs,
    );
    if (!d.delivered) warn(deliveryWarning(d));
    throw e;
  }
  const d = await deliver(url, notification({ ...what, now: new Date(), outcome: out }), budgetMs);
  if (!d.delivered) warn(deliveryWarning(d));
  return out;
}
