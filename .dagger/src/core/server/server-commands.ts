/**
 * Builders for the commands that every capability runs on the VPS: where the
 * deploy folder's files live, the deploy lock, preflight, atomic writes and
 * small reads. Each returns an argument array; `shellJoin` (core/shell.ts)
 * quotes it for the SSH exec. Scripts that need a shell are constant text
 * taking their values as positional parameters ("$1"…), so no value is ever
 * pasted into shell code.
 */
import type { Argv } from "../shell.js";

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
/** Exit status when the lock file was removed while this command waited for it (its folder went). */
export const LOCK_GONE_EXIT = 76;

/** Where a lock lives: the folder made for it, its file, and the file naming who holds it. */
export type LockPlace = Pick<Layout, "dir" | "releases" | "lock" | "holder">;

/**
 * Take the deploy lock and hold it while this command's stdin stays open: the
 * lock dies with the SSH channel, so a killed deploy never leaves it behind.
 * Prints LOCKED once held; records who holds it for the next one waiting. A
 * lock whose file was removed while this waited (its folder deleted) is no
 * lock: the next one would make a new file and hold it too, so it ends with
 * LOCK_GONE_EXIT.
 */
export function holdLock(l: LockPlace, waitSeconds: number, holder: string): Argv {
  // The deploy directory is made here, in the same round trip: preflight has already passed.
  const script = [
    'mkdir -p "$1" && exec 9>> "$2" || exit 1',
    `if [ "$5" -gt 0 ]; then flock -E ${LOCK_BUSY_EXIT} -w "$5" 9; else flock -E ${LOCK_BUSY_EXIT} -n 9; fi || exit $?`,
    `[ "$2" -ef /proc/$$/fd/9 ] || exit ${LOCK_GONE_EXIT}`,
    'printf "%s\\n" "$3" > "$4" && echo LOCKED && exec cat > /dev/null',
  ].join("\n");
  return ["sh", "-c", script, "sh", l.releases, l.lock, holder, l.holder, String(Math.max(0, Math.floor(waitSeconds)))];
}

/** Exit status when a confined path leads out of its folder (confinedPaths). */
export const ESCAPE_EXIT = 47;

/**
 * Each of `paths` (relative to `dir`) resolves inside `dir` through no symlink, and lies in no bind mount a running
 * container may write (such a container could swap a folder on the way for a symlink before compose reads or mounts
 * it). Prints `symlink <path> <where it leads>` or `writable <path> <mount source>` for each that does not, and exits
 * ESCAPE_EXIT; nothing is changed.
 */
export function confinedPaths(dir: string, paths: readonly string[]): Argv {
  const script = [
    'd=$1; shift; root=$(realpath -- "$d") || exit 1',
    `rw=$(docker ps -q | xargs -r docker inspect --format '{{range .Mounts}}{{if and (eq .Type "bind") .RW}}{{println .Source}}{{end}}{{end}}' | while IFS= read -r w; do [ -n "$w" ] && realpath -m -- "$w"; done)`,
    'out=$(for x in "$@"; do',
    '  got=$(realpath -m -- "$d/$x")',
    '  if [ "$got" != "$root/$x" ]; then printf "symlink %s %s\\n" "$x" "$got"; continue; fi',
    '  printf "%s\\n" "$rw" | while IFS= read -r w; do [ -n "$w" ] && case $got in "$w"/*) printf "writable %s %s\\n" "$x" "$w";; esac; done',
    "done)",
    '[ -z "$out" ] && exit 0',
    `printf "%s\\n" "$out"; exit ${ESCAPE_EXIT}`,
  ];
  return ["sh", "-c", script.join("\n"), "sh", dir, ...paths];
}

/** The current release's id on the first line, then its compose file (one round trip); nothing when there is none. */
export function readCurrentRelease(l: Layout): Argv {
  return [
    "sh",
    "-c",
    'if [ -f "$1" ]; then id=$(cat "$1"); echo "$id"; f="$2/$id/docker-compose.yml"; if [ -n "$id" ] && [ -f "$f" ]; then cat "$f"; fi; fi',
    "sh",
    l.current,
    l.releases,
  ];
}

/** Print a file, or nothing when it does not exist. */
export function readOptionalFile(path: string): Argv {
  return ["sh", "-c", 'if [ -f "$1" ]; then cat "$1"; fi', "sh", path];
}

/** The `.env` release `id` ran with: its own copy, else the deploy folder's. */
export function readReleaseEnv(l: Layout, id: string): Argv {
  return [
    "sh",
    "-c",
    'if [ -f "$1" ]; then cat "$1"; elif [ -f "$2" ]; then cat "$2"; fi',
    "sh",
    `${releaseDir(l, id)}/.env`,
    l.env,
  ];
}

/** Probe lines shared with the swarm's preflight: the engine's version (or its error), and free space under "$1". */
export const PROBE_DOCKER =
  'if v=$(docker version --format "{{.Server.Version}}" 2>&1); then echo "docker $v"; else echo "docker_error $(printf "%s" "$v" | tail -n 1)"; fi';
export const PROBE_FREE_SPACE =
  'd=$1; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; echo "df_kb $(df -Pk "$d" | tail -n 1 | awk \'{print $4}\')"';

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
    "sh",
    "-c",
    'umask 077; d=$(dirname "$1") && mkdir -p "$d" && t=$(mktemp "$1.tmp.XXXXXX") && chmod "$2" "$t" && { cat > "$t" && mv -f "$t" "$1"; } || { rm -f "$t"; exit 1; }',
    "sh",
    path,
    mode,
  ];
}

/** Copy the server's current `.env` into the release (so rollback restores it too); prints yes or no. */
export function snapshotEnv(l: Layout, id: string): Argv {
  return [
    "sh",
    "-c",
    // the release folder may not exist yet: the compose file is uploaded at the same time
    'if [ -f "$1" ]; then umask 077; mkdir -p "$(dirname "$2")" && cp "$1" "$2.tmp" && chmod 600 "$2.tmp" && mv -f "$2.tmp" "$2" && echo yes; else echo no; fi',
    "sh",
    l.env,
    `${releaseDir(l, id)}/.env`,
  ];
}

/** For each image, `present <image>` or `missing <image>`. */
export function imagesPresent(images: readonly string[]): Argv {
  return [
    "sh",
    "-c",
    'for img in "$@"; do if docker image inspect "$img" > /dev/null 2>&1; then echo "present $img"; else echo "missing $img"; fi; done',
    "sh",
    ...images,
  ];
}

/** `name configured-image image-id` for each container. */
export function inspectContainers(names: readonly string[]): Argv {
  return ["docker", "inspect", "--type", "container", "--format", "{{.Name}} {{.Config.Image}} {{.Image}}", ...names];
}

/** The registry digests an image is known by (`repo@sha256:…`), as JSON. */
export function imageRepoDigests(imageId: string): Argv {
  return ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", imageId];
}

/** Append stdin to a file (a JSON-lines record). */
export function appendLine(path: string): Argv {
  return ["sh", "-c", 'cat >> "$1"', "sh", path];
}

/** HTTP status of `url` as seen from the VPS (prints `000` when nothing answered). */
export function httpStatus(url: string, timeoutSeconds: number): Argv {
  // --globoff: `[` and `{` in a URL are characters, not curl's ranges.
  return [
    "curl",
    "--silent",
    "--globoff",
    "--output",
    "/dev/null",
    "--write-out",
    "%{http_code}",
    "--max-time",
    String(timeoutSeconds),
    "--",
    url,
  ];
}
