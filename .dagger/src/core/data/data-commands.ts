/**
 * Commands for data snapshots (core/data/data.ts), built like core/server/server-commands.ts:
 * argument arrays, values only as positional parameters. restic runs in a
 * throwaway container of its image on the server; the repository is a folder
 * of the deploy directory (`.backups/restic`). Its password is the first line
 * of every script's stdin: it stays in shell variables and reaches restic on
 * its own stdin, never on a command line, in a container's config or on disk.
 */
import { SCRATCH_LABEL } from "./backup-check.js";
import { releaseDir, type Layout } from "../server/server-commands.js";
import { type Argv } from "../shell.js";

export const backupRepo = (l: Layout): string => `${l.dir}/.backups/restic`;
export const snapshotRecords = (l: Layout): string => `${l.releases}/snapshots.jsonl`;

/** Exit statuses the callers turn into coded errors. */
export const DATA_EXIT = {
  wrongPassword: 60,
  noSpace: 61,
  captureFailed: 62,
  restoreFailed: 63,
  noPassword: 64,
  noRepository: 65,
} as const;

/** The preamble: the password, the positional values, compose for the release, restic in its container. */
const PREAMBLE = [
  `IFS= read -r pw || exit ${DATA_EXIT.noPassword}`,
  "repo=$1; img=$2; p=$3; dir=$4; rel=$5; svc=$6; tags=$7; shift 7",
  'case "$init" in repo|dir) mkdir -p "$repo" || exit 1;; esac; [ -d "$repo" ] && repo=$(cd "$repo" && pwd)',
  'err=$(mktemp); out=$(mktemp); st=$(mktemp -d); trap \'rm -rf "$err" "$out" "$st"\' EXIT',
  'dc() { if [ -f "$rel/.env" ]; then docker compose --env-file "$rel/.env" --project-name "$p" --project-directory "$dir" --file "$rel/docker-compose.yml" "$@"; else docker compose --project-name "$p" --project-directory "$dir" --file "$rel/docker-compose.yml" "$@"; fi; }',
  // rr <docker run options> -- <restic arguments>: restic in its container (its image's entrypoint is restic itself:
  // sh reads the password first), the password on its stdin, then what `feed` lets through
  'rr() { o=""; while [ "$1" != -- ]; do o="$o $1"; shift; done; shift; { printf "%s\\n" "$pw"; [ -n "$feed" ] && cat; } | docker run --rm -i --network none -v "$repo:/repo" $o --entrypoint sh "$img" -c \'IFS= read -r RESTIC_PASSWORD && export RESTIC_PASSWORD && exec restic --repo /repo --no-cache "$@"\' restic "$@"; }',
  "feed=",
  `wrong() { grep -qi -e "wrong password" -e "no key found" "$err" && exit ${DATA_EXIT.wrongPassword}; }`,
  // the repository is made by the first capture; what only reads it finds none, and says so
  `if [ "$init" = repo ]; then rr -- cat config > /dev/null 2> "$err" || { wrong; rr -- init > /dev/null 2> "$err" || { wrong; cat "$err" >&2; exit 1; }; }`,
  `elif [ "$init" = need ] && [ ! -f "$repo/config" ]; then echo "no backup repository at $repo" >&2; exit ${DATA_EXIT.noRepository}; fi`,
  "now() { date +%s%3N; }",
];

/**
 * `repo`: make the repository when there is none (a capture); `need`: its absence is
 * DATA_EXIT.noRepository (what only reads it); `dir`: only its folder (a copy from off-site makes it).
 */
function script(lines: readonly string[], init: "repo" | "need" | "dir" = "repo"): string {
  return [`init=${init}`, ...PREAMBLE, ...lines].join("\n");
}

/** A release by id, or a folder laid out as one (the scratch copy a backup check runs: core/data/backup-check.ts). */
export type ReleaseRef = string | { dir: string };

const positional = (
  l: Layout,
  image: string,
  project: string,
  release: ReleaseRef,
  service: string,
  tags: readonly string[],
) => [
  backupRepo(l),
  image,
  project,
  l.dir,
  typeof release === "string" ? releaseDir(l, release) : release.dir,
  service,
  tags.join(","),
];

/**
 * Physical capture of a service's volumes (`volumes`: docker's names): free
 * space checked first (their size against the repository's disk), the service
 * stopped, the volumes read by restic, the service started again whatever
 * happened. Prints `stopped_ms <n>` and restic's JSON summary.
 */
export function capturePhysical(
  l: Layout,
  image: string,
  project: string,
  release: string,
  service: string,
  tags: readonly string[],
  volumes: readonly string[],
): Argv {
  return [
    "sh",
    "-c",
    script([
      'm=""; for v in "$@"; do m="$m -v $v:/data/$v:ro"; done',
      // what the volumes hold, against what the repository's disk has free (plus 64 MiB of room)
      'need=$(docker run --rm --network none $m --entrypoint du "$img" -sk /data | tail -1 | cut -f1)',
      "free=$(df -Pk \"$repo\" | awk 'NR == 2 { print $4 }')",
      `[ -n "$need" ] && [ -n "$free" ] && [ "$free" -lt $((need + 65536)) ] && { echo "the volumes hold $((need / 1024)) MiB, the disk of $repo has $((free / 1024)) MiB free" >&2; exit ${DATA_EXIT.noSpace}; }`,
      "t0=$(now)",
      'dc stop -t 30 "$svc" > /dev/null 2> "$err" || { cat "$err" >&2; exit 1; }',
      'rr $m -- backup --json --tag "$tags" /data > "$out" 2> "$err"; rc=$?',
      'dc start "$svc" > /dev/null 2>&1; t1=$(now)',
      'echo "stopped_ms $((t1 - t0))"',
      `[ "$rc" -eq 0 ] || { cat "$err" >&2; exit ${DATA_EXIT.captureFailed}; }`,
      'grep \'"message_type":"summary"\' "$out"',
    ]),
    "sh",
    ...positional(l, image, project, release, service, tags),
    ...volumes,
  ];
}

/**
 * Logical capture: `dump` (argv) run in the running service, its stdout read by
 * restic as `/<service>.dump`. A dump that fails leaves no snapshot behind.
 */
export function captureLogical(
  l: Layout,
  image: string,
  project: string,
  release: string,
  service: string,
  tags: readonly string[],
  dump: readonly string[],
): Argv {
  return [
    "sh",
    "-c",
    script([
      `free=$(df -Pk "$repo" | awk 'NR == 2 { print $4 }'); [ -n "$free" ] && [ "$free" -lt 65536 ] && { echo "the disk of $repo has $((free / 1024)) MiB free" >&2; exit ${DATA_EXIT.noSpace}; }`,
      "feed=1",
      '{ dc exec -T "$svc" "$@" 2> "$st/dump.err"; echo $? > "$st/dump"; } | rr -- backup --json --tag "$tags" --stdin --stdin-filename "$svc.dump" > "$out" 2> "$err"; rc=$?',
      'id=$(grep \'"message_type":"summary"\' "$out" | sed -n \'s/.*"snapshot_id":"\\([0-9a-f]*\\)".*/\\1/p\')',
      'if [ "$(cat "$st/dump")" != 0 ]; then',
      '  feed=; [ -n "$id" ] && rr -- forget "$id" > /dev/null 2>&1',
      `  echo "the dump command exited with $(cat "$st/dump"): $(tail -3 "$st/dump.err")" >&2; exit ${DATA_EXIT.captureFailed}`,
      "fi",
      `[ "$rc" -eq 0 ] || { cat "$err" >&2; exit ${DATA_EXIT.captureFailed}; }`,
      'grep \'"message_type":"summary"\' "$out"',
    ]),
    "sh",
    ...positional(l, image, project, release, service, tags),
    ...dump,
  ];
}

/**
 * The release record kept with the data: the release's folder (compose file, `.env`, the target's
 * files), the files releases ship and the history, as one restic snapshot under `/vps-pipeline`
 * (one path whatever the release: retention keeps the newest records). What `restore --rebuild`
 * puts on a new server. Prints restic's JSON summary.
 */
export function captureRecord(
  l: Layout,
  image: string,
  project: string,
  release: string,
  tags: readonly string[],
): Argv {
  return [
    "sh",
    "-c",
    script([
      // absolute: docker takes a relative source for a volume's name
      'rel=$(cd "$rel" && pwd) || exit 1; files=$(dirname "$rel")/files; hist=$(dirname "$rel")/history.jsonl',
      // mounted one by one: a missing source would be made by docker as a root-owned folder
      'mkdir -p "$files" && touch "$hist" || exit 1',
      'rr -v "$rel:/vps-pipeline/release:ro" -v "$files:/vps-pipeline/files:ro" -v "$hist:/vps-pipeline/history.jsonl:ro" -- backup --json --tag "$tags" /vps-pipeline > "$out" 2> "$err"',
      `[ $? -eq 0 ] || { wrong; cat "$err" >&2; exit ${DATA_EXIT.captureFailed}; }`,
      'grep \'"message_type":"summary"\' "$out"',
    ]),
    "sh",
    ...positional(l, image, project, release, "none", tags),
  ];
}

/** The project's snapshots as restic lists them (JSON): what a new server rebuilds from. Never makes a repository. */
export function listSnapshots(l: Layout, image: string, project: string): Argv {
  return [
    "sh",
    "-c",
    script(
      [
        `rr -- snapshots --json --tag "project=$p" 2> "$err" || { wrong; cat "$err" >&2; exit ${DATA_EXIT.restoreFailed}; }`,
      ],
      "need",
    ),
    "sh",
    ...positional(l, image, project, "none", "none", []),
  ];
}

/**
 * A release record (captureRecord) put back: release `release`'s folder, the shipped files and,
 * where the server has none, the history; owned by the deploy user. Staged beside the repository
 * (the `.env` is in it) and removed whatever happens.
 */
export function restoreRecord(l: Layout, image: string, project: string, release: string, id: string): Argv {
  return [
    "sh",
    "-c",
    script(
      [
        'id=$1; releases=$(dirname "$rel")',
        'stage=$(mktemp -d "$repo/../record.XXXXXX") || exit 1; trap \'rm -rf "$err" "$out" "$st" "$stage"\' EXIT',
        `rr -v "$stage:/out" -- restore "$id" --target /out > /dev/null 2> "$err" || { wrong; cat "$err" >&2; exit ${DATA_EXIT.restoreFailed}; }`,
        // restic wrote as root: the files become the deploy user's, as a deploy leaves them
        'docker run --rm --network none -v "$stage:/out" --entrypoint chown "$img" -R "$(id -u):$(id -g)" /out || exit 1',
        '[ -f "$stage/vps-pipeline/release/docker-compose.yml" ] || { echo "snapshot $id holds no release record" >&2; exit 1; }',
        'mkdir -p "$rel" "$releases/files" && cp -a "$stage/vps-pipeline/release/." "$rel/" && cp -a "$stage/vps-pipeline/files/." "$releases/files/" || exit 1',
        '[ -s "$releases/history.jsonl" ] || cp "$stage/vps-pipeline/history.jsonl" "$releases/history.jsonl"',
      ],
      "need",
    ),
    "sh",
    ...positional(l, image, project, release, "none", []),
    id,
  ];
}

/**
 * A new server's data services before their data is put back (release `release`'s compose file):
 * `create` makes their containers and volumes, as compose labels them, without starting them (a
 * physical restore fills the volumes); `run` starts them and waits up to `seconds` for them to be
 * healthy (or running, without a health check): a dump is fed to a running service.
 */
export function prepareDataServices(
  l: Layout,
  image: string,
  project: string,
  release: ReleaseRef,
  mode: "create" | "run",
  seconds: number,
  services: readonly string[],
): Argv {
  return [
    "sh",
    "-c",
    script(
      [
        "mode=$1; t=$2; shift 2",
        'if [ "$mode" = create ]; then dc up --no-start --no-deps --pull never "$@" > /dev/null 2> "$err" || { cat "$err" >&2; exit 1; }; exit 0; fi',
        'dc up --detach --no-deps --pull never "$@" > /dev/null 2> "$err" || { cat "$err" >&2; exit 1; }',
        "end=$(( $(date +%s) + t ))",
        'for s in "$@"; do while :; do',
        '  hs=$(docker inspect --format "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}" $(dc ps -q "$s") 2> /dev/null)',
        '  case "$hs" in healthy|running) break;; unhealthy|exited|dead) echo "$s is $hs" >&2; exit 1;; esac',
        '  [ "$(date +%s)" -lt "$end" ] || { echo "$s is not healthy after ${t}s (${hs:-no container})" >&2; exit 1; }; sleep 1',
        "done; done",
      ],
      "need",
    ),
    "sh",
    ...positional(l, image, project, release, "none", []),
    mode,
    String(seconds),
    ...services,
  ];
}

/**
 * Physical restore: the service stopped, each volume (`volume=name`: the volume, and the one the
 * snapshot was taken of) emptied and filled from snapshot `id`; started again when `start` (a
 * rollback's switch starts it itself, with the release it returns to).
 */
export function restorePhysical(
  l: Layout,
  image: string,
  project: string,
  release: ReleaseRef,
  service: string,
  id: string,
  volumes: readonly string[],
  start: boolean,
): Argv {
  return [
    "sh",
    "-c",
    script([
      "id=$1; start=$2; shift 2",
      // each `volume=name`: the volume filled with what the snapshot holds of the volume `name` it was taken from
      'm=""; for v in "$@"; do m="$m -v ${v%%=*}:/data/${v#*=}"; done',
      'dc stop -t 30 "$svc" > /dev/null 2> "$err" || { cat "$err" >&2; exit 1; }',
      // emptied first: a restore must not leave files the snapshot does not have (a shell glob: busybox's find may lack
      // -delete)
      'for v in "$@"; do docker run --rm --network none -v "${v%%=*}:/data/x" --entrypoint sh "$img" -c \'rm -rf "$1"/* "$1"/.[!.]* "$1"/..?*\' sh /data/x || exit 1; done',
      `rr $m -- restore "$id" --target / > /dev/null 2> "$err" || { wrong; cat "$err" >&2; exit ${DATA_EXIT.restoreFailed}; }`,
      '[ "$start" = 1 ] && { dc start "$svc" > /dev/null 2> "$err" || { cat "$err" >&2; exit 1; }; }',
      "true",
    ]),
    "sh",
    ...positional(l, image, project, release, service, []),
    id,
    start ? "1" : "0",
    ...volumes,
  ];
}

/** Logical restore: what snapshot `id` holds for the service, fed to `restore` (argv) run in the running service. */
export function restoreLogical(
  l: Layout,
  image: string,
  project: string,
  release: ReleaseRef,
  service: string,
  id: string,
  restore: readonly string[],
): Argv {
  return [
    "sh",
    "-c",
    script([
      "id=$1; shift",
      '{ rr -- dump "$id" "/$svc.dump" 2> "$err"; echo $? > "$st/dump"; } | { dc exec -T "$svc" "$@" > /dev/null 2> "$st/restore.err"; echo $? > "$st/restore"; }',
      `[ "$(cat "$st/dump")" = 0 ] || { wrong; cat "$err" >&2; exit ${DATA_EXIT.restoreFailed}; }`,
      `[ "$(cat "$st/restore")" = 0 ] || { echo "the restore command exited with $(cat "$st/restore"): $(tail -3 "$st/restore.err")" >&2; exit ${DATA_EXIT.restoreFailed}; }`,
    ]),
    "sh",
    ...positional(l, image, project, release, service, []),
    id,
    ...restore,
  ];
}

/** `check` (argv) run in the running service: exit 0 is a good backup. Prints its last lines either way. */
export function runCheck(
  l: Layout,
  image: string,
  project: string,
  release: ReleaseRef,
  service: string,
  check: readonly string[],
): Argv {
  return [
    "sh",
    "-c",
    script(['dc exec -T "$svc" "$@" > "$out" 2>&1; rc=$?; tail -5 "$out"; exit $rc'], "need"),
    "sh",
    ...positional(l, image, project, release, service, []),
    ...check,
  ];
}

/** restic's own check of the repository (its structure and the index of every snapshot). */
export function checkRepository(l: Layout, image: string, project: string): Argv {
  return [
    "sh",
    "-c",
    script(
      [
        `rr -- check > "$out" 2> "$err" || { wrong; tail -5 "$out" >&2; cat "$err" >&2; exit ${DATA_EXIT.restoreFailed}; }`,
      ],
      "need",
    ),
    "sh",
    ...positional(l, image, project, "none", "none", []),
  ];
}

/**
 * The scratch copy's folder (its compose file and a copy of the release's `.env`) and containers, volumes and network:
 * gone.
 */
export function removeScratch(dir: string, project: string, production: string): Argv {
  return [
    "sh",
    "-c",
    [
      // compose's project label and the scratch mark (core/data/backup-check.ts): a project merely named like the
      // scratch copy keeps everything
      `dir=$1; p=$2; m="label=${SCRATCH_LABEL}=$3"`,
      'ids=$(docker ps -aq --filter "label=com.docker.compose.project=$p" --filter "$m"); [ -z "$ids" ] || docker rm -fv $ids > /dev/null',
      'vols=$(docker volume ls -q --filter "label=com.docker.compose.project=$p" --filter "$m"); [ -z "$vols" ] || docker volume rm $vols > /dev/null',
      'nets=$(docker network ls -q --filter "label=com.docker.compose.project=$p" --filter "$m"); [ -z "$nets" ] || docker network rm $nets > /dev/null',
      'rm -rf "$dir"',
    ].join("\n"),
    "sh",
    dir,
    project,
    production,
  ];
}

/**
 * Retention: restic forgets all but the newest `keep` snapshots of each path
 * (per data service), and those older than `days` when given, then prunes;
 * prints the ids it keeps, one per line.
 */
export function retain(l: Layout, image: string, project: string, keep: number, days: number): Argv {
  return [
    "sh",
    "-c",
    script([
      "keep=$1; days=$2",
      'set -- --keep-last "$keep"; [ "$days" -gt 0 ] && set -- "$@" --keep-within "${days}d"',
      `rr -- forget --tag "project=$p" --group-by paths "$@" --prune > /dev/null 2> "$err" || { cat "$err" >&2; exit 1; }`,
      'rr -- snapshots --json > "$out" 2> "$err" || { cat "$err" >&2; exit 1; }',
      'tr "{" "\\n" < "$out" | sed -n \'s/.*"id":"\\([0-9a-f]\\{64\\}\\)".*/\\1/p\'',
    ]),
    "sh",
    ...positional(l, image, project, "none", "none", []),
    String(keep),
    String(days),
  ];
}

/**
 * restic in a container that reaches the off-site repository `$off` (restic's `sftp:user@host:/path`)
 * and sees the local one as /repo. The SSH key is the second line of stdin (base64): it goes into an
 * ssh-agent inside the container, never into a file; the off-site host's key is pinned (a
 * known_hosts line: not secret). Both repositories have the same password.
 */
function offsite(body: readonly string[]): string[] {
  return [
    `IFS= read -r key || exit ${DATA_EXIT.noPassword}`,
    "off=$1; kh=$2",
    // the network this time (the off-site host); the local repository writable: restic locks it while it reads
    '{ printf "%s\\n%s\\n" "$pw" "$key"; } | docker run --rm -i -v "$repo:/repo" --entrypoint sh "$img" -c \'' +
      [
        "IFS= read -r RESTIC_PASSWORD && IFS= read -r k || exit 1",
        'export RESTIC_PASSWORD RESTIC_FROM_PASSWORD="$RESTIC_PASSWORD"',
        'off=$1; p=$3; mkdir -p ~/.ssh && printf "%s\\n" "$2" > ~/.ssh/known_hosts',
        'eval "$(ssh-agent -s)" > /dev/null && printf "%s" "$k" | base64 -d | ssh-add -q - 2> /dev/null || { echo "the off-site SSH key is not a private key ssh-add takes" >&2; exit 1; }',
        ...body,
        "rc=$?; ssh-agent -k > /dev/null 2>&1; exit $rc",
      ].join("; ") +
      '\' sh "$off" "$kh" "$p" 2> "$err" || { wrong; cat "$err" >&2; exit 1; }',
  ];
}

/**
 * Copy the project's snapshots to the off-site repository `dest`: those already there are skipped,
 * so a copy that failed once is caught up by the next. Made there on first use with the local one's
 * chunker parameters (so that copies deduplicate).
 */
export function copyOffsite(l: Layout, image: string, project: string, dest: string, knownHosts: string): Argv {
  return [
    "sh",
    "-c",
    script(
      offsite([
        'restic --repo "$off" --no-cache cat config > /dev/null 2>&1 || restic --repo "$off" --no-cache init --copy-chunker-params --from-repo /repo > /dev/null || exit 1',
        'restic --repo "$off" --no-cache copy --from-repo /repo --tag "project=$p" > /dev/null',
      ]),
    ),
    "sh",
    ...positional(l, image, project, "none", "none", []),
    dest,
    knownHosts,
  ];
}

/**
 * The other way, for a new server: the project's snapshots from the off-site repository `src` into
 * the local one, which is made (with the off-site one's chunker parameters) only once the off-site
 * one has opened with the password: a wrong password leaves no repository behind.
 */
export function copyFromOffsite(l: Layout, image: string, project: string, src: string, knownHosts: string): Argv {
  return [
    "sh",
    "-c",
    script(
      offsite([
        'restic --repo "$off" --no-cache cat config > /dev/null || exit 1',
        '{ [ -f /repo/config ] || restic --repo /repo --no-cache init --copy-chunker-params --from-repo "$off" > /dev/null; } || exit 1',
        'restic --repo /repo --no-cache copy --from-repo "$off" --tag "project=$p" > /dev/null',
      ]),
      "dir",
    ),
    "sh",
    ...positional(l, image, project, "none", "none", []),
    src,
    knownHosts,
  ];
}
