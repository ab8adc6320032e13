/**
 * Builders for every command the pipeline runs on the VPS. Each returns an
 * argument array; `shellJoin` (core/shell.ts) quotes it for the SSH exec. Scripts
 * that need a shell are constant text taking their values as positional
 * parameters ("$1"…), so no value is ever pasted into shell code.
 */
import { FILES_DIR } from "./release-files.js";

export type Argv = string[];

/** Where things live in the deploy directory on the server. */
export interface Layout {
  dir: string;
  compose: string;
  env: string;
  releases: string;
  current: string;
  history: string;
  lock: string;
  holder: string;
}

export function layout(dir: string): Layout {
  const releases = `${dir}/.releases`;
  return {
    dir,
    compose: `${dir}/docker-compose.yml`,
    env: `${dir}/.env`,
    releases,
    current: `${releases}/current`,
    history: `${releases}/history.jsonl`,
    lock: `${releases}/.lock`,
    holder: `${releases}/.lock-holder`,
  };
}

export function releaseDir(l: Layout, id: string): string {
  return `${l.releases}/${id}`;
}

/** Exit status flock uses when the wait for the lock ran out. */
export const LOCK_BUSY_EXIT = 75;

/**
 * Take the deploy lock and hold it while this command's stdin stays open: the
 * lock dies with the SSH channel, so a killed deploy never leaves it behind.
 * Prints LOCKED once held; records who holds it for the next one waiting.
 */
export function holdLock(l: Layout, waitSeconds: number, holder: string): Argv {
  const wait = waitSeconds > 0 ? ["-w", String(waitSeconds)] : ["-n"];
  // The deploy directory is made here, in the same round trip: preflight has already passed.
  return [
    "sh", "-c", 'mkdir -p "$1" && shift && exec "$@"', "sh", l.releases,
    "flock", "-E", String(LOCK_BUSY_EXIT), ...wait, l.lock,
    "sh", "-c", 'printf "%s\\n" "$1" > "$2" && echo LOCKED && exec cat > /dev/null', "sh", holder, l.holder,
  ];
}

/** The current release's id on the first line, then its compose file (one round trip); nothing when there is none. */
export function readCurrentRelease(l: Layout): Argv {
  return ["sh", "-c", 'if [ -f "$1" ]; then id=$(cat "$1"); echo "$id"; f="$2/$id/docker-compose.yml"; if [ -n "$id" ] && [ -f "$f" ]; then cat "$f"; fi; fi', "sh", l.current, l.releases];
}

/** Print a file, or nothing when it does not exist. */
export function readOptionalFile(path: string): Argv {
  return ["sh", "-c", 'if [ -f "$1" ]; then cat "$1"; fi', "sh", path];
}

/** Probe lines shared with the swarm's preflight: the engine's version (or its error), and free space under "$1". */
export const PROBE_DOCKER = 'if v=$(docker version --format "{{.Server.Version}}" 2>&1); then echo "docker $v"; else echo "docker_error $(printf "%s" "$v" | tail -n 1)"; fi';
export const PROBE_FREE_SPACE = 'd=$1; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; echo "df_kb $(df -Pk "$d" | tail -n 1 | awk \'{print $4}\')"';

/**
 * Everything preflight needs in one command (one round trip): the docker
 * server's version or its error, compose v2's version, a v1 `docker-compose`
 * if any, and the free space under the deploy directory (which may not exist
 * yet: its nearest existing ancestor is measured). One `key value` line each.
 */
export function preflightProbe(l: Layout): Argv {
  const script = [
    PROBE_DOCKER,
    // v1 (a Python program, about a second to start) is only asked when v2 is missing: to name it in the error
    'if v=$(docker compose version --short 2>/dev/null); then echo "compose $v"; elif command -v docker-compose > /dev/null && v=$(docker-compose version --short 2>/dev/null); then echo "compose_v1 $v"; fi',
    PROBE_FREE_SPACE,
  ].join("\n");
  return ["sh", "-c", script, "sh", l.releases];
}

export interface PreflightFacts {
  docker?: string;
  dockerError?: string;
  compose?: string;
  composeV1?: string;
  freeKb?: number;
}

/** The `key value` lines of preflightProbe. */
export function parsePreflight(stdout: string): PreflightFacts {
  const facts: PreflightFacts = {};
  for (const line of stdout.split("\n")) {
    const sp = line.indexOf(" ");
    const key = sp < 0 ? line : line.slice(0, sp);
    const value = sp < 0 ? "" : line.slice(sp + 1).trim();
    if (key === "docker") facts.docker = value;
    else if (key === "docker_error") facts.dockerError = value;
    else if (key === "compose" && value) facts.compose = value;
    else if (key === "compose_v1" && value) facts.composeV1 = value;
    else if (key === "df_kb" && /^\d+$/.test(value)) facts.freeKb = Number(value);
  }
  return facts;
}

/** Major version of `docker compose version --short` (`2.26.1`, `v2.29.0`). */
export function composeMajor(stdout: string): number | undefined {
  const m = /^v?(\d+)\./.exec(stdout.trim());
  return m ? Number(m[1]) : undefined;
}

/**
 * Write stdin to `path` atomically: a temp file beside it, mode set before any
 * byte lands, then a rename. A reader sees the old file or the whole new one.
 */
export function writeFileAtomic(path: string, mode: string): Argv {
  return [
    "sh", "-c",
    'umask 077; d=$(dirname "$1") && mkdir -p "$d" && t=$(mktemp "$1.tmp.XXXXXX") && chmod "$2" "$t" && { cat > "$t" && mv -f "$t" "$1"; } || { rm -f "$t"; exit 1; }',
    "sh", path, mode,
  ];
}

/** Copy the server's current `.env` into the release (so rollback restores it too); prints yes or no. */
export function snapshotEnv(l: Layout, id: string): Argv {
  return [
    "sh", "-c",
    // the release folder may not exist yet: the compose file is uploaded at the same time
    'if [ -f "$1" ]; then umask 077; mkdir -p "$(dirname "$2")" && cp "$1" "$2.tmp" && chmod 600 "$2.tmp" && mv -f "$2.tmp" "$2" && echo yes; else echo no; fi',
    "sh", l.env, `${releaseDir(l, id)}/.env`,
  ];
}

/** Exit codes of the registry scripts, so the caller can tell a refused login, a failed pull and a failed setup apart. */
export const LOGIN_FAILED_EXIT = 41;
export const PULL_FAILED_EXIT = 42;
export const AUTH_SETUP_FAILED_EXIT = 43;

/** Prefix of the throwaway docker config folders in the deploy user's home; the number after it is the owning shell's pid. */
export const THROWAWAY_PREFIX = ".vps-pipeline-auth.";

/**
 * The start of every script that talks to a registry from the VPS (deploy,
 * rollback, doctor). stdin carries a whole docker config (`auths` only, see
 * core/registry-auth.ts): with an `auths` entry present docker's CLI picks no
 * credential helper of its own, so the token lands in no store, and it is never
 * on a command line. $1, when not empty, is the registry whose login is checked
 * (`docker login` with the stored credentials: the daemon skips the registry
 * for an image it has, and a bad token must show on every deploy). The folder
 * goes when the script ends, however it ends; folders whose shell is gone (a
 * `kill -9`) are swept by the next script. The user's own compose plugin
 * (~/.docker/cli-plugins) stays reachable.
 */
export const THROWAWAY_SETUP = [
  `for d in "$HOME"/${THROWAWAY_PREFIX}*; do [ -d "$d" ] || continue; p=\${d##*/${THROWAWAY_PREFIX}}; p=\${p%%.*}; kill -0 "$p" 2>/dev/null || rm -rf "$d"; done`,
  `cfg=$(mktemp -d "$HOME/${THROWAWAY_PREFIX}$$.XXXXXX") || exit ${AUTH_SETUP_FAILED_EXIT}`,
  "trap 'rm -rf \"$cfg\"' EXIT",
  "trap 'exit 129' HUP; trap 'exit 143' TERM; trap 'exit 130' INT",
  `(umask 077; cat > "$cfg/config.json") || exit ${AUTH_SETUP_FAILED_EXIT}`,
  'if [ -d "$HOME/.docker/cli-plugins" ]; then ln -s "$HOME/.docker/cli-plugins" "$cfg/cli-plugins"; fi',
  'export DOCKER_CONFIG="$cfg"',
  'login_host=$1; shift',
  `registry_login() { if [ -n "$login_host" ]; then docker login "$login_host" < /dev/null > /dev/null 2> "$cfg/login.err" || { cat "$cfg/login.err" >&2; exit ${LOGIN_FAILED_EXIT}; }; fi; }`,
];

/** The throwaway config with the login checked at once (doctor, swarm). */
export const THROWAWAY_CONFIG = [...THROWAWAY_SETUP, "registry_login"];

/**
 * Pull what a release needs, in parallel, with the throwaway config: every
 * image of the release, as `compose pull` would (so a bad token shows on every
 * deploy, not on the day an image is missing); after `--`, images that only
 * have to be present (the release a rollback would return to), pulled only
 * when missing. Prints `pulled <image>` for each pull.
 */
export function pullImages(loginHost: string, images: readonly string[], ensure: readonly string[]): Argv {
  const script = [
    ...THROWAWAY_SETUP,
    "only_missing=; todo=",
    'for img in "$@"; do',
    '  if [ "$img" = -- ]; then only_missing=1; continue; fi',
    '  if [ -n "$only_missing" ] && docker image inspect "$img" > /dev/null 2>&1; then continue; fi',
    '  todo=1; echo "$img" >> "$cfg/todo"',
    "done",
    // nothing to pull (a rollback whose images are all here): no login, the token goes nowhere
    '[ -n "$todo" ] || exit 0',
    "registry_login; n=0",
    'while IFS= read -r img; do',
    '  n=$((n+1))',
    '  { if docker pull -q "$img" < /dev/null > /dev/null 2> "$cfg/err.$n"; then echo "pulled $img"; else echo "failed $img $n" >> "$cfg/failed"; fi; } &',
    'done < "$cfg/todo"',
    "wait",
    // each failed image with its own error, first line the image: the caller names the registry it is on
    `if [ -s "$cfg/failed" ]; then while read -r _ img n; do echo "failed $img"; cat "$cfg/err.$n" >&2; done < "$cfg/failed"; exit ${PULL_FAILED_EXIT}; fi`,
  ].join("\n");
  return ["sh", "-c", script, "sh", loginHost, ...images, "--", ...ensure];
}

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
    't=$1; p=$2; dir=$3; rel=$4; name=$5; svc=$6; prof=$7; over=$8',
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
  return ["sh", "-c", script, "sh", String(timeoutSeconds), project, l.dir, releaseDir(l, id), jobContainerName(project, service, id), service, profile, override ?? ""];
}

export function jobContainerName(project: string, service: string, id: string): string {
  return `${project}-${service}-job-${id.replace(/[^A-Za-z0-9_.-]/g, "")}`;
}

/** For each image, `present <image>` or `missing <image>`. */
export function imagesPresent(images: readonly string[]): Argv {
  return ["sh", "-c", 'for img in "$@"; do if docker image inspect "$img" > /dev/null 2>&1; then echo "present $img"; else echo "missing $img"; fi; done', "sh", ...images];
}

/** Every kept release's compose file, each after a `=== <id>` line. */
export function readReleaseFiles(l: Layout): Argv {
  return ["sh", "-c", 'for d in "$1"/*/; do f="$d/docker-compose.yml"; [ -f "$f" ] || continue; id=${d%/}; echo "=== ${id##*/}"; cat "$f"; echo; done', "sh", l.releases];
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
  return ["sh", "-c", 'docker events --filter "label=com.docker.compose.project=$1" --filter type=container --format "{{.Status}}" & pid=$!; cat > /dev/null; kill "$pid" 2> /dev/null', "sh", project];
}

/** `service<TAB>container<TAB>oneoff` for every container labelled with the project, whatever file made it. */
export function projectContainers(project: string): Argv {
  return ["docker", "ps", "--all", "--filter", `label=com.docker.compose.project=${project}`, "--format", '{{.Label "com.docker.compose.service"}}\t{{.Names}}\t{{.Label "com.docker.compose.oneoff"}}'];
}

/** `name configured-image image-id` for each container. */
export function inspectContainers(names: readonly string[]): Argv {
  return ["docker", "inspect", "--type", "container", "--format", "{{.Name}} {{.Config.Image}} {{.Image}}", ...names];
}

/** The registry digests an image is known by (`repo@sha256:…`), as JSON. */
export function imageRepoDigests(imageId: string): Argv {
  return ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", imageId];
}

export function appendHistory(l: Layout): Argv {
  return appendLine(l.history);
}

/** Append stdin to a file (a JSON-lines record). */
export function appendLine(path: string): Argv {
  return ["sh", "-c", 'cat >> "$1"', "sh", path];
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

/** HTTP status of `url` as seen from the VPS (prints `000` when nothing answered). */
export function httpStatus(url: string, timeoutSeconds: number): Argv {
  // --globoff: `[` and `{` in a URL are characters, not curl's ranges.
  return ["curl", "--silent", "--globoff", "--output", "/dev/null", "--write-out", "%{http_code}", "--max-time", String(timeoutSeconds), "--", url];
}

/** The deploy user's own docker config, where a stale registry login would live. */
export const USER_DOCKER_CONFIG = ".docker/config.json";

/**
 * For doctor: with the pull credentials in a throwaway config, ask the registry
 * for each reference's manifest without pulling it. Prints `ok <ref>` or
 * `fail <ref> <reason>` per reference.
 */
export function checkPullAccess(loginHost: string, refs: readonly string[]): Argv {
  const script = [
    ...THROWAWAY_CONFIG,
    'for ref in "$@"; do',
    '  if err=$(docker manifest inspect "$ref" 2>&1 > /dev/null); then echo "ok $ref"; else echo "fail $ref $(printf "%s" "$err" | tail -n 1)"; fi',
    "done",
  ].join("\n");
  return ["sh", "-c", script, "sh", loginHost, ...refs];
}

/** Registry hosts the user's docker config holds credentials for (`auths`, `credHelpers`), normalized to `host[:port]`. */
export function configuredRegistries(configJson: string): string[] {
  let conf: { auths?: Record<string, unknown>; credHelpers?: Record<string, unknown> };
  try {
    conf = JSON.parse(configJson) as typeof conf;
  } catch {
    return []; // a file we cannot read holds no login we could name
  }
  const hosts = [...Object.keys(conf.auths ?? {}), ...Object.keys(conf.credHelpers ?? {})];
  return [...new Set(hosts.map((h) => h.replace(/^https?:\/\//, "").replace(/\/.*$/, "")))];
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
