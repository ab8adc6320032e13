/**
 * The commands a swarm target runs on its manager node, as argument arrays for
 * `shellJoin` (the same rules as core/server/server-commands.ts: values only ever as
 * positional parameters). Releases live on the manager in the same layout as on
 * one VPS; the stack itself lives in the swarm.
 */
import { AUTH_SETUP_FAILED_EXIT, THROWAWAY_CONFIG } from "../registry/registry-commands.js";
import {
  PROBE_DOCKER,
  PROBE_FREE_SPACE,
  parsePreflight,
  releaseDir,
  type Layout,
  type PreflightFacts,
} from "../server/server-commands.js";
import { type Argv } from "../shell.js";

/**
 * One `key value` line each: the engine's version (or its error), the swarm state, whether this node manages, free
 * space.
 */
export function swarmProbe(l: Layout): Argv {
  const script = [
    PROBE_DOCKER,
    'echo "swarm $(docker info --format "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}" 2>/dev/null)"',
    PROBE_FREE_SPACE,
  ].join("\n");
  return ["sh", "-c", script, "sh", l.releases];
}

export interface SwarmFacts extends Pick<PreflightFacts, "docker" | "dockerError" | "freeKb"> {
  /** `inactive`, `pending`, `active`, `error`, `locked` */
  swarm?: string;
  manager: boolean;
}

export function parseSwarmProbe(stdout: string): SwarmFacts {
  const { docker, dockerError, freeKb } = parsePreflight(stdout);
  const [state, control] = (/^swarm (.*)$/m.exec(stdout)?.[1] ?? "").trim().split(" ");
  return {
    ...(docker !== undefined ? { docker } : {}),
    ...(dockerError !== undefined ? { dockerError } : {}),
    ...(freeKb !== undefined ? { freeKb } : {}),
    ...(state ? { swarm: state } : {}),
    manager: control === "true",
  };
}

/**
 * `docker stack deploy` of one of a release's stack files, from the release's
 * folder (relative `env_file:` paths), with the release's variables exported
 * from its `stack.env` for interpolation (stack deploy reads no `.env`) and the
 * pull login in a throwaway config: `--with-registry-auth` hands it to the swarm
 * so every node can pull. `--prune` (the main stack) removes services the
 * release no longer has; the jobs' file is deployed without it.
 */
export interface StackDeploy {
  /** The registry the throwaway config logs in to ("" for none). */
  loginHost: string;
  id: string;
  /** The release's stack file, relative to its folder. */
  file: string;
  project: string;
  /** Remove services the file no longer has (the main stack; never the jobs'). */
  prune: boolean;
}

export function stackDeploy(l: Layout, d: StackDeploy): Argv {
  const { loginHost, id, file, project, prune } = d;
  const script = [
    ...THROWAWAY_CONFIG,
    'set -- "$cfg" "$@"',
    `cd "$2" || exit ${AUTH_SETUP_FAILED_EXIT}`,
    // The release's variables live only in the subshell that runs stack deploy, so they cannot change this
    // script's own names (the folder its trap removes); stack.env never holds docker's own names
    // (core/compose/env-file.ts), so where docker goes stays the deploy user's (DOCKER_HOST of its login), and the
    // login stays the throwaway one.
    "(",
    "  if [ -f stack.env ]; then set -a; . ./stack.env; set +a; fi",
    '  export DOCKER_CONFIG="$1"',
    // $5 (`--prune`) and $6 (`--with-registry-auth`, only with a login: without one the swarm keeps the auth it has)
    // may be empty: unquoted on purpose
    '  exec docker stack deploy --compose-file "$3" $6 --resolve-image changed $5 "$4"',
    ")",
  ].join("\n");
  return [
    "sh",
    "-c",
    script,
    "sh",
    loginHost,
    releaseDir(l, id),
    file,
    project,
    prune ? "--prune" : "",
    loginHost ? "--with-registry-auth" : "",
  ];
}

const NODES_JSON = "docker node inspect $(docker node ls -q)";

/**
 * The stack's services, their tasks and the swarm's nodes, as `=== services|tasks|nodes` sections of JSON (see
 * core/swarm/swarm-state.ts).
 */
export function stackState(project: string): Argv {
  const script = [
    'ids=$(docker service ls -q --filter "label=com.docker.stack.namespace=$1")',
    "echo '=== services'",
    'if [ -n "$ids" ]; then docker service inspect $ids; fi',
    "echo '=== tasks'",
    'if [ -n "$ids" ]; then t=$(docker service ps -q --no-trunc $ids); if [ -n "$t" ]; then docker inspect --type task $t; fi; fi',
    "echo '=== nodes'",
    NODES_JSON,
  ].join("\n");
  return ["sh", "-c", script, "sh", project];
}

/** Every node of the swarm, as JSON (`docker node inspect`). */
export function swarmNodes(): Argv {
  return ["sh", "-c", NODES_JSON];
}

/**
 * Start a service's update again from where it is (`--force`): what unsticks an update waiting on a node that went
 * down.
 */
export function forceUpdate(name: string): Argv {
  return ["docker", "service", "update", "--detach", "--force", "--no-resolve-image", "--quiet", name];
}

/** The last lines a one-off job printed (its service's logs). */
export function serviceLogs(name: string, lines: number): Argv {
  return ["docker", "service", "logs", "--raw", "--no-task-ids", "--tail", String(lines), name];
}

/** Remove services (a finished one-off job); absent ones are no error. */
export function removeServices(names: readonly string[]): Argv {
  return ["sh", "-c", 'for s in "$@"; do docker service rm "$s" > /dev/null 2>&1; done; true', "sh", ...names];
}
