/**
 * Builders for every command the pipeline runs on the VPS. Each returns an
 * argument array; `shellJoin` (core/shell.ts) quotes it for the SSH exec. Scripts
 * that need a shell are constant text taking their values as positional
 * parameters ("$1"…), so no value is ever pasted into shell code.
 */
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

export function mkdirReleases(l: Layout): Argv {
  return ["mkdir", "-p", l.releases];
}

/**
 * Take the deploy lock and hold it while this command's stdin stays open: the
 * lock dies with the SSH channel, so a killed deploy never leaves it behind.
 * Prints LOCKED once held; records who holds it for the next one waiting.
 */
export function holdLock(l: Layout, waitSeconds: number, holder: string): Argv {
  const wait = waitSeconds > 0 ? ["-w", String(waitSeconds)] : ["-n"];
  return [
    "flock", "-E", String(LOCK_BUSY_EXIT), ...wait, l.lock,
    "sh", "-c", 'printf "%s\\n" "$1" > "$2" && echo LOCKED && exec cat > /dev/null', "sh", holder, l.holder,
  ];
}

/** Print a file, or nothing when it does not exist. */
export function readOptionalFile(path: string): Argv {
  return ["sh", "-c", 'if [ -f "$1" ]; then cat "$1"; fi', "sh", path];
}

export const preflight = {
  dockerServer: (): Argv => ["docker", "version", "--format", "{{.Server.Version}}"],
  composeV2: (): Argv => ["docker", "compose", "version", "--short"],
  composeV1: (): Argv => ["sh", "-c", "command -v docker-compose > /dev/null && docker-compose version --short"],
  // The deploy directory may not exist yet (preflight runs before anything is created): measure its nearest existing ancestor.
  diskFree: (l: Layout): Argv => ["sh", "-c", 'd=$1; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; df -Pk "$d"', "sh", l.releases],
};

/** Kilobytes available from `df -Pk` output. */
export function parseDfAvailableKb(stdout: string): number | undefined {
  const line = stdout.trim().split("\n")[1];
  const field = line?.trim().split(/\s+/)[3];
  const n = field === undefined ? NaN : Number(field);
  return Number.isFinite(n) ? n : undefined;
}

/** Major version of `docker compose version --short` (`2.26.1`, `v2.29.0`). */
export function composeMajor(stdout: string): number | undefined {
  const m = /^v?(\d+)\./.exec(stdout.trim());
  return m ? Number(m[1]) : undefined;
}

/** Remove throwaway registry configs a killed deploy could not clean up. */
export function sweepStaleAuth(l: Layout): Argv {
  return ["sh", "-c", 'rm -rf "$1"/.vps-pipeline-auth.*', "sh", l.releases];
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
    'if [ -f "$1" ]; then umask 077; cp "$1" "$2.tmp" && chmod 600 "$2.tmp" && mv -f "$2.tmp" "$2" && echo yes; else echo no; fi',
    "sh", l.env, `${releaseDir(l, id)}/.env`,
  ];
}

/** Exit codes of the login scripts, so the caller can tell a failed login from what follows. */
export const LOGIN_FAILED_EXIT = 41;
export const PULL_FAILED_EXIT = 42;

/**
 * The start of every script that talks to a registry from the VPS. Parameters:
 * $1 the folder for a throwaway DOCKER_CONFIG, $2 `login` or `anonymous`, $3 the
 * registry host, $4 the user; the token arrives on stdin. The config folder is
 * removed when the script ends, however it ends (deploys also sweep leftovers of
 * a killed one), and the user's own compose plugin (~/.docker/cli-plugins) stays reachable.
 */
const THROWAWAY_LOGIN = [
  'cfg=$(mktemp -d "$1/.vps-pipeline-auth.XXXXXX") || exit 1',
  "trap 'rm -rf \"$cfg\"' EXIT",
  "trap 'exit 129' HUP; trap 'exit 143' TERM; trap 'exit 130' INT",
  'if [ -d "$HOME/.docker/cli-plugins" ]; then ln -s "$HOME/.docker/cli-plugins" "$cfg/cli-plugins"; fi',
  'export DOCKER_CONFIG="$cfg"',
  `if [ "$2" = login ]; then docker login --username "$4" --password-stdin "$3" > /dev/null || exit ${LOGIN_FAILED_EXIT}; fi`,
  "shift 4",
];

function loginArgs(dir: string, registry: { host: string; user: string } | undefined): Argv {
  return [dir, registry ? "login" : "anonymous", registry?.host ?? "", registry?.user ?? ""];
}

/** Log in (when given a registry) and pull the release's images; nothing running changes. */
export function loginAndPull(l: Layout, id: string, project: string, registry: { host: string; user: string } | undefined): Argv {
  const script = [
    ...THROWAWAY_LOGIN,
    `docker compose --project-name "$1" --project-directory "$2" --file "$2/docker-compose.yml" pull --quiet || exit ${PULL_FAILED_EXIT}`,
  ].join("\n");
  return ["sh", "-c", script, "sh", ...loginArgs(l.releases, registry), project, releaseDir(l, id)];
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

function compose(l: Layout, project: string): Argv {
  return ["docker", "compose", "--project-name", project, "--project-directory", l.dir, "--file", l.compose];
}

/** Start the current release. Images were pulled before the switch, so `up` never pulls (nor needs credentials). */
export function up(l: Layout, project: string): Argv {
  return [...compose(l, project), "up", "--detach", "--remove-orphans", "--pull", "never"];
}

export function ps(l: Layout, project: string): Argv {
  return [...compose(l, project), "ps", "--all", "--format", "json"];
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
  return ["sh", "-c", 'cat >> "$1"', "sh", l.history];
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
  return ["curl", "--silent", "--output", "/dev/null", "--write-out", "%{http_code}", "--max-time", String(timeoutSeconds), "--", url];
}

/** The deploy user's own docker config, where a stale registry login would live. */
export const USER_DOCKER_CONFIG = ".docker/config.json";

/**
 * For doctor: log in with the pull credentials (throwaway config in the home
 * folder), then ask the registry for each reference's manifest without pulling
 * it. Prints `ok <ref>` or `fail <ref> <reason>` per reference.
 */
export function checkPullAccess(registry: { host: string; user: string } | undefined, refs: readonly string[]): Argv {
  const script = [
    ...THROWAWAY_LOGIN,
    'for ref in "$@"; do',
    '  if err=$(docker manifest inspect "$ref" 2>&1 > /dev/null); then echo "ok $ref"; else echo "fail $ref $(printf "%s" "$err" | tail -n 1)"; fi',
    "done",
  ].join("\n");
  return ["sh", "-c", script, "sh", ...loginArgs(".", registry), ...refs];
}

/** Registry hosts the user's docker config holds credentials for (`auths`, `credHelpers`), normalized to `host[:port]`. */
export function configuredRegistries(configJson: string): string[] {
  let conf: { auths?: Record<string, unknown>; credHelpers?: Record<string, unknown> };
  try {
    conf = JSON.parse(configJson) as typeof conf;
  } catch {
    return [];
  }
  const hosts = [...Object.keys(conf.auths ?? {}), ...Object.keys(conf.credHelpers ?? {})];
  return [...new Set(hosts.map((h) => h.replace(/^https?:\/\//, "").replace(/\/.*$/, "")))];
}
