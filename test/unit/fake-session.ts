/**
 * A scripted SSH session for the flow's unit tests: every argument array is
 * recorded; files written, read and appended through the pipeline's own
 * command builders live in a map; the lock is held at once; anything else is
 * answered by the test's script (default: exit 0, no output). Commands are
 * recognised by comparing them with the builders' own output, never by guessing.
 */
import { EventEmitter } from "node:events";
import { PipelineError } from "../../.dagger/src/core/errors.js";
import { edgeState } from "../../.dagger/src/core/edge/edge-commands.js";
import { appendHistory, switchTo } from "../../.dagger/src/core/release/release-commands.js";
import {
  readCurrentRelease,
  readOptionalFile,
  writeFileAtomic,
  type Layout,
} from "../../.dagger/src/core/server/server-commands.js";
import { type Argv } from "../../.dagger/src/core/shell.js";
import { SshSession, type ExecResult, type RunningCommand } from "../../.dagger/src/remote/ssh.js";

export type Answer = Partial<ExecResult> | "lost";
/** The test's answer to a command; undefined for the default (exit 0, no output). */
export type Script = (argv: Argv, stdin: string) => Answer | undefined;

/** The same shell script (or the same program) as the builder's output: its arguments may differ. */
export function same(argv: Argv, built: Argv): boolean {
  return (
    argv[0] === built[0] && (argv[0] === "sh" ? argv[2] === built[2] : argv[1] === built[1] && argv[2] === built[2])
  );
}

export class FakeSession extends SshSession {
  readonly calls: { argv: Argv; stdin: string }[] = [];
  readonly files = new Map<string, string>();

  constructor(
    private readonly l: Layout,
    private readonly script: Script = () => undefined,
  ) {
    super(Object.assign(new EventEmitter(), { end: () => {} }) as never, "the fake VPS");
  }

  /** The history lines appended so far, parsed. */
  history(): Record<string, unknown>[] {
    return (this.files.get(this.l.history) ?? "")
      .split("\n")
      .filter(Boolean)
      .map((x) => JSON.parse(x) as Record<string, unknown>);
  }

  ran(built: Argv): boolean {
    return this.calls.some((c) => same(c.argv, built));
  }

  override start(
    command: Argv,
    opts: { stdin?: string | Buffer; keepStdinOpen?: boolean; onStdout?: (chunk: string) => void } = {},
  ): RunningCommand {
    const stdin = opts.stdin?.toString() ?? "";
    this.calls.push({ argv: command, stdin });
    const scripted = this.script(command, stdin);
    if (scripted === "lost")
      return {
        result: Promise.reject(
          new PipelineError("SSH_CONNECTION_LOST", "the connection to the fake VPS was lost", "run it again"),
        ),
        closeStdin: () => {},
      };
    if (scripted === undefined && opts.keepStdinOpen) {
      // a lock holder or an event watch: prints its word, then lasts until its stdin closes
      if (command.some((a) => /\bflock\b/.test(a))) opts.onStdout?.("LOCKED\n");
      let end: (r: ExecResult) => void = () => {};
      return {
        result: new Promise<ExecResult>((r) => (end = r)),
        closeStdin: () => end({ code: 0, stdout: "", stderr: "" }),
      };
    }
    const r: ExecResult = { code: 0, stdout: "", stderr: "", ...(scripted ?? this.builtIn(command, stdin)) };
    if (!opts.onStdout) return { result: Promise.resolve(r), closeStdin: () => {} };
    // as the real session: streamed stdout is the caller's to keep
    if (r.stdout) opts.onStdout(r.stdout);
    return { result: Promise.resolve({ ...r, stdout: "" }), closeStdin: () => {} };
  }

  /** What the file commands do to the map. */
  private builtIn(argv: Argv, stdin: string): Partial<ExecResult> {
    const path = argv[4] ?? "";
    if (same(argv, writeFileAtomic("x", "600"))) this.files.set(path, stdin);
    else if (same(argv, appendHistory(this.l)))
      this.files.set(this.l.history, (this.files.get(this.l.history) ?? "") + stdin);
    else if (same(argv, readOptionalFile("x"))) return { stdout: this.files.get(path) ?? "" };
    else if (same(argv, switchTo(this.l, "x"))) this.files.set(this.l.current, argv[6] ?? "");
    else if (same(argv, edgeState("x")))
      return { stdout: "edge missing\n" }; // a VPS that never had an edge
    else if (same(argv, readCurrentRelease(this.l))) {
      const id = this.files.get(this.l.current)?.trim();
      return { stdout: id ? `${id}\n${this.files.get(`${this.l.releases}/${id}/docker-compose.yml`) ?? ""}` : "" };
    }
    return {};
  }
}
