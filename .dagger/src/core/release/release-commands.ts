/**
 * The commands of a release's life on the VPS: release-phase jobs, the switch
 * to a release, compose `up`/`ps`/events, the history and the kept releases,
 * and the shipped files' sets. Argument arrays, as in
 * core/server/server-commands.ts.
 */
import type { Argv } from "../shell.js";
import { appendLine, releaseDir, type Layout } from "../server/server-commands.js";
import { FILES_DIR } from "./release-files.js";

/** Exit status of `timeout` when the job ran out of time. */
export const JOB_TIMEOUT_EXIT = 124;

/**
 * Run one release-phase job to completion with the release's compose file,
 * under the project's name and in the deploy folder, exactly as `up` will run
 * the stack (same networks, volumes and relative paths, so no dependency is
 * recreated for a path that only looks different), with the release's `.env`
 * for interpolation and, through `override` when given, for `env_file: .env`.
 * A job that outlives its timeout is stopped and removed.
 */
export interface JobRun {
  id: string;
  project: string;
  service: string;
  timeoutSeconds: number;
  /** The profile jobs live under in the release (so that `up` never starts them). */
  profile: string;
  /** An override file for the job's `env_file` (core/compose.ts `jobEnvOverride`). */
  override?: string | undefined;
}

export function runJob(l: Layout, j: JobRun): Argv {
  const { id, project, service, timeoutSeconds, profile, override } = j;
  const script = [
    "t=$1; p=$2; dir=$3; rel=$4; name=$5; svc=$6; prof=$7; over=$8",
    'set -- --project-name "$p" --project-directory "$dir" --file "$rel/docker-compose.yml"',
    'if [ -n "$over" ]; then set -- "$@" --file "$over"; fi',
    'if [ -f "$rel/.env" ]; then set -- "$@" --env-file "$rel/.env"; fi',
    // a first deploy has no live .env yet, and a job's `env_file: .env` must find one
    'if [ -f "$rel/.env" ] && [ ! -e "$dir/.env" ]; then (umask 077; cp "$rel/.env" "$dir/.env"); fi',
    'timeout -k 10 "$t" docker compose "$@" --profile "$prof" run --rm -T --name "$name" "$svc"',
    "rc=$?",
    `if [ "$rc" -eq ${JOB_TIMEOUT_EXIT} ] || [ "$rc" -eq 137 ]; then docker rm -f "$name" > /dev/null 2>&1; exit ${JOB_TIMEOUT_EXIT}; fi`,
    'exit "$rc"',
  ].join("\n");
  return [
    "sh",
    "-c",
    script,
    "sh",
    String(timeoutSeconds),
    project,
    l.dir,
    releaseDir(l, id),
    jobContainerName(project, service, id),
    service,
    profile,
    override ?? "",
  ];
}

export function jobContainerName(project: string, service: string, id: string): string {
  return `${project}-${service}-job-${id.replace(/[^A-Za-z0-9_.-]/g, "")}`;
}

/** Every kept release's compose file, each after a `=== <id>` line. */
export function readReleaseFiles(l: Layout): Argv {
  return [
    "sh",
    "-c",
    'for d in "$1"/*/; do f="$d/docker-compose.yml"; [ -f "$f" ] || continue; id=${d%/}; echo "=== ${id##*/}"; cat "$f"; echo; done',
    "sh",
    l.releases,
  ];
}

/** Make release `id` the current one: its compose file (and `.env` when it has one) into place, atomically. */
export function switchTo(l: Layout, id: string): Argv {
  const script = [
    "set -e; umask 077",
    'cp "$2/docker-compose.yml" "$1/.docker-compose.yml.tmp"; mv -f "$1/.docker-compose.yml.tmp" "$1/docker-compose.yml"',
    'if [ -f "$2/.env" ]; then cp "$2/.env" "$1/.env.tmp"; chmod 600 "$1/.env.tmp"; mv -f "$1/.env.tmp" "$1/.env"; fi',
    'printf "%s\\n" "$3" > "$4.tmp"; mv -f "$4.tmp" "$4"',
  ].join("\n");
  return ["sh", "-c", script, "sh", l.dir, releaseDir(l, id), id, l.current];
}

function compose(l: Layout, project: string, file = l.compose): Argv {
  return ["docker", "compose", "--project-name", project, "--project-directory", l.dir, "--file", file];
}

/** Start the current release. Images were pulled before the switch, so `up` never pulls (nor needs credentials). */
export function up(l: Layout, project: string): Argv {
  return [...compose(l, project), "up", "--detach", "--remove-orphans", "--pull", "never"];
}

/** The project's containers as compose sees them through `file` (default: the live compose file). */
export function ps(l: Layout, project: string, file?: string): Argv {
  return [...compose(l, project, file), "ps", "--all", "--format", "json"];
}

/**
 * Stream the project's container events (start, die, health_status…), one line
 * each, until stdin closes: the health wait looks again the moment something
 * changes instead of on a timer.
 */
export function watchEvents(project: string): Argv {
  return [
    "sh",
    "-c",
    'docker events --filter "label=com.docker.compose.project=$1" --filter type=container --format "{{.Status}}" & pid=$!; cat > /dev/null; kill "$pid" 2> /dev/null',
    "sh",
    project,
  ];
}

/** `service<TAB>container<TAB>oneoff` for every container labelled with the project, whatever file made it. */
export function projectContainers(project: string): Argv {
  return [
    "docker",
    "ps",
    "--all",
    "--filter",
    `label=com.docker.compose.project=${project}`,
    "--format",
    '{{.Label "com.docker.compose.service"}}\t{{.Names}}\t{{.Label "com.docker.compose.oneoff"}}',
  ];
}

export function appendHistory(l: Layout): Argv {
  return appendLine(l.history);
}

export function tailHistory(l: Layout, lines: number): Argv {
  return ["sh", "-c", 'if [ -f "$1" ]; then tail -n "$2" "$1"; fi', "sh", l.history, String(lines)];
}

export function listReleases(l: Layout): Argv {
  return ["ls", "-1", l.releases];
}

export function removeReleases(l: Layout, ids: readonly string[]): Argv {
  return ["rm", "-rf", "--", ...ids.map((id) => releaseDir(l, id))];
}

/** The shipped files' sets (one folder per content hash) the server has, one per line. */
export function listShippedSets(l: Layout): Argv {
  return ["sh", "-c", 'if [ -d "$1" ]; then ls -1 "$1"; fi', "sh", `${l.dir}/${FILES_DIR}`];
}

/**
 * Unpack a tar stream (stdin) of shipped files' sets into the shipped files'
 * folder: first beside it, then each set moved into place whole, so a set that
 * is there is complete (a killed upload leaves only its own `.incoming.*`,
 * removed by the next one, which holds the deploy lock). Readable by containers.
 */
export function extractShipped(l: Layout): Argv {
  const script = [
    'umask 022; d=$1; mkdir -p "$d" && rm -rf "$d"/.incoming.* && t=$(mktemp -d "$d/.incoming.XXXXXX") || exit 1',
    'chmod 755 "$t"; tar -x -f - -C "$t" || { rm -rf "$t"; exit 1; }',
    'for s in "$t"/*; do [ -e "$s" ] || continue; n=${s##*/}; if [ -e "$d/$n" ]; then rm -rf "$s"; else mv "$s" "$d/$n"; fi; done',
    'rmdir "$t"',
  ].join("\n");
  return ["sh", "-c", script, "sh", `${l.dir}/${FILES_DIR}`];
}

/** The compose files of every kept release, one after the other (which shipped files they still name). */
export function keptComposeFiles(l: Layout): Argv {
  return ["sh", "-c", 'cat "$1"/*/docker-compose.yml 2> /dev/null; true', "sh", l.releases];
}

/** Remove shipped files' folders by hash. */
export function removeShippedFiles(l: Layout, hashes: readonly string[]): Argv {
  return ["rm", "-rf", "--", ...hashes.map((h) => `${l.dir}/${FILES_DIR}/${h}`)];
}
