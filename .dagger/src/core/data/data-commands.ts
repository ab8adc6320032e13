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
import { shellQuote, type Argv } from "../shell.js";
import type { OffsiteKind } from "./offsite.js";

/** What an off-site script is given besides the secret: where the repository is, its kind, how its host is checked. */
export interface OffsiteTarget {
  kind: OffsiteKind;
  repository: string;
  /** A known_hosts line (sftp), or the CA as base64, "" for the system's (s3): offsitePin. */
  pin: string;
}

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
  noSnapshot: 66,
} as const;

/**
 * A physical restore stages a volume's data inside the volume (renames within it are instant and cannot half
 * happen), then swaps it in; what it replaced is kept beside until the service is healthy on the restored data.
 */
export const RESTORE_STAGE = ".vps-pipeline-restore";
export const RESTORE_REPLACED = ".vps-pipeline-replaced";

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

/** Every snapshot of `ids` is in the repository and can be read, or DATA_EXIT.noSnapshot naming it. Touches nothing. */
export function snapshotsReadable(l: Layout, image: string, project: string, ids: readonly string[]): Argv {
  return [
    "sh",
    "-c",
    script(
      [
        // listed first: restic retries reading a file that is not there for most of a minute
        `rr -- list snapshots > "$out" 2> "$err" || { wrong; cat "$err" >&2; exit ${DATA_EXIT.restoreFailed}; }`,
        'for id in "$@"; do',
        `  grep -q "^$id" "$out" || { echo "snapshot $id is not in the repository (forgotten, or the repository is another one)" >&2; exit ${DATA_EXIT.noSnapshot}; }`,
        `  rr -- cat snapshot "$id" > /dev/null 2> "$err" || { wrong; echo "snapshot $id cannot be read from the repository: $(tail -2 "$err")" >&2; exit ${DATA_EXIT.noSnapshot}; }`,
        "done",
      ],
      "need",
    ),
    "sh",
    ...positional(l, image, project, "none", "none", []),
    ...ids,
  ];
}

/**
 * In a throwaway container with the volume at $2 (/v): the staged data of volume $1 in place of what it held (kept aside). Renames
 * only; one that fails puts back what it had moved, so the volume holds what it held.
 */
export const SWAP_IN = [
  `R=${RESTORE_REPLACED}; S=${RESTORE_STAGE}; cd "$2" && s=$S/data/$1 && [ -d "$s" ] || exit 3`,
  'each() { for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do [ -e "$e" ] || [ -L "$e" ] || continue; case ${e#./} in "$S"|"$R") continue;; esac; mv "$e" "$2"/ || return 1; done; }',
  // back: what came from the stage returns there, what was kept aside returns, with the root's owner and mode
  'undo() { each . "$s"; each "$R" .; chown "$(stat -c %u:%g "$R")" . && chmod "$(stat -c %a "$R")" . && rmdir "$R"; exit 1; }',
  'rm -rf "$R" && mkdir "$R" && chown "$(stat -c %u:%g .)" "$R" && chmod "$(stat -c %a .)" "$R" || exit 1',
  'each . "$R" || undo',
  'each "$s" . || undo',
  'chown "$(stat -c %u:%g "$s")" . && chmod "$(stat -c %a "$s")" . || undo',
  'rm -rf "$S"',
].join("\n");

/** The other way (the volume at $1), after a later volume failed: the restored data goes, what the volume held is back in place. */
export const SWAP_BACK = [
  `R=${RESTORE_REPLACED}; cd "$1" && [ -d "$R" ] || exit 0`,
  'for e in * .[!.]* ..?*; do [ -e "$e" ] || [ -L "$e" ] || continue; [ "$e" = "$R" ] || rm -rf "$e" || exit 1; done',
  'for e in "$R"/* "$R"/.[!.]* "$R"/..?*; do [ -e "$e" ] || [ -L "$e" ] || continue; mv "$e" . || exit 1; done',
  'chown "$(stat -c %u:%g "$R")" . && chmod "$(stat -c %a "$R")" . && rmdir "$R"',
].join("\n");

/** `inv <volume> <script> [args]`: a script in a throwaway container of restic's image with the volume at /v. */
const IN_VOLUME =
  'inv() { v=$1; c=$2; shift 2; docker run --rm --network none -v "$v:/v" --entrypoint sh "$img" -c "$c" sh "$@"; }';

/**
 * Physical restore, step one, with the service running: snapshot `id` read into each volume's stage (`volume=name`:
 * the volume, and the one the snapshot was taken of), room for it checked first. Nothing the service uses changes;
 * a failure leaves no stage behind.
 */
export function stagePhysical(
  l: Layout,
  image: string,
  project: string,
  service: string,
  id: string,
  volumes: readonly string[],
): Argv {
  return [
    "sh",
    "-c",
    script(
      [
        "id=$1; shift",
        IN_VOLUME,
        `drop() { for v in "$@"; do inv "\${v%%=*}" 'rm -rf /v/${RESTORE_STAGE}'; done; }`,
        // the restored copy sits beside the data it replaces until the service is healthy on it
        String.raw`need=$(rr -- stats --json --mode restore-size "$id" 2> /dev/null | sed -n 's/.*"total_size":\([0-9]*\).*/\1/p')`,
        `root=$(docker info --format '{{.DockerRootDir}}' 2> /dev/null); free=$(df -Pk "\${root:-/}" | awk 'NR == 2 { print $4 }')`,
        `[ -n "$need" ] && [ -n "$free" ] && [ "$free" -lt $((need / 1024 + 65536)) ] && { echo "the snapshot holds $((need / 1048576)) MiB, the disk of the volumes has $((free / 1024)) MiB free (the data it replaces stays until the service is healthy)" >&2; exit ${DATA_EXIT.noSpace}; }`,
        'drop "$@"',
        'for v in "$@"; do',
        `  rr -v "\${v%%=*}:/v" -- restore "$id" --target /v/${RESTORE_STAGE} --include "/data/\${v#*=}" > /dev/null 2> "$err" || { wrong; cat "$err" >&2; drop "$@"; exit ${DATA_EXIT.restoreFailed}; }`,
        `  inv "\${v%%=*}" '[ -d "/v/${RESTORE_STAGE}/data/$1" ]' "\${v#*=}" || { echo "snapshot $id holds nothing of volume \${v#*=}" >&2; drop "$@"; exit ${DATA_EXIT.restoreFailed}; }`,
        "done",
      ],
      "need",
    ),
    "sh",
    ...positional(l, image, project, "none", service, []),
    id,
    ...volumes,
  ];
}

/**
 * Physical restore, step two, all services at once: they stop, every volume's stage takes the place of its data
 * (kept aside), and they start again (`start`; else a rollback's switch starts them with the release it returns
 * to). If any volume fails, the ones already swapped are swapped back. Whatever happens otherwise (a failure, the
 * SSH connection gone), the services are started again with `release`, on the server: it ignores hang-ups.
 */
export function swapPhysical(
  l: Layout,
  image: string,
  project: string,
  release: ReleaseRef,
  services: readonly string[],
  volumes: readonly string[],
  start: boolean,
): Argv {
  return [
    "sh",
    "-c",
    script(
      [
        "start=$1; svcs=$2; shift 2",
        IN_VOLUME,
        // constant scripts of ours, quoted once for this one
        `swap_in=${shellQuote(SWAP_IN)}; swap_back=${shellQuote(SWAP_BACK)}`,
        "trap '' HUP PIPE",
        "trap 'dc start $svcs > /dev/null 2>&1' EXIT",
        'dc stop -t 30 $svcs > /dev/null 2> "$err" || { cat "$err" >&2; exit 1; }',
        "done_=",
        'for v in "$@"; do',
        '  if inv "${v%%=*}" "$swap_in" "${v#*=}" /v 2> "$err"; then done_="$done_ ${v%%=*}"; else',
        '    for u in $done_; do inv "$u" "$swap_back" /v; done',
        `    echo "putting the restored data of \${v#*=} in place failed: $(tail -2 "$err"); every volume holds what it held" >&2; exit ${DATA_EXIT.restoreFailed}`,
        "  fi",
        "done",
        'trap - EXIT; [ "$start" = 1 ] || exit 0',
        'dc start $svcs > /dev/null 2> "$err" || { cat "$err" >&2; exit 1; }',
      ],
      "need",
    ),
    "sh",
    ...positional(l, image, project, release, "none", []),
    start ? "1" : "0",
    services.join(" "),
    ...volumes,
  ];
}

/** Once the services are healthy on the restored data (or the restore gave up): what each volume kept aside, gone. */
export function dropRestoreLeftovers(l: Layout, image: string, project: string, volumes: readonly string[]): Argv {
  return [
    "sh",
    "-c",
    script(
      [IN_VOLUME, `for v in "$@"; do inv "\${v%%=*}" 'rm -rf /v/${RESTORE_REPLACED} /v/${RESTORE_STAGE}'; done`],
      "need",
    ),
    "sh",
    ...positional(l, image, project, "none", "none", []),
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

/** What compareLogical found: the dumps the same, different, or not compared (a dump with NUL bytes). */
export const ROUND_TRIP = { same: "same", differs: "differs", binary: "binary" } as const;

/**
 * A logical snapshot's round trip, in the copy it was restored into: `dump` (argv) run there again must print the
 * snapshot's dump line for line, but for the lines where dumps write their version and time or a session's key
 * (`--` comments, `\` client directives such as psql's `\restrict <random key>`). Prints `same <bytes>`,
 * `differs <snapshot's bytes> <new bytes>` (of what was compared), or `binary` (not compared: a binary dump's
 * header holds its own time, pg_dump -Fc). Hashed as they stream: no dump is written to the server's disk.
 */
export function compareLogical(
  l: Layout,
  image: string,
  project: string,
  release: ReleaseRef,
  service: string,
  id: string,
  dump: readonly string[],
): Argv {
  return [
    "sh",
    "-c",
    script(
      [
        "id=$1; shift",
        "norm() { LC_ALL=C grep -av -e '^--' -e '^\\\\'; }",
        '{ rr -- dump "$id" "/$svc.dump" 2> "$err"; echo $? > "$st/dump"; } | tr -dc \'\\000\' | wc -c > "$st/nul"',
        `[ "$(cat "$st/dump")" = 0 ] || { wrong; cat "$err" >&2; exit ${DATA_EXIT.restoreFailed}; }`,
        `[ "$(cat "$st/nul")" = 0 ] || { echo ${ROUND_TRIP.binary}; exit 0; }`,
        // cksum prints the CRC and the length of what it read: the same pair is the same text
        '{ rr -- dump "$id" "/$svc.dump" 2> "$err"; echo $? > "$st/dump"; } | norm | cksum > "$st/a"',
        '{ dc exec -T "$svc" "$@" 2> "$st/again.err"; echo $? > "$st/again"; } | norm | cksum > "$st/b"',
        `[ "$(cat "$st/dump")" = 0 ] || { wrong; cat "$err" >&2; exit ${DATA_EXIT.restoreFailed}; }`,
        `[ "$(cat "$st/again")" = 0 ] || { echo "the dump command exited with $(cat "$st/again"): $(tail -3 "$st/again.err")" >&2; exit ${DATA_EXIT.restoreFailed}; }`,
        `if cmp -s "$st/a" "$st/b"; then echo "${ROUND_TRIP.same} $(cut -d' ' -f2 "$st/a")"; else echo "${ROUND_TRIP.differs} $(cut -d' ' -f2 "$st/a") $(cut -d' ' -f2 "$st/b")"; fi`,
      ],
      "need",
    ),
    "sh",
    ...positional(l, image, project, release, service, []),
    id,
    ...dump,
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
 * What of compose project `project` exists on the server, wherever its folder: `container <name> <working dir>` and
 * `volume <name>` lines (nothing: the project does not run here).
 */
export function projectPresence(project: string): Argv {
  return [
    "sh",
    "-c",
    [
      'f="label=com.docker.compose.project=$1"',
      `docker ps -a --filter "$f" --format 'container {{.Names}} {{.Label "com.docker.compose.project.working_dir"}}'`,
      `docker volume ls --filter "$f" --format 'volume {{.Name}}'`,
    ].join("\n"),
    "sh",
    project,
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

/** Retention's verdict (core/data/retention.ts): these snapshots forgotten, then the repository pruned. */
export function forgetSnapshots(l: Layout, image: string, project: string, ids: readonly string[]): Argv {
  return [
    "sh",
    "-c",
    script([`rr -- forget --prune "$@" > /dev/null 2> "$err" || { cat "$err" >&2; exit 1; }`], "need"),
    "sh",
    ...positional(l, image, project, "none", "none", []),
    ...ids,
  ];
}

/**
 * restic in a container that reaches the off-site repository `$off` (restic's `sftp:user@host:/path` or
 * `s3:https://host/bucket/path`) and sees the local one as /repo. Its secret is the second line of stdin
 * (base64, core/data/offsite.ts): for SFTP an SSH key, handed to an ssh-agent inside the container, the host's
 * key pinned (a known_hosts line: not secret); for S3 the access key and its secret, exported to restic alone, the
 * endpoint checked against the CA given (or the image's). Never a file, a command line or a container's config.
 * Both repositories have the same password.
 */
function offsite(
  l: Layout,
  image: string,
  project: string,
  o: OffsiteTarget,
  body: readonly string[],
  init: "repo" | "need" | "dir",
  extra: readonly string[] = [],
): Argv {
  const s3 = [
    'c=$(printf "%s" "$k" | base64 -d) || exit 1',
    'AWS_ACCESS_KEY_ID=$(printf "%s\\n" "$c" | sed -n 1p); AWS_SECRET_ACCESS_KEY=$(printf "%s\\n" "$c" | sed -n 2p); r=$(printf "%s\\n" "$c" | sed -n 3p)',
    'export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; [ -z "$r" ] || export AWS_DEFAULT_REGION="$r"',
    // the CA is no secret; the file goes with the container
    '[ -z "$2" ] || { printf "%s" "$2" | base64 -d > /tmp/ca.pem && ca="--cacert /tmp/ca.pem"; } || exit 1',
  ].join("; ");
  const sftp =
    'mkdir -p ~/.ssh && printf "%s\\n" "$2" > ~/.ssh/known_hosts && eval "$(ssh-agent -s)" > /dev/null && printf "%s" "$k" | base64 -d | ssh-add -q - 2> /dev/null || { echo "the off-site SSH key is not a private key ssh-add takes" >&2; exit 1; }';
  const lines = [
    `IFS= read -r key || exit ${DATA_EXIT.noPassword}`,
    "off=$1; pin=$2; kind=$3; shift 3",
    // the network this time (the off-site host); the local repository writable: restic locks it while it reads
    '{ printf "%s\\n%s\\n" "$pw" "$key"; } | docker run --rm -i -v "$repo:/repo" --entrypoint sh "$img" -c \'' +
      [
        "IFS= read -r RESTIC_PASSWORD && IFS= read -r k || exit 1",
        'export RESTIC_PASSWORD RESTIC_FROM_PASSWORD="$RESTIC_PASSWORD"',
        "off=$1; p=$3; ca=",
        `if [ "$4" = s3 ]; then ${s3}; else ${sftp}; fi`,
        ...body,
        'rc=$?; [ -z "$SSH_AGENT_PID" ] || ssh-agent -k > /dev/null 2>&1; exit $rc',
      ].join("; ") +
      // what follows the four values (snapshot ids) is the body's, as $5…
      '\' sh "$off" "$pin" "$p" "$kind" "$@" 2> "$err" || { wrong; cat "$err" >&2; exit 1; }',
  ];
  return [
    "sh",
    "-c",
    script(lines, init),
    "sh",
    ...positional(l, image, project, "none", "none", []),
    o.repository,
    o.pin,
    o.kind,
    ...extra,
  ];
}

/**
 * Copy the project's snapshots to the off-site repository `dest`: those already there are skipped,
 * so a copy that failed once is caught up by the next. Made there on first use with the local one's
 * chunker parameters (so that copies deduplicate).
 */
export function copyOffsite(l: Layout, image: string, project: string, dest: OffsiteTarget): Argv {
  return offsite(
    l,
    image,
    project,
    dest,
    [
      'restic $ca --repo "$off" --no-cache cat config > /dev/null 2>&1 || restic $ca --repo "$off" --no-cache init --copy-chunker-params --from-repo /repo > /dev/null || exit 1',
      'restic $ca --repo "$off" --no-cache copy --from-repo /repo --tag "project=$p" > /dev/null',
    ],
    "repo",
  );
}

/** The project's snapshots in the off-site repository `dest`, as restic lists them (JSON), for its retention. */
export function listOffsite(l: Layout, image: string, project: string, dest: OffsiteTarget): Argv {
  return offsite(
    l,
    image,
    project,
    dest,
    ['restic $ca --repo "$off" --no-cache snapshots --json --tag "project=$p"'],
    "need",
  );
}

/** Forget snapshots `ids` of the off-site repository `dest` (retention: core/data/retention.ts), and prune it. */
export function forgetOffsite(
  l: Layout,
  image: string,
  project: string,
  dest: OffsiteTarget,
  ids: readonly string[],
): Argv {
  return offsite(
    l,
    image,
    project,
    dest,
    ['shift 4; restic $ca --repo "$off" --no-cache forget --prune "$@" > /dev/null'],
    "need",
    ids,
  );
}

/**
 * The other way, for a new server: the project's snapshots from the off-site repository `src` into
 * the local one, which is made (with the off-site one's chunker parameters) only once the off-site
 * one has opened with the password: a wrong password leaves no repository behind.
 */
export function copyFromOffsite(l: Layout, image: string, project: string, src: OffsiteTarget): Argv {
  return offsite(
    l,
    image,
    project,
    src,
    [
      'restic $ca --repo "$off" --no-cache cat config > /dev/null || exit 1',
      '{ [ -f /repo/config ] || restic $ca --repo /repo --no-cache init --copy-chunker-params --from-repo "$off" > /dev/null; } || exit 1',
      'restic $ca --repo /repo --no-cache copy --from-repo "$off" --tag "project=$p" > /dev/null',
    ],
    "dir",
  );
}
