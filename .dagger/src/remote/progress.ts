/**
 * One line per step with its duration (live, as it ends), the durations kept
 * for the history, and one span per step.
 */
import type { Attributes, Span } from "@opentelemetry/api";
import type { StepName } from "../core/release/release.js";
import { inSpan, markFailed, type Tracing } from "./trace.js";

export type Log = (line: string) => void;

/** What a step sees of its span: attributes, and a way to end as failed without a throw (an unhealthy release). */
export interface StepSpan {
  setAttribute(key: string, value: string | number | boolean): void;
  fail(message: string): void;
}

export class Progress {
  readonly durations: Record<string, number> = {};

  constructor(
    private readonly log: Log,
    private readonly label: string,
    readonly tracing: Tracing,
  ) {}

  async step<T>(
    name: StepName,
    f: (span: StepSpan) => Promise<T>,
    detail?: (v: T) => string,
    attributes: Attributes = {},
  ): Promise<T> {
    const t0 = performance.now();
    return inSpan(this.tracing, name, attributes, async (_child, span: Span) => {
      let failed = false;
      const handle: StepSpan = {
        setAttribute: (k, v) => void span.setAttribute(k, v),
        fail: (message) => {
          failed = true;
          markFailed(span, message);
        },
      };
      try {
        const v = await f(handle);
        const s = this.add(name, t0);
        const note = detail ? detail(v) : "";
        this.log(
          `${this.label} ${name.padEnd(9)} ${failed ? "FAILED" : "ok    "} ${s.toFixed(2)}s${note ? `  ${note}` : ""}`,
        );
        return v;
      } catch (e) {
        const s = this.add(name, t0);
        this.log(`${this.label} ${name.padEnd(9)} FAILED ${s.toFixed(2)}s`);
        throw e;
      }
    });
  }

  /** A line of its own between the steps' lines (a job's output as it comes). */
  line(text: string): void {
    this.log(text);
  }

  /** Parts of steps, timed by their callers (`switch.route`…): apart from the durations, which add up to the whole. */
  readonly parts: Record<string, number> = {};

  part(name: string, seconds: number): void {
    this.parts[name] = Math.round(((this.parts[name] ?? 0) + seconds) * 1000) / 1000;
  }

  private add(name: string, t0: number): number {
    const s = (performance.now() - t0) / 1000;
    this.durations[name] = Math.round(((this.durations[name] ?? 0) + s) * 1000) / 1000;
    return s;
  }
}
