/**
 * Commands for data snapshots (core/data.ts), built like core/remote-commands.ts:
 * argument arrays, values only as positional parameters. restic runs in a
 * throwaway container of its image on the server; the repository is a folder
 * of the deploy directory (`.backups/restic`). Its password is the first line
 * of every script's stdin: it stays in shell variables and reaches restic on
 * its own stdin, never on a command line, in a container's config or on disk.
 */
import { releaseDir, type Argv, type Layout } from "./remote-commands.js";

export const backupRepo = (l: Layout): string => `${l.dir}/.backups/restic`;
export const snapshotRecords = (l: Layout): string => `${l.releases}/snapshots.jsonl`;

/** Exit statuses the callers turn into coded errors. */
export const DATA_EXIT = { wrongPassword: 60, noSpace: 61, captureFailed: 62, restoreFailed: 63, noPassword: 64 } as const;

/** The preamble: the password, the positional values, compose for the release, restic in its container. */
const PREAMBLE = [
  `IFS= read -r pw || exit ${DATA_EXIT.noPassword}`,
  'repo=$1; img=$2; p=$3; dir=$4; rel=$5; svc=$6; tags=$7; shift 7',
  'mkdir -p "$repo" && repo=$(cd "$repo" && pwd) || exit 1',
  'err=$(mktemp); out=$(mktemp); st=$(mktemp -d); trap \'rm -rf "$err" "$out" "$st"\' EXIT',
  'dc() { if [ -f "$rel/.env" ]; then docker compose --env-file "$rel/.env" --project-name "$p" --project-directory "$dir" --file "$rel/docker-compose.yml" "$@"; else docker compose --project-name "$p" --project-directory "$dir" --file "$rel/docker-compose.yml" "$@"; fi; }',
  // rr <docker run options> -- <restic arguments>: restic in its container (its image's entrypoint is restic itself:
  // sh reads the password first), the password on its stdin, then what `feed` lets through
  'rr() { o=""; while [ "$1" != -- ]; do o="$o $1"; shift; done; shift; { printf "%s\\n" "$pw"; [ -n "$feed" ] && cat; } | docker run --rm -i --network none -v "$repo:/repo" $o --entrypoint sh "$img" -c \'IFS= read -r RESTIC_PASSWORD && export RESTIC_PASSWORD && exec restic --repo /repo --no-cache "$@"\' restic "$@"; }',
  'feed=',
  `wrong() { grep -qi -e "wrong password" -e "no key found" "$err" && exit ${DATA_EXIT.wrongPassword}; }`,
  // the repository is made by the first capture
  'rr -- cat config > /dev/null 2> "$err" || { wrong; rr -- init > /dev/null 2> "$err" || { wrong; cat "$err" >&2; exit 1; }; }',
  'now() { date +%s%3N; }',
];

function script(lines: readonly string[]): string {
  return [...PREAMBLE, ...lines].join("\n");
}

const positional = (l: Layout, image: string, project: string, release: string, service: string, tags: readonly string[]) =>
  [backupRepo(l), image, project, l.dir, releaseDir(l, release), service, tags.join(",")];

/**
 * Physical capture of a service's volumes (`volumes`: docker's names): free
 * space checked first (their size against the repository's disk), the service
 * stopped, the volumes read by restic, the service started again whatever
 * happened. Prints `stopped_ms <n>` and restic's JSON summary.
 */
export function capturePhysical(l: Layout, image: string, project: string, release: string, service: string, tags: readonly string[], volumes: readonly string[]): Argv {
  return ["sh", "-c", script([
    'm=""; for v in "$@"; do m="$m -v $v:/data/$v:ro"; done',
    // what the volumes hold, against what the repository's disk has free (plus 64 MiB of room)
    'need=$(docker run --rm --network none $m --entrypoint du "$img" -sk /data | tail -1 | cut -f1)',
    'free=$(df -Pk "$repo" | awk \'NR == 2 { print $4 }\')',
    `[ -n "$need" ] && [ -n "$free" ] && [ "$free" -lt $((need + 65536)) ] && { echo "the volumes hold $((need / 1024)) MiB, the disk of $repo has $((free / 1024)) MiB free" >&2; exit ${DATA_EXIT.noSpace}; }`,
    't0=$(now)',
    'dc stop -t 30 "$svc" > /dev/null 2> "$err" || { cat "$err" >&2; exit 1; }',
    'rr $m -- backup --json --tag "$tags" /data > "$out" 2> "$err"; rc=$?',
    'dc start "$svc" > /dev/null 2>&1; t1=$(now)',
    'echo "stopped_ms $((t1 - t0))"',
    `[ "$rc" -eq 0 ] || { cat "$err" >&2; exit ${DATA_EXIT.captureFailed}; }`,
    'grep \'"message_type":"summary"\' "$out"',
  ]), "sh", ...positional(l, image, project, release, service, tags), ...volumes];
}

/**
 * Logical capture: `dump` (argv) run in the running service, its stdout read by
 * restic as `/<service>.dump`. A dump that fails leaves no snapshot behind.
 */
export function captureLogical(l: Layout, image: string, project: string, release: string, service: string, tags: readonly string[], dump: readonly string[]): Argv {
  return ["sh", "-c", script([
    `free=$(df -Pk "$repo" | awk 'NR == 2 { print $4 }'); [ -n "$free" ] && [ "$free" -lt 65536 ] && { echo "the disk of $repo has $((free / 1024)) MiB free" >&2; exit ${DATA_EXIT.noSpace}; }`,
    'feed=1',
    '{ dc exec -T "$svc" "$@" 2> "$st/dump.err"; echo $? > "$st/dump"; } | rr -- backup --json --tag "$tags" --stdin --stdin-filename "$svc.dump" > "$out" 2> "$err"; rc=$?',
    'id=$(grep \'"message_type":"summary"\' "$out" | sed -n \'s/.*"snapshot_id":"\\([0-9a-f]*\\)".*/\\1/p\')',
    'if [ "$(cat "$st/dump")" != 0 ]; then',
    '  feed=; [ -n "$id" ] && rr -- forget "$id" > /dev/null 2>&1',
    `  echo "the dump command exited with $(cat "$st/dump"): $(tail -3 "$st/dump.err")" >&2; exit ${DATA_EXIT.captureFailed}`,
    'fi',
    `[ "$rc" -eq 0 ] || { cat "$err" >&2; exit ${DATA_EXIT.captureFailed}; }`,
    'grep \'"message_type":"summary"\' "$out"',
  ]), "sh", ...positional(l, image, project, release, service, tags), ...dump];
}

/**
 * Physical restore: the service stopped, each volume emptied and filled from
 * snapshot `id`; started again when `start` (a rollback's switch starts it
 * itself, with the release it returns to).
 */
export function restorePhysical(l: Layout, image: string, project: string, release: string, service: string, id: string, volumes: readonly string[], start: boolean): Argv {
  return ["sh", "-c", script([
    'id=$1; start=$2; shift 2',
    'm=""; for v in "$@"; do m="$m -v $v:/data/$v"; done',
    'dc stop -t 30 "$svc" > /dev/null 2> "$err" || { cat "$err" >&2; exit 1; }',
    // emptied first: a restore must not leave files the snapshot does not have (a shell glob: busybox's find may lack -delete)
    'for v in "$@"; do docker run --rm --network none -v "$v:/data/$v" --entrypoint sh "$img" -c \'rm -rf "$1"/* "$1"/.[!.]* "$1"/..?*\' sh "/data/$v" || exit 1; done',
    `rr $m -- restore "$id" --target / > /dev/null 2> "$err" || { wrong; cat "$err" >&2; exit ${DATA_EXIT.restoreFailed}; }`,
    '[ "$start" = 1 ] && { dc start "$svc" > /dev/null 2> "$err" || { cat "$err" >&2; exit 1; }; }',
    'true',
  ]), "sh", ...positional(l, image, project, release, service, []), id, start ? "1" : "0", ...volumes];
}

/** Logical restore: what snapshot `id` holds for the service, fed to `restore` (argv) run in the running service. */
export function restoreLogical(l: Layout, image: string, project: string, release: string, service: string, id: string, restore: readonly string[]): Argv {
  return ["sh", "-c", script([
    'id=$1; shift',
    '{ rr -- dump "$id" "/$svc.dump" 2> "$err"; echo $? > "$st/dump"; } | { dc exec -T "$svc" "$@" > /dev/null 2> "$st/restore.err"; echo $? > "$st/restore"; }',
    `[ "$(cat "$st/dump")" = 0 ] || { wrong; cat "$err" >&2; exit ${DATA_EXIT.restoreFailed}; }`,
    `[ "$(cat "$st/restore")" = 0 ] || { echo "the restore command exited with $(cat "$st/restore"): $(tail -3 "$st/restore.err")" >&2; exit ${DATA_EXIT.restoreFailed}; }`,
  ]), "sh", ...positional(l, image, project, release, service, []), id, ...restore];
}

/**
 * Retention: restic forgets all but the newest `keep` snapshots of each path
 * (per data service), and those older than `days` when given, then prunes;
 * prints the ids it keeps, one per line.
 */
export function retain(l: Layout, image: string, project: string, keep: number, days: number): Argv {
  return ["sh", "-c", script([
    'keep=$1; days=$2',
    'set -- --keep-last "$keep"; [ "$days" -gt 0 ] && set -- "$@" --keep-within "${days}d"',
    `rr -- forget --tag "project=$p" --group-by paths "$@" --prune > /dev/null 2> "$err" || { cat "$err" >&2; exit 1; }`,
    'rr -- snapshots --json > "$out" 2> "$err" || { cat "$err" >&2; exit 1; }',
    'tr "{" "\\n" < "$out" | sed -n \'s/.*"id":"\\([0-9a-f]\\{64\\}\\)".*/\\1/p\'',
  ]), "sh", ...positional(l, image, project, "none", "none", []), String(keep), String(days)];
}

/**
 * Copy the project's snapshots to the off-site repository `dest` (restic's `sftp:user@host:/path`): those
 * already there are skipped, so a copy that failed once is caught up by the next. Made there on first
 * use with the local one's chunker parameters (so that copies deduplicate), same password.
 * The SSH key is the second line of stdin (base64): it goes into an ssh-agent inside the container,
 * never into a file; the off-site host's key is pinned (`knownHosts`, a known_hosts line: not secret).
 */
export function copyOffsite(l: Layout, image: string, project: string, dest: string, knownHosts: string): Argv {
  return ["sh", "-c", script([
    `IFS= read -r key || exit ${DATA_EXIT.noPassword}`,
    'dest=$1; kh=$2',
    // the network this time (the off-site host); the local repository writable: restic locks it while it reads
    '{ printf "%s\\n%s\\n" "$pw" "$key"; } | docker run --rm -i -v "$repo:/repo" --entrypoint sh "$img" -c \'' + [
      'IFS= read -r RESTIC_PASSWORD && IFS= read -r k || exit 1',
      'export RESTIC_PASSWORD RESTIC_FROM_PASSWORD="$RESTIC_PASSWORD"',
      'dest=$1; mkdir -p ~/.ssh && printf "%s\\n" "$2" > ~/.ssh/known_hosts; shift 2',
      'eval "$(ssh-agent -s)" > /dev/null && printf "%s" "$k" | base64 -d | ssh-add -q - 2> /dev/null || { echo "the off-site SSH key is not a private key ssh-add takes" >&2; exit 1; }',
      'restic --repo "$dest" --no-cache cat config > /dev/null 2>&1 || restic --repo "$dest" --no-cache init --copy-chunker-params --from-repo /repo > /dev/null || exit 1',
      'restic --repo "$dest" --no-cache copy --from-repo /repo --tag "project=$1" > /dev/null; rc=$?; ssh-agent -k > /dev/null 2>&1; exit $rc',
    ].join("; ") + '\' sh "$dest" "$kh" "$p" 2> "$err" || { wrong; cat "$err" >&2; exit 1; }',
  ]), "sh", ...positional(l, image, project, "none", "none", []), dest, knownHosts];
}
