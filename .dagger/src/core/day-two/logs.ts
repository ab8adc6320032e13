/**
 * `vps … logs`: the commands that read a project's logs on either target, and
 * the merge of what they print into one stream in time order, each line naming
 * its container (or swarm task and node), cut to `--tail` lines and a size cap.
 */
import type { Argv } from "../shell.js";

export interface LogOptions {
  /** Only these services (empty: all). */
  services: string[];
  /** Docker's `--since`: `10m`, `2h`, or a time `2026-12-01T08:00:00Z`. */
  since?: string;
  /** The last lines overall (each container is asked for as many). */
  tail: number;
  /** At most this many bytes of log are returned; the newest are kept. */
  maxBytes: number;
}

/**
 * One VPS: `docker logs --timestamps` of each container of the project (of the services named), each
 * line prefixed with the container's name; each container's output cut on the server to the cap.
 */
export function composeLogs(project: string, o: LogOptions): Argv {
  const script = [
    "p=$1 cap=$2 since=$3 tail=$4; shift 4",
    'names() { if [ $# -eq 0 ]; then docker ps -a --filter "label=com.docker.compose.project=$p" --format "{{.Names}}"; else for s in "$@"; do docker ps -a --filter "label=com.docker.compose.project=$p" --filter "label=com.docker.compose.service=$s" --format "{{.Names}}"; done; fi; }',
    'for c in $(names "$@"); do docker logs --timestamps ${since:+--since "$since"} --tail "$tail" "$c" 2>&1 | tail -c "$cap" | sed "s|^|$c |"; done',
  ].join("\n");
  return ["sh", "-c", script, "sh", project, String(o.maxBytes), o.since ?? "", String(o.tail), ...o.services];
}

/** A swarm: `docker service logs --timestamps` of each service of the stack (the task and node name each line). */
export function swarmLogs(project: string, o: LogOptions): Argv {
  const script = [
    "p=$1 cap=$2 since=$3 tail=$4; shift 4",
    'svcs() { if [ $# -eq 0 ]; then docker stack services "$p" --format "{{.Name}}"; else for s in "$@"; do echo "${p}_$s"; done; fi; }',
    'for s in $(svcs "$@"); do docker service logs --timestamps --no-trunc ${since:+--since "$since"} --tail "$tail" "$s" 2>&1 | tail -c "$cap"; done',
  ].join("\n");
  return ["sh", "-c", script, "sh", project, String(o.maxBytes), o.since ?? "", String(o.tail), ...o.services];
}

export interface LogLine {
  /** RFC 3339 with nanoseconds, padded: sorts as text. */
  at: string;
  /** The container, or `task@node` on a swarm. */
  source: string;
  text: string;
}

const TS = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z$/;
/** A timestamp with its fraction padded to 9 digits (docker's container logs drop trailing zeros). */
function padded(ts: string): string | undefined {
  const m = TS.exec(ts);
  return m ? `${m[1]}.${(m[2] ?? "").padEnd(9, "0")}Z` : undefined;
}

/**
 * One line of composeLogs (`<container> <time> <text>`) or swarmLogs (`<time> <task>@<node> | <text>`, or the time
 * after the bar).
 */
export function parseLogLine(line: string): LogLine | undefined {
  const swarm = /^(?:(\S+Z)\s+)?([^\s|]+@[^\s|]+)\s*\|\s?(?:(\d{4}-\S+Z)\s)?(.*)$/.exec(line);
  if (swarm) {
    const at = padded(swarm[1] ?? swarm[3] ?? "");
    return at ? { at, source: swarm[2]!, text: swarm[4]! } : undefined;
  }
  const m = /^(\S+) (\S+Z) ?(.*)$/.exec(line);
  const at = m ? padded(m[2]!) : undefined;
  return m && at ? { at, source: m[1]!, text: m[3]! } : undefined;
}

export interface MergedLogs {
  lines: LogLine[];
  /** Lines left out to stay within the cap (the oldest). */
  cut: number;
}

/** Every container's lines in one stream, oldest first (stable for equal times), the last `tail`, within `maxBytes`. */
export function mergeLogs(out: string, o: Pick<LogOptions, "tail" | "maxBytes">): MergedLogs {
  const all = out.split("\n").flatMap((l) => {
    const x = parseLogLine(l);
    return x ? [x] : [];
  });
  const sorted = all
    .map((x, i) => [x, i] as const)
    .sort(([a, i], [b, j]) => (a.at < b.at ? -1 : a.at > b.at ? 1 : i - j))
    .map(([x]) => x);
  const last = sorted.slice(-o.tail);
  let bytes = 0;
  let from = last.length;
  while (from > 0) {
    const size = Buffer.byteLength(formatLogLine(last[from - 1]!)) + 1;
    if (bytes + size > o.maxBytes) break;
    bytes += size;
    from--;
  }
  return { lines: last.slice(from), cut: from };
}

export function formatLogLine(x: LogLine): string {
  return `${x.at} ${x.source} | ${x.text}`;
}

/** The merged lines as the function prints them, saying first when the cap cut the oldest away. */
export function formatLogs(m: MergedLogs, maxBytes: number): string {
  const head = m.cut
    ? [
        `(${m.cut} older line(s) not shown: the output is capped at ${maxBytes} bytes; narrow it with --since, --tail or --service)`,
      ]
    : [];
  return [...head, ...m.lines.map(formatLogLine)].join("\n");
}
