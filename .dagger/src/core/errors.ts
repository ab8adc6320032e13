/**
 * The one error type the pipeline throws on purpose. `code` is stable (tests and
 * users grep for it), `hint` says what to do next, `cause` keeps the original.
 */
export class PipelineError extends Error {
  readonly code: string;
  readonly hint: string;

  constructor(code: string, message: string, hint: string, options: { cause?: unknown } = {}) {
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

export function isPipelineError(e: unknown, code?: string): e is PipelineError {
  return e instanceof PipelineError && (code === undefined || e.code === code);
}

/** The last lines of a command's output: enough to explain a failure, short enough to log. */
export function tail(text: string, lines = 12): string {
  const all = text.trimEnd().split("\n");
  return all.slice(-lines).join("\n");
}
