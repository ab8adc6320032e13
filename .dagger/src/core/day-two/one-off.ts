/**
 * `vps … run`: a one-off command in a new container of a service of the current
 * release, as a release-phase job sees it (its image digest, the live `.env`,
 * the project's networks and volumes), removed afterwards whatever happens.
 */
import { JOB_PROFILE } from "../compose/extension.js";
import { JOB_TIMEOUT_EXIT } from "../release/release-commands.js";
import { type Argv } from "../shell.js";
import { type Layout } from "../server/server-commands.js";

/** A shell line runs in the container's `sh -c`; otherwise the words are the argv as is. */
export function oneOffArgv(command: readonly string[], shell = command.length === 1): string[] {
  return shell ? ["sh", "-c", command.join(" ")] : [...command];
}

/** `<project>-run-<service>-<time>`: what `docker ps` shows while it runs, and what a timeout removes. */
export function oneOffName(project: string, service: string, now: Date): string {
  return `${project}-run-${service}-${now
    .toISOString()
    .replace(/[-:.TZ]/g, "")
    .slice(0, 17)}`;
}

/**
 * Run `argv` in a new container of `service` with the live compose file and `.env` (no dependency started
 * or recreated), stdout and stderr as one stream; out of time after `timeoutSeconds`: killed, removed, exit 124.
 */
export function runOneOff(
  l: Layout,
  o: { project: string; service: string; name: string; timeoutSeconds: number; argv: readonly string[] },
): Argv {
  const script = [
    "t=$1 p=$2 dir=$3 name=$4 svc=$5 prof=$6; shift 6",
    'timeout -k 5 "$t" docker compose --project-name "$p" --project-directory "$dir" --file "$dir/docker-compose.yml" --profile "$prof" run --rm -T --no-deps --name "$name" "$svc" "$@" 2>&1',
    "rc=$?",
    `if [ "$rc" -eq ${JOB_TIMEOUT_EXIT} ] || [ "$rc" -eq 137 ]; then docker rm -f "$name" > /dev/null 2>&1; exit ${JOB_TIMEOUT_EXIT}; fi`,
    // `compose run --rm` removes the container; after a kill it may still be there
    'docker rm -f "$name" > /dev/null 2>&1',
    'exit "$rc"',
  ].join("\n");
  return [
    "sh",
    "-c",
    script,
    "sh",
    String(o.timeoutSeconds),
    o.project,
    l.dir,
    o.name,
    o.service,
    JOB_PROFILE,
    ...o.argv,
  ];
}
