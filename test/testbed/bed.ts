/**
 * What the integration tests know of the test bed (read from testbed.json), and
 * fixture builders with defaults so each scenario states only what differs.
 */
import type { PreviewSettings } from "../../.dagger/src/core/preview/preview.js";
import { execFileSync, spawn } from "node:child_process";
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { parseHostKeyPin } from "../../.dagger/src/core/config.js";
import {
  EDGE_CONTAINER,
  caddyConfig,
  projectNetwork,
  replaceRoutes,
  routesFromCaddy,
  type EdgeRoute,
} from "../../.dagger/src/core/edge/edge.js";
import { parseComposeStack, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import { parseHistory } from "../../.dagger/src/core/release/release.js";
import type { DeployRequest } from "../../.dagger/src/remote/deploy.js";
import type { SshOptions } from "../../.dagger/src/remote/ssh.js";

interface TestbedFile {
  stateDir: string;
  registry: { host: string; user: string; passwordFile: string; caFile: string; prefix: string };
  swarm: { host: string; nodes: Record<string, string>; nodePids: Record<string, string> };
  vps: {
    namespace: string;
    host: string;
    port: number;
    user: string;
    userWithoutCompose: string;
    hostKeyFile: string;
    otherHostKeyFile: string;
    sshdLog: string;
    hostIp: string;
    /** The deploy user's home. */
    home: string;
    sshdPidFile: string;
    rsaPassphrase: string;
    keys: Record<"ed25519" | "rsaPem" | "ecdsa" | "stranger", string>;
  };
  tokenRegistry: {
    host: string;
    tokenServer: string;
    service: string;
    passwordFiles: Record<"rw" | "ro" | "blocked", string>;
  };
  /** The off-site backup host: SFTP for user `offsite`, its own key and host key. */
  offsite: {
    namespace: string;
    host: string;
    user: string;
    keyFile: string;
    hostKeyFile: string;
    /** S3 storage on the same host (versitygw): one access key, TLS from the test bed's CA. */
    s3: { endpoint: string; dataDir: string; accessFile: string; secretFile: string; caFile: string };
  };
  /** The second VPS (test/testbed/vps2.sh): an engine of its own, reached with DOCKER_HOST; its own deploy user. */
  vps2: Pick<TestbedFile["vps"], "namespace" | "host" | "user" | "home" | "hostIp" | "sshdLog" | "sshdPidFile"> & {
    dockerHost: string;
  };
  images: Record<string, string>;
}

const stateDir = process.env.TESTBED_DIR ?? "/tmp/vps-testbed";
export const bed: TestbedFile = JSON.parse(readFileSync(`${stateDir}/testbed.json`, "utf8")) as TestbedFile;
/**
 * TESTBED_VPS=2 (the lane of vitest.config.ts's `data` and `engine` projects): the scenarios deploy to the second VPS,
 * and every command they run on "the server" (sh: docker, its files) talks to its engine and its user's home.
 */
export const secondVps = process.env.TESTBED_VPS === "2";
if (secondVps) {
  const { dockerHost, ...vps } = bed.vps2;
  bed.vps = { ...bed.vps, ...vps };
  process.env.DOCKER_HOST = dockerHost;
}
export const registryPassword = readFileSync(bed.registry.passwordFile, "utf8").trim();
export const privateKey = readFileSync(bed.vps.keys.ed25519, "utf8");
export const hostKeyLine = readFileSync(bed.vps.hostKeyFile, "utf8").trim();
/** Passwords of the token server's users: rw (push,pull), ro (pull), blocked (403). */
export const tokenPasswords = Object.fromEntries(
  Object.entries(bed.tokenRegistry.passwordFiles).map(([u, f]) => [u, readFileSync(f, "utf8").trim()]),
) as Record<"rw" | "ro" | "blocked", string>;

export function sshOptions(over: Partial<SshOptions> = {}): SshOptions {
  return {
    host: bed.vps.host,
    port: bed.vps.port,
    user: bed.vps.user,
    hostKey: parseHostKeyPin(hostKeyLine)!,
    privateKey,
    connectTimeoutMs: 5000,
    retries: 1,
    retryDelayMs: 200,
    ...over,
  };
}

const composeText = readFileSync(new URL("../../compose/docker-compose.prod.yml", import.meta.url), "utf8");

/**
 * The example app's release file with both services pinned to `version`'s digests (api may differ); `edit` changes the
 * source file first.
 */
export function releaseCompose(
  version: "v1" | "v2" | "v3",
  apiVersion: string = version,
  edit: (source: string) => string = (t) => t,
): string {
  const stack = parseComposeStack(edit(composeText), "compose/docker-compose.prod.yml", bed.registry.prefix);
  return renderRelease(stack, {
    migrate: bed.images[`migrate:${apiVersion}`]!,
    api: bed.images[`api:${apiVersion}`]!,
    web: bed.images[`web:${version}`]!,
  });
}

/** Every line a deploy built with deployRequest printed (tests audit it for secrets). */
export const printed: string[] = [];

export interface Captured {
  lines: string[];
  log: (l: string) => void;
}
export function captureLog(): Captured {
  const lines: string[] = [];
  return {
    lines,
    log: (l) => {
      lines.push(l);
      printed.push(l);
      trace(l);
    },
  };
}

/** The edge on the test bed: the Caddy image made from Debian's package, certificates from Caddy's own CA. */
export const testEdge = { image: "vps-testbed/caddy:2", tls: "internal" as const };
/** The previews' settings on the test bed: hostnames under the bed's preview domain, two at most. */
export const testPreviews: PreviewSettings = {
  domain: "preview.vps-testbed.internal",
  limit: 2,
  whenFull: "evict",
  ttlHours: 48,
  memory: "256m",
  cpus: "0.5",
  seed: "",
};

/** With TESTBED_TRACE=<file>, every line a deploy prints goes there too, timed: where a slow run spent its time. */
function trace(line: string): void {
  if (process.env.TESTBED_TRACE) appendFileSync(process.env.TESTBED_TRACE, `${new Date().toISOString()} ${line}\n`);
}

/** A deploy request for `project` with working defaults: port, .env, credentials, short timeouts. */
export function deployRequest(project: string, webPort: number, over: Partial<DeployRequest> = {}): DeployRequest {
  return {
    ssh: sshOptions(),
    dir: `production/${project}`,
    project,
    lockTimeoutSeconds: 60,
    sha: "0123456789abcdef0123456789abcdef01234567",
    compose: releaseCompose("v1"),
    env: `WEB_PORT=${webPort}\nGOLD_API_KEY=not-a-real-key\n`,
    registry: { host: bed.registry.host, user: bed.registry.user, token: registryPassword },
    keepReleases: 5,
    healthTimeoutSeconds: 30,
    edge: testEdge,
    by: "vitest",
    log: (l) => {
      printed.push(l);
      trace(l);
    },
    ...over,
  };
}

/** Run a command as root on this machine (the test bed's host) and return stdout. */
export function sh(cmd: string): string {
  return execFileSync("bash", ["-c", cmd], { encoding: "utf8" });
}

/** HTTP status of the example app's web front, as published on the host. */
export async function webStatus(port: number, path = "/"): Promise<{ status: number; body: string }> {
  try {
    const r = await fetch(`http://${bed.vps.hostIp}:${port}${path}`, { signal: AbortSignal.timeout(3000) });
    return { status: r.status, body: await r.text() };
  } catch {
    return { status: 0, body: "" };
  }
}

/** IDs of the running containers of a compose project, by service. */
export function containers(project: string): Record<string, string> {
  const out = sh(
    `docker ps --filter label=com.docker.compose.project=${project} --format '{{.Label "com.docker.compose.service"}} {{.ID}}'`,
  );
  return Object.fromEntries(
    out
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split(" ") as [string, string]),
  );
}

/**
 * Samples every process command line on the machine (the VPS shares its process
 * table) until stopped; returns the command lines that contain any of `needles`.
 * One grep over /proc per sample, for all needles at once: a `ps` per needle every
 * 20 ms took most of this machine's two cores and slowed every scenario it watched.
 */
export function sampleProcesses(...needles: string[]): { stop: () => Promise<{ samples: number; hits: string[] }> } {
  if (!needles.length || needles.some((x) => !x))
    throw new Error("sampleProcesses: an empty needle matches everything");
  // The needles reach grep through a pipe (printf is a builtin), never on a command line: grep's own argv and this
  // loop's are in every sample and hold none of them.
  const child = spawn(
    "bash",
    [
      "-c",
      `n=0; while :; do n=$((n+1)); for f in $(grep -saFl -f <(printf '%s\\n' "$NEEDLES") /proc/[0-9]*/cmdline); do tr '\\0' ' ' < "$f" 2>/dev/null; echo; done; echo "#sample $n"; sleep 0.02; done`,
    ],
    {
      env: { ...process.env, NEEDLES: needles.join("\n") },
      stdio: ["ignore", "pipe", "ignore"],
    },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  return {
    stop: async () => {
      // a scenario shorter than one sample still gets one: the audit must have looked at least once
      for (let i = 0; i < 100 && !out.includes("#sample"); i++) await new Promise((r) => setTimeout(r, 20));
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      const lines = out.split("\n");
      const samples = lines.filter((l) => l.startsWith("#sample")).length;
      return { samples, hits: lines.filter((l) => l.trim() && !l.startsWith("#sample")) };
    },
  };
}

/** Files under `dir` (recursively, as root) whose content contains `needle`. */
export function filesContaining(dir: string, needle: string): string[] {
  // the needle on grep's stdin, never its command line: the other lane's process sampler reads every command line
  const out = execFileSync("bash", ["-c", 'grep -rlF -f - "$DIR" 2>/dev/null || true'], {
    env: { ...process.env, DIR: dir },
    input: `${needle}\n`,
    encoding: "utf8",
  });
  return out.trim().split("\n").filter(Boolean);
}

const HOME = bed.vps.home;

/**
 * Remove a project's containers, networks, volumes and files from the VPS, and its routes from the edge: each scenario
 * starts from an empty server.
 */
export function freshProject(project: string): void {
  sh(
    `ids=$(docker ps -aq --filter label=com.docker.compose.project=${project}); [ -z "$ids" ] || docker rm -f $ids >/dev/null; nets=$(docker network ls -q --filter label=com.docker.compose.project=${project}); [ -z "$nets" ] || docker network rm $nets >/dev/null; vols=$(docker volume ls -q --filter label=com.docker.compose.project=${project}); [ -z "$vols" ] || docker volume rm $vols >/dev/null; rm -rf ${HOME}/production/${project}`,
  );
  // the project's network with the edge: networks are a scarce pool on one engine (about 30 by default)
  sh(
    `n=${projectNetwork(project)}; if docker network inspect $n >/dev/null 2>&1; then docker network disconnect -f $n ${EDGE_CONTAINER} >/dev/null 2>&1; docker network rm $n >/dev/null 2>&1; fi; true`,
  );
  const routes = edgeRoutes();
  if (routes.some((r) => r.project === project)) loadEdge(replaceRoutes(routes, project, []));
}

/** The edge's routes (none when it does not run). */
export function edgeRoutes(): EdgeRoute[] {
  const conf = sh(`docker exec ${EDGE_CONTAINER} wget -qO- http://localhost:2019/config/ 2>/dev/null || true`);
  return conf.trim() ? routesFromCaddy(conf) : [];
}

/** Put routes on the edge by hand (a test breaking or cleaning what the pipeline made). */
export function loadEdge(routes: EdgeRoute[]): void {
  execFileSync(
    "docker",
    [
      "exec",
      "-i",
      EDGE_CONTAINER,
      "sh",
      "-c",
      "cat > /tmp/t.json && caddy reload --config /tmp/t.json --force 2>/dev/null",
    ],
    { input: JSON.stringify(caddyConfig(routes)) },
  );
}

export interface LoadResult {
  sent: number;
  failed: number;
  retried: number;
  /**
   * Fresh connections the edge closed before reading their request, sent once more: Go's net/http (current Caddy)
   * drops a request it reads after its server began to shut down, and every edge config change shuts the old
   * config's servers down while they still accept (about one request per 30 changes at 200 requests/s here).
   */
  unanswered: number;
  errors: string[];
  bodies: Map<string, number>;
}

/**
 * A request on a fresh connection that the edge closed before any answer (see LoadResult.unanswered): undici's
 * UND_ERR_SOCKET, or node:https's "socket hang up" (given as the error or its message).
 */
export function closedUnanswered(e: unknown): boolean {
  if (typeof e === "string") return e === "socket hang up";
  return (
    String((e as { cause?: { code?: string } } | null)?.cause?.code ?? "") === "UND_ERR_SOCKET" ||
    (e instanceof Error && e.message === "socket hang up")
  );
}

/**
 * Steady GET load on `url` at `rate` requests/s until stopped: counts failures
 * (no answer, or a status other than 200) and which versions answered. Each
 * request on its own connection, and every failure counts, unless `keepAlive`:
 * then a GET whose (reused) connection is reset before any answer is sent once
 * more, as browsers do; those are counted in `retried`. A fresh connection closed before any answer is sent once
 * more too, and counted in `unanswered` (see there).
 */
export function steadyLoad(url: string, rate: number, keepAlive = false): { stop: () => Promise<LoadResult> } {
  const res: LoadResult = { sent: 0, failed: 0, retried: 0, unanswered: 0, errors: [], bodies: new Map() };
  const get = () =>
    fetch(url, { signal: AbortSignal.timeout(5000), headers: keepAlive ? {} : { connection: "close" } });
  const reset = (e: unknown) =>
    /ECONNRESET|UND_ERR_SOCKET|EPIPE/.test(String((e as { cause?: { code?: string } }).cause?.code ?? ""));
  const inflight = new Set<Promise<void>>();
  const timer = setInterval(() => {
    res.sent++;
    const p = get()
      .catch((e: unknown) => {
        if (keepAlive && reset(e)) res.retried++;
        else if (!keepAlive && closedUnanswered(e)) res.unanswered++;
        else throw e;
        return get();
      })
      .then(async (r) => {
        const body = await r.text();
        if (r.status !== 200) throw new Error(`status ${r.status}`);
        const v = /Version ([^.<]+)/.exec(body)?.[1] ?? body.slice(0, 40);
        res.bodies.set(v, (res.bodies.get(v) ?? 0) + 1);
      })
      .catch((e: unknown) => {
        res.failed++;
        if (res.errors.length < 10)
          res.errors.push(
            `${new Date().toISOString()} ${String(e)} ${String((e as { cause?: { code?: string } }).cause?.code ?? "")}`,
          );
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  }, 1000 / rate);
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all(inflight);
      return res;
    },
  };
}

export function history(project: string) {
  return parseHistory(sh(`cat ${HOME}/production/${project}/.releases/history.jsonl`));
}

/** A compose edit: the example's api at three replicas. */
export const apiReplicated = (t: string): string =>
  t.replace("    init: true            #", "    deploy: { replicas: 3 }\n    init: true            #");

/**
 * A compose edit after apiReplicated: api reached by swarm's DNS round robin, on an overlay a client container may join
 * (no IPVS here).
 */
export const viaDnsrr = (t: string): string =>
  `${t.replace("deploy: { replicas: 3 }", "deploy: { replicas: 3, endpoint_mode: dnsrr }")}\nnetworks:\n  default:\n    attachable: true\n`;

/** The swarm's manager engine, for the docker CLI on this machine. */
export const SWARM = bed.swarm.nodes["swarm-1"]!;

/** Run a docker command against the swarm's manager. */
export function onSwarm(args: string): string {
  return sh(`DOCKER_HOST=${SWARM} docker ${args}`);
}

/** A deploy request for `project` on the test bed's swarm (the manager over SSH); `edit` changes the compose source. */
export function swarmRequest(
  project: string,
  webPort: number,
  version: "v1" | "v2" | "v3",
  over: Partial<DeployRequest> = {},
  edit: (source: string) => string = (t) => t,
): DeployRequest {
  return deployRequest(project, webPort, {
    ssh: sshOptions({ host: bed.swarm.host }),
    orchestrator: "swarm",
    healthTimeoutSeconds: 90,
    compose: releaseCompose(version, version, edit),
    ...over,
  });
}

/**
 * Remove a project's stack from the swarm (waiting until its services and networks are gone) and its files from the
 * manager.
 */
export async function freshStack(project: string): Promise<void> {
  onSwarm(`stack rm ${project} >/dev/null 2>&1 || true`);
  for (let i = 0; i < 60; i++) {
    const left = onSwarm(
      `service ls -q --filter label=com.docker.stack.namespace=${project}; docker network ls -q --filter label=com.docker.stack.namespace=${project}`,
    ).trim();
    if (!left) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  sh(`rm -rf ${HOME}/production/${project}`);
}

/**
 * A client on a stack's overlay network (a container on the manager node, from
 * the test bed's busybox), GETting `url` about 40 times a second, a new
 * connection and a new DNS lookup each time: requests go through swarm's own
 * service discovery to tasks on every node. This kernel has no IPVS, so this is
 * what can carry requests on the test bed (the routing mesh cannot).
 */
export function overlayProbe(
  network: string,
  url: string,
): { counts: () => { ok: number; failed: number }; stop: () => { ok: number; failed: number } } {
  const name = `probe-${network}`;
  const cfg = `${stateDir}/probe-docker-config`;
  mkdirSync(cfg, { recursive: true, mode: 0o700 });
  // written, not `docker login`: with a credential helper installed the CLI would hand the password to it
  writeFileSync(
    `${cfg}/config.json`,
    JSON.stringify({
      auths: {
        [bed.registry.host]: { auth: Buffer.from(`${bed.registry.user}:${registryPassword}`).toString("base64") },
      },
    }),
    { mode: 0o600 },
  );
  sh(`DOCKER_HOST=${SWARM} docker rm -f ${name} >/dev/null 2>&1 || true`);
  sh(
    `DOCKER_HOST=${SWARM} DOCKER_CONFIG=${cfg} docker run -d --name ${name} --network ${network} ${bed.registry.host}/base/busybox:1 sh -c 'ok=0; bad=0; while :; do if timeout 2 wget -q -O /dev/null "$0"; then ok=$((ok+1)); else bad=$((bad+1)); fi; echo "$ok $bad" > /tmp/c.new; mv /tmp/c.new /tmp/c; sleep 0.02; done' ${url} >/dev/null`,
  );
  const counts = () => {
    const [ok, failed] = sh(`DOCKER_HOST=${SWARM} docker exec ${name} cat /tmp/c 2>/dev/null || echo 0 0`)
      .trim()
      .split(" ")
      .map(Number);
    return { ok: ok ?? 0, failed: failed ?? 0 };
  };
  return {
    counts,
    stop: () => {
      const c = counts();
      sh(`DOCKER_HOST=${SWARM} docker rm -f ${name} >/dev/null 2>&1 || true`);
      return c;
    },
  };
}

/**
 * Every compose project and swarm stack a test file left behind: each one still
 * running costs a health check a second per container, and a whole suite's worth
 * made the last files twice as slow. The next file starts from an empty VPS.
 */
/** The engine suite's projects (engapp, engother, engdata, engapp-pr-7): never an integration file's leftovers. */
export const ENGINE_PROJECT = /^eng[a-z]*(-pr-\d+)?$/;

export async function removeLeftovers(): Promise<void> {
  const label = (kind: string) =>
    sh(
      `docker ${kind} ls ${kind === "container" ? "-a " : ""}--format '{{.Label "com.docker.compose.project"}}'`,
    ).split("\n");
  // the engine suite (test/engine, projects `eng…`) removes its own
  const projects = new Set(
    [...label("container"), ...label("network"), ...label("volume")].filter((p) => p && !ENGINE_PROJECT.test(p)),
  );
  for (const p of projects) freshProject(p);
  // the swarm belongs to the first VPS's lane
  if (!secondVps)
    for (const s of onSwarm("stack ls --format '{{.Name}}'").split("\n").filter(Boolean)) await freshStack(s);
}
