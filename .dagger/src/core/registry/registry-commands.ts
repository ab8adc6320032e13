/**
 * The commands that talk to a registry from the VPS: the throwaway docker
 * config every such script starts with, the parallel pull, doctor's pull access
 * check, and reading the deploy user's own docker config. Argument arrays, as
 * in core/server/server-commands.ts.
 */
import type { Argv } from "../shell.js";

/**
 * Exit codes of the registry scripts, so the caller can tell a refused login, a failed pull and a failed setup apart.
 */
export const LOGIN_FAILED_EXIT = 41;
export const PULL_FAILED_EXIT = 42;
export const AUTH_SETUP_FAILED_EXIT = 43;

/**
 * Prefix of the throwaway docker config folders in the deploy user's home; the number after it is the owning shell's
 * pid.
 */
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
  "login_host=$1; shift",
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
    "while IFS= read -r img; do",
    "  n=$((n+1))",
    '  { if docker pull -q "$img" < /dev/null > /dev/null 2> "$cfg/err.$n"; then echo "pulled $img"; else echo "failed $img $n" >> "$cfg/failed"; fi; } &',
    'done < "$cfg/todo"',
    "wait",
    // each failed image with its own error, first line the image: the caller names the registry it is on
    `if [ -s "$cfg/failed" ]; then while read -r _ img n; do echo "failed $img"; cat "$cfg/err.$n" >&2; done < "$cfg/failed"; exit ${PULL_FAILED_EXIT}; fi`,
  ].join("\n");
  return ["sh", "-c", script, "sh", loginHost, ...images, "--", ...ensure];
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

/**
 * Registry hosts the user's docker config holds credentials for (`auths`, `credHelpers`), normalized to `host[:port]`.
 */
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
