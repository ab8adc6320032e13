/**
 * The only shell-quoting routine of the project. Remote commands are built as
 * argument arrays; this turns them into the single string an SSH exec takes.
 */

/** A command as an argument array, quoted only when it is sent (shellJoin). */
export type Argv = string[];

/** Quote one argument for a POSIX shell: single quotes, with embedded ones closed and escaped. */
export function shellQuote(arg: string): string {
  if (arg === "") return "''";
  // Plain words stay readable in logs; everything else is single-quoted.
  if (/^[A-Za-z0-9_@%+:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Join an argument array into one command string, each argument quoted. */
export function shellJoin(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error("shellJoin: empty command");
  return argv.map(shellQuote).join(" ");
}
