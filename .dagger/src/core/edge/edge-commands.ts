/**
 * Commands for the edge and the rollover of services behind it (see
 * core/edge/edge.ts), built like core/server/server-commands.ts: argument arrays, values
 * only as positional parameters.
 */
import {
  EDGE_ADMIN,
  EDGE_CONTAINER,
  EDGE_NETWORK,
  EDGE_VOLUME,
  PROJECT_NETWORK_LABEL,
  projectNetwork,
} from "./edge.js";
import { LOCK_BUSY_EXIT, releaseDir, type Layout } from "../server/server-commands.js";
import { type Argv } from "../shell.js";

/** One lock per VPS for the edge's config: projects of several users share the edge (umask 0 lets each open it). */
export const EDGE_LOCK = "/tmp/vps-pipeline-edge.lock";

/** Hold the edge lock while stdin stays open; prints LOCKED once held. */
export function holdEdgeLock(waitSeconds: number): Argv {
  return [
    "sh",
    "-c",
    // opened for reading, never created by that open: another deploy user's lock file in /tmp cannot be opened with
    // O_CREAT where fs.protected_regular is set (systemd's default sysctl sets it); made first when missing
    'umask 0; [ -e "$3" ] || : >> "$3" 2> /dev/null; exec 9< "$3" || exit 1; flock -E "$1" -w "$2" 9 || exit $?; echo LOCKED; exec cat > /dev/null',
    "sh",
    String(LOCK_BUSY_EXIT),
    String(waitSeconds),
    EDGE_LOCK,
  ];
}

function releaseCompose(l: Layout, project: string, id: string): string[] {
  return [project, l.dir, releaseDir(l, id)];
}

const COMPOSE_ARGS = [
  "p=$1; dir=$2; rel=$3; shift 3",
  'set -- --project-name "$p" --project-directory "$dir" --file "$rel/docker-compose.yml" "$@"',
  'if [ -f "$rel/.env" ]; then set -- --env-file "$rel/.env" "$@"; fi',
];

/**
 * A release's services as compose resolves them on the VPS, with its `.env`:
 * `=== services` then the enabled services (profiles applied), `=== hashes`
 * then `service hash` (compose's config hash, the label its containers carry:
 * equal means the container runs exactly this service definition), `=== config`
 * then the whole config as JSON (labels interpolated: the published ports).
 */
export function releaseConfig(l: Layout, project: string, id: string): Argv {
  const script = [
    ...COMPOSE_ARGS,
    'echo "=== services"; docker compose "$@" config --services || exit 1',
    'echo "=== hashes"; docker compose "$@" config --hash "*" || exit 1',
    'echo "=== config"; docker compose "$@" config --format json',
  ].join("\n");
  return ["sh", "-c", script, "sh", ...releaseCompose(l, project, id)];
}

/**
 * `up` for some services only, without their dependencies (those behind the edge roll over instead), and
 * without removing orphans: a renamed service behind the edge serves until its successor has its route.
 */
export function upServices(l: Layout, project: string, id: string, services: readonly string[]): Argv {
  return [
    "sh",
    "-c",
    [...COMPOSE_ARGS, 'exec docker compose "$@"'].join("\n"),
    "sh",
    ...releaseCompose(l, project, id),
    "up",
    "--detach",
    "--pull",
    "never",
    "--no-deps",
    ...services,
  ];
}

/**
 * Start `count` containers of `service` in all, keeping every existing one as it is: the new ones come up beside
 * the old. Its dependencies are already up (`--no-recreate` leaves them be); without `--no-deps` the container's
 * config hash is the one `config --hash` gives, which is how the next rollover knows it runs this definition.
 */
export function scaleBeside(l: Layout, project: string, id: string, service: string, count: number): Argv {
  return [
    "sh",
    "-c",
    [...COMPOSE_ARGS, 'exec docker compose "$@"'].join("\n"),
    "sh",
    ...releaseCompose(l, project, id),
    "up",
    "--detach",
    "--no-recreate",
    "--pull",
    "never",
    "--scale",
    `${service}=${count}`,
    service,
  ];
}

/** `name<TAB>state<TAB>config hash<TAB>ports<TAB>service` of the project's containers (not one-off runs). */
export function serviceContainers(project: string): Argv {
  return [
    "docker",
    "ps",
    "--all",
    "--filter",
    `label=com.docker.compose.project=${project}`,
    "--filter",
    "label=com.docker.compose.oneoff=False",
    "--format",
    '{{.Names}}\t{{.State}}\t{{.Label "com.docker.compose.config-hash"}}\t{{.Ports}}\t{{.Label "com.docker.compose.service"}}',
  ];
}

/** One container of a project, as `serviceContainers` lists it. */
export interface ServiceContainer {
  name: string;
  state: string;
  /** compose's config hash of the definition it was made from */
  hash: string;
  /** Publishes host ports itself (a release from before the service was behind the edge). */
  publishes: boolean;
  service: string;
}

export function parseServiceContainers(out: string): ServiceContainer[] {
  return out
    .split("\n")
    .filter((x) => x.trim())
    .map((line) => {
      const [name = "", state = "", hash = "", ports = "", service = ""] = line.split("\t");
      return { name, state, hash, publishes: ports.includes("->"), service };
    });
}

/**
 * What a rollover of one service does with its containers, decided from what
 * runs (`old`) and the config hash of the release's definition: nothing when
 * every container already runs that definition, as many as the release asks (the
 * same release again, or a rollback to one that never left); otherwise new containers start beside the
 * old, those publishing the port themselves give it up to the edge first
 * (`migrating`), and the rest are drained once the route has moved (`leaving`).
 */
export type RolloverPlan =
  { kind: "in-place"; current: string[] } | { kind: "beside"; migrating: string[]; leaving: string[]; scaleTo: number };

export function planRollover(old: readonly ServiceContainer[], hash: string, replicas: number): RolloverPlan {
  const current = old.filter((c) => c.hash === hash && c.state === "running" && !c.publishes);
  // a changed replica count rolls over too: compose's config hash does not cover `deploy.replicas`
  if (old.length > 0 && current.length === old.length && old.length === replicas)
    return { kind: "in-place", current: current.map((c) => c.name) };
  return {
    kind: "beside",
    migrating: old.filter((c) => c.publishes).map((c) => c.name),
    leaving: old.filter((c) => !c.publishes).map((c) => c.name),
    scaleTo: old.length + replicas,
  };
}

/** `name state health` per container (health empty without a healthcheck). */
export function containerHealth(names: readonly string[]): Argv {
  return [
    "docker",
    "inspect",
    "--type",
    "container",
    "--format",
    "{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
    ...names,
  ];
}

/**
 * Remove containers; `drain` seconds for each to stop by itself first. Names that are already gone are not an error.
 */
export function removeContainers(names: readonly string[], drainSeconds: number): Argv {
  return [
    "sh",
    "-c",
    't=$1; shift; docker stop -t "$t" "$@" > /dev/null 2>&1; docker rm -f "$@" > /dev/null 2>&1; true',
    "sh",
    String(drainSeconds),
    ...names,
  ];
}

/**
 * Wait, at most `waitSeconds`, until the edge has no connection left to these containers' `port` (requests it sent
 * before the route moved, streams opened on them): Caddy's config change returns at once, its old config finishing
 * in the background. The old config's idle keep-alive connections close with it, so an open connection is work in
 * progress. Prints `busy <n>` when the time ran out.
 */
export function drainFromEdge(project: string, names: readonly string[], port: number, waitSeconds: number): Argv {
  return [
    "sh",
    "-c",
    [
      "net=$1; port=$2; wait=$3; shift 3; want=",
      'for n in "$@"; do',
      '  ip=$(docker inspect --format "{{with index .NetworkSettings.Networks \\"$net\\"}}{{.IPAddress}}{{end}}" "$n" 2> /dev/null) || continue',
      // /proc/net/tcp's remote address: the IPv4 address's bytes reversed, then the port, in hex; tcp6 holds the
      // same address mapped (::ffff:a.b.c.d) when the proxy dialled from a dual-stack socket
      '  [ -n "$ip" ] && want="$want $(echo "$ip" | awk -F. -v p="$port" \'{a = sprintf("%02X%02X%02X%02X:%04X", $4, $3, $2, $1, p); printf "%s 0000000000000000FFFF0000%s", a, a}\')"',
      "done",
      '[ -n "$want" ] || exit 0',
      "end=$(($(date +%s) + wait))",
      "while :; do",
      `  busy=$(docker exec ${EDGE_CONTAINER} cat /proc/net/tcp /proc/net/tcp6 2> /dev/null | awk -v want="$want" 'BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) W[w[i]] = 1 } $4 == "01" && ($3 in W) { c++ } END { print c + 0 }')`,
      '  [ "$busy" -eq 0 ] && exit 0',
      '  [ "$(date +%s)" -ge "$end" ] && { echo "busy $busy"; exit 0; }',
      "  sleep 0.1",
      "done",
    ].join("\n"),
    "sh",
    projectNetwork(project),
    String(port),
    String(waitSeconds),
    ...names,
  ];
}

/**
 * Attach containers to their project's edge network (by name only: no service alias there), and off the old shared one.
 */
export function connectToEdge(project: string, names: readonly string[]): Argv {
  return [
    "sh",
    "-c",
    [
      "net=$1; shift",
      'for n in "$@"; do',
      '  docker network connect "$net" "$n" 2> /dev/null || docker inspect --format "{{index .NetworkSettings.Networks \\"$net\\"}}" "$n" | grep -qv "<no value>" || exit 1',
      `  docker network disconnect ${EDGE_NETWORK} "$n" > /dev/null 2>&1 || true`,
      "done",
    ].join("\n"),
    "sh",
    projectNetwork(project),
    ...names,
  ];
}

/**
 * The network between the edge and one project (made once, labelled so that a
 * replaced edge joins it again), with the edge attached when it exists.
 */
export function joinProjectNetwork(project: string): Argv {
  return [
    "sh",
    "-c",
    [
      "net=$1; p=$2",
      `docker network inspect "$net" > /dev/null 2>&1 || docker network create --label ${PROJECT_NETWORK_LABEL}="$p" "$net" > /dev/null || docker network inspect "$net" > /dev/null 2>&1 || exit 1`,
      `docker inspect --type container ${EDGE_CONTAINER} > /dev/null 2>&1 || exit 0`,
      `docker network connect "$net" ${EDGE_CONTAINER} 2> /dev/null || docker inspect --format "{{index .NetworkSettings.Networks \\"$net\\"}}" ${EDGE_CONTAINER} | grep -qv "<no value>"`,
    ].join("\n"),
    "sh",
    projectNetwork(project),
    project,
  ];
}

/**
 * The project networks nothing uses any more (a project removed by hand: no container but the edge's
 * on it, stopped ones included, and the project is not in `keep`: no route left, no deploy in
 * progress): the edge leaves them and they go. Every network the edge is on costs each start of the
 * edge, and so each replacement's gap.
 */
export function pruneProjectNetworks(keep: readonly string[]): Argv {
  return [
    "sh",
    "-c",
    [
      'keep=" $* "',
      `for n in $(docker network ls -q --filter label=${PROJECT_NETWORK_LABEL}); do`,
      `  p=$(docker network inspect --format '{{index .Labels "${PROJECT_NETWORK_LABEL}"}}' "$n") || continue`,
      '  case "$keep" in *" $p "*) continue;; esac',
      `  [ -z "$(docker ps -a --filter network="$n" --format '{{.Names}}' | grep -v '^${EDGE_CONTAINER}')" ] || continue`,
      `  docker network disconnect -f "$n" ${EDGE_CONTAINER} > /dev/null 2>&1; docker network rm "$n" > /dev/null 2>&1`,
      "done; true",
    ].join("\n"),
    "sh",
    ...keep,
  ];
}

/**
 * A project that no longer has anything behind the edge: the edge leaves its network, which goes (networks are a scarce
 * pool).
 */
export function leaveProjectNetwork(project: string): Argv {
  return [
    "sh",
    "-c",
    `docker network inspect "$1" > /dev/null 2>&1 || exit 0; docker network disconnect -f "$1" ${EDGE_CONTAINER} > /dev/null 2>&1; docker network rm "$1" > /dev/null 2>&1; true`,
    "sh",
    projectNetwork(project),
  ];
}

/**
 * HTTP check of the container's health path from inside the edge (its network,
 * its view) with the Host header users send (the route's hostname, or the
 * published `host:port`): an app that checks allowed hosts answers it as it
 * will answer them. Exit 0 for 2xx/3xx.
 */
export function httpFromEdge(project: string, name: string, port: number, path: string, host: string): Argv {
  return [
    "sh",
    "-c",
    [
      "net=$1",
      'ip=$(docker inspect --format "{{with index .NetworkSettings.Networks \\"$net\\"}}{{.IPAddress}}{{end}}" "$2") && [ -n "$ip" ] || { echo "not on the edge\'s network" >&2; exit 1; }',
      `exec docker exec ${EDGE_CONTAINER} timeout 3 wget -q -O /dev/null --header "Host: $5" "http://$ip:$3$4"`,
    ].join("\n"),
    "sh",
    projectNetwork(project),
    name,
    String(port),
    path,
    host,
  ];
}

/**
 * The edge's state on the first line (`edge missing` or `edge <status>|<image>|<port bindings json>`),
 * then its config as JSON: from its admin API when it runs (waiting a little after a start), else the
 * copy Caddy keeps in the edge's volume (read by a throwaway container of the edge's image, or of
 * `image` when the container is gone and that image is on the server): a stopped edge still owns its routes.
 */
export function edgeState(image: string): Argv {
  const script = [
    "img=$1",
    `if s=$(docker inspect --type container --format '{{.State.Status}}|{{.Config.Image}}|{{json .HostConfig.PortBindings}}' ${EDGE_CONTAINER} 2> /dev/null); then`,
    '  echo "edge $s"',
    `  case "$s" in running*) i=0; until docker exec ${EDGE_CONTAINER} wget -q -O - http://${EDGE_ADMIN}/config/ 2> /dev/null; do i=$((i+1)); [ "$i" -ge 40 ] && exit 3; sleep 0.25; done; exit 0;; esac`,
    "  img=${s#*|}; img=${img%%|*}",
    "else",
    '  echo "edge missing"',
    `  docker volume inspect ${EDGE_VOLUME} > /dev/null 2>&1 && docker image inspect "$img" > /dev/null 2>&1 || exit 0`,
    "fi",
    `docker run --rm --network none --volume ${EDGE_VOLUME}:/v:ro --entrypoint cat "$img" /v/config/caddy/autosave.json 2> /dev/null || true`,
  ].join("\n");
  return ["sh", "-c", script, "sh", image];
}

/** Exit status when a host port the edge needs is taken. */
export const EDGE_PORT_TAKEN_EXIT = 45;
/** Exit status when the edge's image cannot be pulled. */
export const EDGE_IMAGE_EXIT = 44;
/** Exit status when a started edge's admin API never answered (the old edge is serving again). */
export const EDGE_NOT_READY_EXIT = 46;

/**
 * Whether these host ports can be published by the edge: `holder <spec> <container> <project>`
 * for every port a container holds (all of them, not the first), then, when
 * none is held by another project, a throwaway container from the edge's image
 * publishes all the unheld ones at once (what the edge's replacement will do)
 * and the exit is EDGE_PORT_TAKEN_EXIT with docker's reason when it cannot
 * (a program outside docker). Ports held by `project`'s own containers are
 * left to the rollover, which frees them.
 */
export function probePorts(image: string, project: string, specs: readonly string[]): Argv {
  const script = [
    "img=$1; proj=$2; shift 2; n=$#; foreign=",
    'for spec in "$@"; do',
    "  port=${spec%:*}; port=${port##*:}",
    '  out=$(docker ps --filter "publish=$port" --format "{{.Names}} {{.Label \\"com.docker.compose.project\\"}}")',
    '  if [ -n "$out" ]; then',
    '    printf "%s\\n" "$out" | while read -r c p; do echo "holder $spec $c $p"; done',
    '    printf "%s\\n" "$out" | awk -v p="$proj" \'$2 != p { f = 1 } END { exit !f }\' && foreign=1',
    '  else set -- "$@" -p "$spec"; fi',
    "done",
    'shift "$n"',
    '[ -n "$foreign" ] || [ $# -eq 0 ] && exit 0',
    `docker image inspect "$img" > /dev/null 2>&1 || docker pull -q "$img" > /dev/null || exit ${EDGE_IMAGE_EXIT}`,
    // docker's reason, without the CLI's "Run 'docker run --help'" line after it
    `err=$(docker run --rm "$@" --entrypoint "" "$img" true 2>&1 > /dev/null) || { printf "%s\\n" "$err" | grep -v -e "^Run 'docker" -e "^$" >&2; exit ${EDGE_PORT_TAKEN_EXIT}; }`,
  ].join("\n");
  return ["sh", "-c", script, "sh", image, project, ...specs];
}

const WAIT_ADMIN = (name: string) =>
  `i=0; until docker exec ${name} wget -q -O /dev/null http://${EDGE_ADMIN}/config/ 2> /dev/null; do i=$((i+1)); [ "$i" -ge 60 ] && break; sleep 0.25; done; [ "$i" -lt 60 ]`;

/** Exit status when a new edge does not serve a route the old one served (the old edge is serving again). */
export const EDGE_NOT_SERVING_EXIT = 47;

/**
 * `judge <container> <probe>…`: `<probe> ok` for each probe (`port,host`) the edge in that container answers
 * itself, from inside it (busybox wget: -S prints the status; -T crashes some builds of it, so `timeout`): an HTTP
 * status other than 502/504 (Caddy's own when it cannot reach the app) to
 * `GET http://127.0.0.1:<port>/` with that Host. A container where this cannot even run answers none.
 */
const JUDGE = String.raw`judge() { c=$1; shift; [ $# -gt 0 ] || return 0; docker exec "$c" sh -c '
for p in "$@"; do
  code=$(timeout 3 wget -S -O /dev/null --header "Host: ${"$"}{p#*,}" "http://127.0.0.1:${"$"}{p%%,*}/" 2>&1 | awk "/^ *HTTP\//{print \$2; exit}")
  case "$code" in ""|502|504) ;; *) echo "$p ok";; esac
done' sh "$@" 2> /dev/null; }`;

/**
 * Make the edge run. `start`: a stopped edge is started as it was, a missing one
 * made (from its volume: `--resume` reloads its last config and certificates).
 * `replace`: a new edge with `image` and exactly `publish` is created beside the
 * running one and joined to every project network, the old one stopped (its
 * ports freed), the new one started and judged: every probe (`port,host`, see
 * edgeProbes) the old one answered, the new one must answer too. If it cannot
 * start, never answers or serves less, it is removed and the old one started
 * again: the edge is never left without a working config. Prints `gap <ms>`: how
 * long the routes were not served.
 */
export function edgeUp(
  image: string,
  mode: "start" | "replace",
  publish: readonly string[],
  probes: readonly string[] = [],
): Argv {
  const next = `${EDGE_CONTAINER}-next`;
  const script = [
    // probes split on spaces, never globbed
    "set -f; img=$1; mode=$2; probes=$3; shift 3; n=$#",
    JUDGE,
    // a port someone else holds, or anything else (an image that does not run Caddy…)
    `why() { case "$err" in *"already allocated"*|*"address already in use"*) return ${EDGE_PORT_TAKEN_EXIT};; *) return 1;; esac; }`,
    `docker network inspect ${EDGE_NETWORK} > /dev/null 2>&1 || docker network create ${EDGE_NETWORK} > /dev/null || docker network inspect ${EDGE_NETWORK} > /dev/null 2>&1 || exit 1`,
    `st=$(docker inspect --type container --format '{{.State.Status}}' ${EDGE_CONTAINER} 2> /dev/null) || st=missing`,
    'if [ "$mode" = start ] && [ "$st" != missing ]; then',
    `  if [ "$st" != running ]; then err=$(docker start ${EDGE_CONTAINER} 2>&1 > /dev/null) || { printf "%s\\n" "$err" >&2; why; exit $?; }; fi`,
    `  ${WAIT_ADMIN(EDGE_CONTAINER)} || { docker logs --tail 5 ${EDGE_CONTAINER} >&2; exit ${EDGE_NOT_READY_EXIT}; }`,
    '  echo "gap 0"; exit 0',
    "fi",
    `docker image inspect "$img" > /dev/null 2>&1 || docker pull -q "$img" > /dev/null || exit ${EDGE_IMAGE_EXIT}`,
    'for spec in "$@"; do set -- "$@" -p "$spec"; done; shift "$n"',
    // Caddy opens a new listening socket (SO_REUSEPORT) on every config change and closes the old one;
    // without this (Linux ≥ 5.14) the connections waiting in the old one's queue are reset.
    'if [ -e /proc/sys/net/ipv4/tcp_migrate_req ]; then set -- --sysctl net.ipv4.tcp_migrate_req=1 "$@"; fi',
    `docker rm -f ${next} > /dev/null 2>&1`,
    `docker create --name ${next} --restart unless-stopped --network ${EDGE_NETWORK} --label vps-pipeline.edge=1 \\`,
    `  --volume ${EDGE_VOLUME}:/vps-pipeline --env XDG_CONFIG_HOME=/vps-pipeline/config --env XDG_DATA_HOME=/vps-pipeline/data \\`,
    `  "$@" "$img" caddy run --resume > /dev/null || exit 1`,
    `for net in $(docker network ls -q --filter label=${PROJECT_NETWORK_LABEL}); do docker network connect "$net" ${next} || { docker rm -f ${next} > /dev/null; exit 1; }; done`,
    "now() { date +%s%3N; }",
    // from here on, any failure puts the old edge back
    `back() { docker rm -f ${next} > /dev/null 2>&1; if [ "$st" != missing ]; then docker start ${EDGE_CONTAINER} > /dev/null 2>&1; ${WAIT_ADMIN(EDGE_CONTAINER)}; fi; }`,
    // what the old edge serves now is what the new one must serve
    `served=; [ "$st" != running ] || served=$(judge ${EDGE_CONTAINER} $probes | awk '{ print $1 }')`,
    // the old one stops its listeners at once, but waits for every response it is sending, event streams included,
    // which never end: 2 s for ordinary requests, not 10 s of every project refused (measured: 12 s with SSE open)
    `t0=$(now); [ "$st" = missing ] || docker stop -t 2 ${EDGE_CONTAINER} > /dev/null`,
    `err=$(docker start ${next} 2>&1 > /dev/null) || { printf "%s\\n" "$err" >&2; back; why; exit $?; }`,
    `${WAIT_ADMIN(next)} || { docker logs --tail 5 ${next} >&2; back; exit ${EDGE_NOT_READY_EXIT}; }`,
    // its listeners come up right after its admin API: a few tries before a route counts as not served
    "i=0; while :; do",
    `  ok=$(judge ${next} $served); missing=`,
    '  for p in $served; do printf "%s\\n" "$ok" | grep -qxF "$p ok" || missing="$missing $p"; done',
    '  [ -z "$missing" ] && break',
    '  i=$((i+1)); [ "$i" -lt 20 ] || break; sleep 0.1',
    "done",
    `[ -z "$missing" ] || { docker logs --tail 3 ${next} >&2; echo "not served (port,Host):$missing" >&2; back; exit ${EDGE_NOT_SERVING_EXIT}; }`,
    "t1=$(now)",
    `docker rm -f ${EDGE_CONTAINER} > /dev/null 2>&1; docker rename ${next} ${EDGE_CONTAINER} || exit 1`,
    'echo "gap $((t1 - t0))"',
  ].join("\n");
  return ["sh", "-c", script, "sh", image, mode, probes.join(" "), ...publish];
}

/**
 * Load a whole config (stdin) through the admin API; Caddy swaps it in gracefully, or keeps the old one and says why.
 */
export function loadEdgeConfig(): Argv {
  return [
    "docker",
    "exec",
    "-i",
    EDGE_CONTAINER,
    "sh",
    "-c",
    'f=$(mktemp) && cat > "$f" && caddy reload --config "$f" --force > /dev/null 2> "$f.err"; rc=$?; [ "$rc" -eq 0 ] || grep -v "\\"level\\"" "$f.err" >&2; rm -f "$f" "$f.err"; exit "$rc"',
  ];
}

/**
 * Write a whole config (stdin) where a stopped or removed edge resumes from (`caddy run --resume` reads its
 * autosave.json): a throwaway container of the edge's `image` on the edge's volume, the file swapped in whole.
 */
export function saveEdgeConfig(image: string): Argv {
  return [
    "docker",
    "run",
    "--rm",
    "-i",
    "--network",
    "none",
    "--volume",
    `${EDGE_VOLUME}:/v`,
    "--entrypoint",
    "sh",
    image,
    "-c",
    "mkdir -p /v/config/caddy && cat > /v/config/caddy/autosave.json.new && mv -f /v/config/caddy/autosave.json.new /v/config/caddy/autosave.json",
  ];
}

/**
 * Where deploys in progress claim the routes they are about to add (one file per project, locked while its deploy
 * lasts).
 */
export const EDGE_CLAIMS = "/tmp/vps-pipeline-edge-claims";

/**
 * The claims of deploys still in progress (`claim <json>` per live file; a file whose lock is free is stale and goes).
 */
export function liveClaims(): Argv {
  return [
    "sh",
    "-c",
    [
      'd=$1; [ -d "$d" ] || exit 0',
      'for f in "$d"/*.json; do',
      '  [ -f "$f" ] || continue',
      // (as in holdEdgeLock: opened for reading only) a stale claim of another deploy user may not be ours to remove:
      // it is left, and still not live
      '  if flock -n 9 9< "$f" 2> /dev/null; then rm -f "$f" 2> /dev/null || :; else printf "claim %s\\n" "$(cat "$f")"; fi',
      "done",
    ].join("\n"),
    "sh",
    EDGE_CLAIMS,
  ];
}

/**
 * Write a project's claim (stdin's first line) and hold its lock while stdin stays open; prints LOCKED once held. The
 * file is the deploy user's own (named with its uid): a stale claim another user left for the same project name is not
 * ours to replace, and no longer stops this deploy.
 */
export function holdClaim(project: string): Argv {
  return [
    "sh",
    "-c",
    [
      'umask 0; d=$1; f="$1/$2.$(id -u).json"',
      'mkdir -p "$d" && chmod 1777 "$d" 2> /dev/null',
      'IFS= read -r line; printf "%s\\n" "$line" > "$f.tmp" && mv -f "$f.tmp" "$f" || exit 1',
      'exec flock "$f" sh -c "echo LOCKED && exec cat > /dev/null"',
    ].join("\n"),
    "sh",
    EDGE_CLAIMS,
    project,
  ];
}
