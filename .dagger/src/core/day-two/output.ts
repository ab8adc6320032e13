/**
 * Output of a long command (a one-off `run`, a release-phase job): printed line by line as it comes,
 * so a ten-minute job is never silent, within a byte budget; the newest `maxBytes` kept for the result,
 * which says first how much older output was cut. Memory stays near `2 × maxBytes` whatever the command prints.
 */

const bytes = (s: string) => Buffer.byteLength(s, "utf8");

/** The last `maxBytes` of `text`, cut at a line start, with a first line saying what was cut. */
export function capNewest(text: string, maxBytes: number, total = bytes(text)): string {
  const size = bytes(text);
  if (size <= maxBytes && total === size) return text;
  let kept = Buffer.from(text, "utf8")
    .subarray(Math.max(0, size - maxBytes))
    .toString("utf8");
  // a cut inside a line or a character: start at the next whole line
  if (size > maxBytes) kept = kept.slice(kept.indexOf("\n") + 1).replace(/^\uFFFD+/, "");
  const cut = total - bytes(kept);
  return `(${cut} older byte(s) of output not shown: the output is capped at ${maxBytes} bytes, the newest kept; raise --max-bytes to see more)\n${kept}`;
}

export class BoundedOutput {
  private kept = "";
  private total = 0;
  private printed = 0;
  private partial = "";
  private silenced = false;

  /** `emit` prints one line live (nothing when absent); `prefix` starts every printed line. */
  constructor(
    readonly maxBytes: number,
    private readonly emit?: (line: string) => void,
    private readonly prefix = "",
  ) {}

  push(chunk: string): void {
    this.total += bytes(chunk);
    this.kept += chunk;
    // drop what can never be shown once the buffer holds twice the cap
    if (this.kept.length > 2 * this.maxBytes) this.kept = this.kept.slice(-this.maxBytes - 1);
    if (!this.emit || this.silenced) return;
    const lines = (this.partial + chunk).split("\n");
    this.partial = lines.pop() ?? "";
    for (const l of lines) this.print(l);
    // a line that never ends (a progress bar redrawn with \r) is printed once it is long
    if (this.partial.length > 4096) (this.print(this.partial.slice(0, 4096)), (this.partial = ""));
  }

  private print(line: string): void {
    if (this.silenced || !this.emit) return;
    this.printed += bytes(line) + 1;
    if (this.printed > this.maxBytes) {
      this.silenced = true;
      this.emit(
        `${this.prefix}(live output stops here: more than ${this.maxBytes} bytes; the newest are kept for the end)`,
      );
      return;
    }
    this.emit(`${this.prefix}${line}`);
  }

  /** Prints a last unterminated line; the newest `maxBytes`, saying first what was cut. */
  end(): string {
    if (this.partial) this.print(this.partial);
    this.partial = "";
    return capNewest(this.kept, this.maxBytes, this.total);
  }

  /** Bytes the command printed in all. */
  get size(): number {
    return this.total;
  }
}
