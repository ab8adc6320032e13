/**
 * Spans for the Dagger TUI and traces: every step of a deploy is one span under
 * the function call's span. Dagger's SDK registers the global OpenTelemetry
 * provider and passes the caller's span in TRACEPARENT; tests give a tracer of
 * their own. Attributes carry ids, names and digests, never a secret.
 */
import {
  context,
  propagation,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import { isPipelineError } from "../core/errors.js";

export interface Tracing {
  tracer: Tracer;
  /** The context new spans are children of. */
  parent: Context;
}

/** The active span if there is one, else the caller's span from TRACEPARENT (how Dagger hands it to a function). */
function rootContext(): Context {
  const active = context.active();
  const current = trace.getSpanContext(active);
  if (current && trace.isSpanContextValid(current)) return active;
  const traceparent = process.env.TRACEPARENT;
  return traceparent ? propagation.extract(active, { traceparent }) : active;
}

export function defaultTracing(): Tracing {
  return { tracer: trace.getTracer("vps-pipeline"), parent: rootContext() };
}

/** Mark a span failed without a throw (a health wait that ended unhealthy). */
export function markFailed(span: Span, message: string): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/**
 * Run `fn` in a span named `name`; its children nest under it; a throw marks it as an error with the pipeline's code.
 */
export async function inSpan<T>(
  t: Tracing,
  name: string,
  attributes: Attributes,
  fn: (child: Tracing, span: Span) => Promise<T>,
): Promise<T> {
  const span = t.tracer.startSpan(name, { attributes }, t.parent);
  try {
    // Left UNSET on success (OpenTelemetry's "no error"), so a step may mark itself failed without throwing.
    return await fn({ tracer: t.tracer, parent: trace.setSpan(t.parent, span) }, span);
  } catch (e) {
    const message = e instanceof Error ? (e.message.split("\n")[0] ?? "") : String(e);
    if (isPipelineError(e)) span.setAttribute("error.code", e.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message });
    span.recordException(e instanceof Error ? { name: e.name, message } : message);
    throw e;
  } finally {
    span.end();
  }
}
