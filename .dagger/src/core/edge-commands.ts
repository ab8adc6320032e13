/**
 * Commands for the edge and the rollover of services behind it (see
 * core/edge.ts), built like core/remote-commands.ts: argument arrays, values
 * only as positional parameters.
 */
import { EDGE_ADMIN, EDGE_CONTAINER, EDGE_NETWORK, EDGE_VOLUME } from "./edge.js";
import { LOCK_BUSY_EXIT, releaseDir, type Argv, type Layout } from "./remote-commands.js";

/** One lock per VPS for the edge's config: projects of several users share the edge (umask 0 lets each open it). */
export const EDGE_LOCK = "/tmp/vps-pipeline-edge.lock";

/** Hold the edge lock while stdin stays open; prints LOCKED once held. */
export function holdEdgeLock(waitSeconds: number): Argv {
  return ["sh", "-c", 'umask 0; exec flock -E "$1" -w "$2" "$3" sh -c "echo LOCKED && exec cat > /dev/null"', "sh", String(LOCK_BUSY_EXIT), String(waitSeconds), EDGE_LOCK];
}

function releaseCompose(l: Layout, project: string, id: string): string[] {
  return [project, l.dir, releaseDir(l, id)];
}

const COMPOSE_ARGS = [
  'p=$1; dir=$2; rel=$3; shift 3',
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

/** `up` for some services only, without their dependencies (those behind the edge roll over instead). */
export function upServices(l: Layout, project: string, id: string, services: readonly string[]): Argv {
  return ["sh", "-c", [...COMPOSE_ARGS, 'exec docker compose "$@"'].join("\n"), "sh", ...releaseCompose(l, project, id),
    "up", "--detach", "--remove-orphans", "--pull", "never", "--no-deps", ...services];
}

/**
 * Start `count` containers of `service` in all, keeping every existing one as it is: the new ones come up beside
 * the old. Its dependencies are already up (`--no-recreate` leaves them be); without `--no-deps` the container's
 * config hash is the one `config --hash` gives, which is how the next rollover knows it runs this definition.
 */
export function scaleBeside(l: Layout, project: string, id: string, service: string, count: number): Argv {
  return ["sh", "-c", [...COMPOSE_ARGS, 'exec docker compose "$@"'].join("\n"), "sh", ...releaseCompose(l, project, id),
    "up", "--detach", "--no-recreate", "--pull", "never", "--scale", `${service}=${count}`, service];
}

/** `name<TAB>state<TAB>config hash<TAB>ports<TAB>service` of the project's containers (not one-off runs). */
export function serviceContainers(project: string): Argv {
  return ["docker", "ps", "--all", "--filter", `label=com.docker.compose.project=${project}`, "--filter", "label=com.docker.compose.oneoff=False",
    "--format", '{{.Names}}\t{{.State}}\t{{.Label "com.docker.compose.config-hash"}}\t{{.Ports}}\t{{.Label "com.docker.compose.service"}}'];
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
  return out.split("\n").filter((x) => x.trim()).map((line) => {
    const [name = "", state = "", hash = "", ports = "", service = ""] = line.split("\t");
    return { name, state, hash, publishes: ports.includes("->"), service };
  });
}

/**
 * What a rollover of one service does with its containers, decided from what
 * runs (`old`) and the config hash of the release's definition: nothing when
 * every container already runs that definition (the same release again, or a
 * rollback to one that never left); otherwise new containers start beside the
 * old, those publishing the port themselves give it up to the edge first
 * (`migrating`), and the rest are drained once the route has moved (`leaving`).
 */
export type RolloverPlan =
  | { kind: "in-place"; current: string[] }
  | { kind: "beside"; migrating: string[]; leaving: string[]; scaleTo: number };

export function planRollover(old: readonly ServiceContainer[], hash: string, replicas: number): RolloverPlan {
  const current = old.filter((c) => c.hash === hash && c.state === "running" && !c.publishes);
  if (old.length > 0 && current.length === old.length) return { kind: "in-place", current: current.map((c) => c.name) };
  return { kind: "beside", migrating: old.filter((c) => c.publishes).map((c) => c.name), leaving: old.filter((c) => !c.publishes).map((c) => c.name), scaleTo: old.length + replicas };
}

/** `name state health` per container (health empty without a healthcheck). */
export function containerHealth(names: readonly string[]): Argv {
  return ["docker", "inspect", "--type", "container", "--format", "{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", ...names];
}

/** Remove containers; `drain` seconds for each to stop by itself first. Names that are already gone are not an error. */
export function removeContainers(names: readonly string[], drainSeconds: number): Argv {
  return ["sh", "-c", 't=$1; shift; docker stop -t "$t" "$@" > /dev/null 2>&1; docker rm -f "$@" > /dev/null 2>&1; true', "sh", String(drainSeconds), ...names];
}

/** Attach containers to the edge's network (by name only: no service alias leaks to other projects there). */
export function connectToEdge(names: readonly string[]): Argv {
  return ["sh", "-c", `for n in "$@"; do docker network connect ${EDGE_NETWORK} "$n" 2> /dev/null || docker inspect --format '{{index .NetworkSettings.Networks "${EDGE_NETWORK}"}}' "$n" | grep -qv '<no value>' || exit 1; done`, "sh", ...names];
}

/**
 * HTTP check of the container's health path from inside the edge (its network,
 * its view), by the container's address there; exit 0 for 2xx/3xx.
 */
export function httpFromEdge(name: string, port: number, path: string): Argv {
  return ["sh", "-c", [
    `ip=$(docker inspect --format '{{with index .NetworkSettings.Networks "${EDGE_NETWORK}"}}{{.IPAddress}}{{end}}' "$1") && [ -n "$ip" ] || { echo "not on the edge's network" >&2; exit 1; }`,
    `exec docker exec ${EDGE_CONTAINER} timeout 3 wget -q -O /dev/null "http://$ip:$2$3"`,
  ].join("\n"), "sh", name, String(port), path];
}

/**
 * The edge's state on the first line (`edge missing` or `edge <status>|<image>|<port bindings json>`),
 * then, when it runs, its config as JSON (waiting a little for Caddy's admin API after a start).
 */
export function edgeState(): Argv {
  const script = [
    `if ! s=$(docker inspect --type container --format '{{.State.Status}}|{{.Config.Image}}|{{json .HostConfig.PortBindings}}' ${EDGE_CONTAINER} 2> /dev/null); then echo "edge missing"; exit 0; fi`,
    'echo "edge $s"',
    'case "$s" in running*) ;; *) exit 0;; esac',
    `i=0; until docker exec ${EDGE_CONTAINER} wget -q -O - http://${EDGE_ADMIN}/config/ 2> /dev/null; do i=$((i+1)); [ "$i" -ge 40 ] && exit 3; sleep 0.25; done`,
  ].join("\n");
  return ["sh", "-c", script];
}

/** Exit status when a host port the edge needs is taken. */
export const EDGE_PORT_TAKEN_EXIT = 45;
/** Exit status when the edge's image cannot be pulled. */
export const EDGE_IMAGE_EXIT = 44;

/**
 * Whether these host ports can be published: `holder <spec> <container> <project>`
 * for each held by a container, then, when none is, a throwaway container from
 * the edge's image tries to publish them all (what recreating the edge would do)
 * and the exit is EDGE_PORT_TAKEN_EXIT with docker's reason when it cannot.
 */
export function probePorts(image: string, specs: readonly string[]): Argv {
  const script = [
    'img=$1; shift; held=',
    'for spec in "$@"; do',
    '  port=${spec%:*}; port=${port##*:}',
    '  out=$(docker ps --filter "publish=$port" --format "{{.Names}} {{.Label \\"com.docker.compose.project\\"}}")',
    '  if [ -n "$out" ]; then printf "%s\\n" "$out" | while read -r n proj; do echo "holder $spec $n $proj"; done; held=1; fi',
    'done',
    '[ -n "$held" ] && exit 0',
    `docker image inspect "$img" > /dev/null 2>&1 || docker pull -q "$img" > /dev/null || exit ${EDGE_IMAGE_EXIT}`,
    'set -- $(for spec in "$@"; do printf -- "-p %s " "$spec"; done)',
    `docker run --rm "$@" --entrypoint "" "$img" true > /dev/null 2> /tmp/.vps-pipeline-probe.$$ || { cat /tmp/.vps-pipeline-probe.$$ >&2; rm -f /tmp/.vps-pipeline-probe.$$; exit ${EDGE_PORT_TAKEN_EXIT}; }`,
    'rm -f /tmp/.vps-pipeline-probe.$$',
  ].join("\n");
  return ["sh", "-c", script, "sh", image, ...specs];
}

/**
 * Make the edge run with exactly `publish` host ports: created when missing,
 * started when stopped, recreated when `recreate` (its config and certificates
 * live in a volume, and `--resume` reloads them). Waits for the admin API.
 */
export function ensureEdge(image: string, recreate: boolean, publish: readonly string[]): Argv {
  const script = [
    'img=$1; recreate=$2; shift 2',
    `docker network inspect ${EDGE_NETWORK} > /dev/null 2>&1 || docker network create ${EDGE_NETWORK} > /dev/null || exit 1`,
    `st=$(docker inspect --type container --format '{{.State.Status}}' ${EDGE_CONTAINER} 2> /dev/null) || st=missing`,
    'if [ "$recreate" = 1 ] || [ "$st" = missing ]; then',
    `  docker image inspect "$img" > /dev/null 2>&1 || docker pull -q "$img" > /dev/null || exit ${EDGE_IMAGE_EXIT}`,
    `  docker rm -f ${EDGE_CONTAINER} > /dev/null 2>&1`,
    '  set -- $(for spec in "$@"; do printf -- "-p %s " "$spec"; done)',
    // Caddy opens a new listening socket (SO_REUSEPORT) on every config change and closes the old one;
    // without this (Linux ≥ 5.14) the connections waiting in the old one's queue are reset.
    '  if [ -e /proc/sys/net/ipv4/tcp_migrate_req ]; then set -- --sysctl net.ipv4.tcp_migrate_req=1 "$@"; fi',
    `  docker run --detach --name ${EDGE_CONTAINER} --restart unless-stopped --network ${EDGE_NETWORK} --label vps-pipeline.edge=1 \\`,
    `    --volume ${EDGE_VOLUME}:/vps-pipeline --env XDG_CONFIG_HOME=/vps-pipeline/config --env XDG_DATA_HOME=/vps-pipeline/data \\`,
    `    "$@" "$img" caddy run --resume > /dev/null || exit ${EDGE_PORT_TAKEN_EXIT}`,
    `elif [ "$st" != running ]; then docker start ${EDGE_CONTAINER} > /dev/null || exit 1; fi`,
    `i=0; until docker exec ${EDGE_CONTAINER} wget -q -O /dev/null http://${EDGE_ADMIN}/config/ 2> /dev/null; do i=$((i+1)); [ "$i" -ge 40 ] && { docker logs --tail 5 ${EDGE_CONTAINER} >&2; exit 3; }; sleep 0.25; done`,
  ].join("\n");
  return ["sh", "-c", script, "sh", image, recreate ? "1" : "0", ...publish];
}

/** Load a whole config (stdin) through the admin API; Caddy swaps it in gracefully, or keeps the old one and says why. */
export function loadEdgeConfig(): Argv {
  return ["docker", "exec", "-i", EDGE_CONTAINER, "sh", "-c", 'f=$(mktemp) && cat > "$f" && caddy reload --config "$f" --force > /dev/null 2> "$f.err"; rc=$?; [ "$rc" -eq 0 ] || grep -v "\\"level\\"" "$f.err" >&2; rm -f "$f" "$f.err"; exit "$rc"'];
}
