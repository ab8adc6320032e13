/**
 * A release for Docker Swarm (`docker stack deploy`), from the release the VPS
 * would get (build removed, images pinned by digest). Stack deploy reads the
 * same compose file but ignores or rejects parts of it; each such part is
 * translated here, or refused with the field named, before anything changes:
 *
 * - `restart` → `deploy.restart_policy` (stack deploy ignores `restart`)
 * - `scale` → `deploy.replicas`
 * - `depends_on` → dropped (swarm starts services in any order): a note per
 *   condition it cannot keep; the app must retry its dependencies
 * - `container_name`, `network_mode`, `profiles`, `links` → refused
 * - `update_config`, when not written: start-first for services without
 *   volumes, stop-first for those with (two copies must not share a volume),
 *   `failure_action: rollback` and a `monitor` window that covers the
 *   healthcheck; `rollback_config` the same order
 * - release-phase jobs (`x-vps-pipeline.job`) → taken out of the stack, into
 *   a stack file of their own (`jobsStack`) as one-off `replicated-job`
 *   services, deployed into the same stack name (same networks) before it
 * - services others wait for with `service_completed_successfully` → a
 *   `replicated-job` (swarm would otherwise restart them forever)
 * - `x-vps-pipeline.http` → dropped: on a swarm the routing mesh and
 *   start-first updates keep traffic flowing, no edge is needed
 *
 */
import { Document, isMap, isScalar, isSeq, parseDocument } from "yaml";
import { COMPOSE_YAML, composeDocument } from "../compose/compose.js";
import { FILES_DIR } from "../release/release-files.js";
import { PUBLISHED_LABEL } from "../edge/edge.js";
import { PipelineError } from "../errors.js";
import { EXTENSION_KEY, parseServiceExtension } from "../compose/extension.js";

export interface SwarmRelease {
  /** The stack file for `docker stack deploy`. */
  stack: string;
  /** Release-phase jobs as one-off services (`deploy.mode: replicated-job`), in file order. */
  jobs: { service: string; timeoutSeconds: number; definition: Record<string, unknown> }[];
  /**
   * The jobs with the release's networks, volumes, configs and secrets, for `docker stack deploy` without `--prune`; ""
   * when there is none.
   */
  jobsStack: string;
  /** What was translated and what the user should know (one line each). */
  notes: string[];
}

/** Seconds of a compose duration (`1m30s`, `500ms`, `10s`); undefined when unreadable. */
export function durationSeconds(d: unknown): number | undefined {
  if (typeof d === "number") return d;
  if (typeof d !== "string" || d.trim() === "") return undefined;
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)/g;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(d)) !== null) {
    const n = Number(m[1]);
    total += m[2] === "h" ? n * 3600 : m[2] === "m" ? n * 60 : m[2] === "s" ? n : m[2] === "ms" ? n / 1000 : 0;
    consumed += m[0].length;
  }
  return consumed === d.length ? total : undefined;
}

const RESTART: Record<string, string> = {
  always: "any",
  "unless-stopped": "any",
  "on-failure": "on-failure",
  no: "none",
};

function hasVolumes(svc: Record<string, unknown>): boolean {
  const v = svc.volumes;
  if (!Array.isArray(v)) return false;
  // tmpfs mounts hold nothing two copies could fight over
  return v.some((x) =>
    typeof x === "string" ? x.includes(":") || !x.startsWith("/") : (x as { type?: unknown } | null)?.type !== "tmpfs",
  );
}

/**
 * How long swarm may take, beyond a first healthy task, to finish updating the
 * stack's slowest service: tasks go one batch at a time (`parallelism`), each
 * waits for its healthcheck, then `delay`, and swarm keeps the service
 * `updating` through the `monitor` window after each batch. With Docker's
 * default healthcheck (30 s interval) that is minutes, not the seconds of a
 * test bed: the convergence wait adds this to --health-timeout.
 */
export function updateWindowSeconds(stackText: string): number {
  const services =
    (
      (composeDocument(stackText, "the stack").toJS() ?? {}) as {
        services?: Record<string, Record<string, unknown> | null>;
      }
    ).services ?? {};
  let worst = 0;
  for (const svc of Object.values(services)) {
    const deploy = (svc?.deploy ?? {}) as {
      replicas?: unknown;
      update_config?: { parallelism?: unknown; monitor?: unknown; delay?: unknown };
      mode?: unknown;
    };
    const u = deploy.update_config ?? {};
    const replicas = typeof deploy.replicas === "number" ? deploy.replicas : 1;
    const parallelism = typeof u.parallelism === "number" && u.parallelism > 0 ? u.parallelism : 1;
    const monitor = durationSeconds(u.monitor) ?? 5; // swarm's own default
    const delay = durationSeconds(u.delay) ?? 0;
    // each batch: its tasks become healthy (about a monitor window, which is sized from the healthcheck), then the
    // delay and the monitor
    worst = Math.max(worst, Math.ceil(Math.max(1, replicas) / parallelism) * (2 * monitor + delay));
  }
  return Math.ceil(worst);
}

/** How long swarm watches a new task before calling the update good: the healthcheck's time to pass, at least 10 s. */
function monitorSeconds(svc: Record<string, unknown>): number {
  const hc = (svc.healthcheck ?? {}) as Record<string, unknown>;
  if (hc.disable === true) return 10;
  const interval = durationSeconds(hc.interval) ?? 30;
  const retries = typeof hc.retries === "number" ? hc.retries : 3;
  const start = durationSeconds(hc.start_period) ?? 0;
  return Math.max(10, Math.ceil(start + interval * (retries + 1)));
}

/** The same release with only the named jobs (a rollback runs those declared `on-rollback`). */
export function withJobs(sw: SwarmRelease, names: readonly string[]): SwarmRelease {
  const jobs = sw.jobs.filter((j) => names.includes(j.service));
  if (jobs.length === 0) return { ...sw, jobs, jobsStack: "" };
  const doc = parseDocument(sw.jobsStack, COMPOSE_YAML);
  for (const j of sw.jobs) if (!names.includes(j.service)) doc.deleteIn(["services", j.service]);
  return { ...sw, jobs, jobsStack: doc.toString({ lineWidth: 0 }) };
}

/** Remove one label from a service (`labels:` as a map or a `KEY=value` list) and return its value. */
function takeLabel(doc: Document, service: string, key: string): string | undefined {
  const labels = doc.getIn(["services", service, "labels"]);
  if (isMap(labels)) {
    const v = labels.get(key);
    labels.delete(key);
    if (labels.items.length === 0) doc.deleteIn(["services", service, "labels"]);
    return v === undefined ? undefined : String(v);
  }
  if (isSeq(labels)) {
    const i = labels.items.findIndex((x) => isScalar(x) && String(x.value).startsWith(`${key}=`));
    if (i < 0) return undefined;
    const v = String((labels.items[i] as { value: unknown }).value).slice(key.length + 1);
    labels.delete(i);
    if (labels.items.length === 0) doc.deleteIn(["services", service, "labels"]);
    return v;
  }
  return undefined;
}

/**
 * Files the release carries, on a swarm: stack deploy reads `configs`,
 * `secrets` and `env_file` on the manager, relative to the stack file in the
 * release's folder, so their paths are made relative to it; a bind mount would
 * need the file on every node, so one from the repository is refused.
 */
function shippedFilesOnSwarm(doc: Document, problems: string[]): void {
  const shipped = `./${FILES_DIR}/`;
  const fromRelease = (p: string) => `../${p.slice(shipped.length - "files/".length)}`;
  const root = (doc.toJS() ?? {}) as { services?: Record<string, Record<string, unknown> | null> };
  for (const [name, svc] of Object.entries(root.services ?? {})) {
    (Array.isArray(svc?.volumes) ? svc.volumes : []).forEach((v: unknown, i) => {
      const src = typeof v === "string" ? v.split(":")[0] : (v as { source?: unknown } | null)?.source;
      if (typeof src === "string" && src.startsWith(shipped)) {
        problems.push(
          `services.${name}.volumes[${i}]: a file from the repository bind-mounted on a swarm would exist on the manager only; give it as a \`configs:\` entry (swarm hands configs to every node)`,
        );
      }
    });
    const envFiles =
      svc?.env_file === undefined ? undefined : Array.isArray(svc.env_file) ? svc.env_file : [svc.env_file];
    envFiles?.forEach((e: unknown, i) => {
      if (typeof e === "string" && e.startsWith(shipped))
        doc.setIn(["services", name, "env_file", ...(Array.isArray(svc?.env_file) ? [i] : [])], fromRelease(e));
      else if (
        typeof (e as { path?: unknown } | null)?.path === "string" &&
        (e as { path: string }).path.startsWith(shipped)
      )
        doc.setIn(
          ["services", name, "env_file", ...(Array.isArray(svc?.env_file) ? [i] : []), "path"],
          fromRelease((e as { path: string }).path),
        );
    });
  }
  for (const top of ["configs", "secrets"] as const) {
    for (const [key, def] of Object.entries(
      ((root as Record<string, unknown>)[top] ?? {}) as Record<string, { file?: unknown } | null>,
    )) {
      if (typeof def?.file === "string" && def.file.startsWith(shipped))
        doc.setIn([top, key, "file"], fromRelease(def.file));
    }
  }
}

export function renderSwarmRelease(releaseText: string): SwarmRelease {
  const doc = composeDocument(releaseText, "the release");
  const root = (doc.toJS() ?? {}) as { services?: Record<string, Record<string, unknown> | null> };
  const services = root.services ?? {};
  const problems: string[] = [];
  const notes: string[] = [];
  const jobs: SwarmRelease["jobs"] = [];
  const runOnce = new Set<string>();
  for (const raw of Object.values(services)) {
    const deps = raw?.depends_on;
    if (deps && !Array.isArray(deps) && typeof deps === "object") {
      for (const [dep, v] of Object.entries(deps as Record<string, { condition?: string } | null>))
        if (v?.condition === "service_completed_successfully") runOnce.add(dep);
    }
  }

  shippedFilesOnSwarm(doc, problems);
  for (const [name, raw] of Object.entries(services)) {
    const svc = raw ?? {};
    const where = `services.${name}`;
    const ext = parseServiceExtension(name, svc[EXTENSION_KEY]);
    problems.push(...ext.problems);
    if (ext.data)
      problems.push(
        `${where}.${EXTENSION_KEY}.data: data snapshots are not supported on a swarm yet (a task may move to another node, and its volume does not follow); keep the data service on a VPS deployed with compose, or remove \`data\``,
      );
    for (const key of ["container_name", "network_mode", "profiles", "links"] as const) {
      if (svc[key] !== undefined && !(key === "profiles" && ext.job)) {
        const why = {
          container_name: "a swarm names each task itself (several replicas, several nodes)",
          network_mode: "swarm services join networks; use `networks:` (an overlay) instead",
          profiles: "docker stack deploy has no profiles and would start every service",
          links: "swarm services find each other by service name on their networks",
        }[key];
        problems.push(`${where}.${key}: not supported on a swarm: ${why}; remove it`);
      }
    }
    if (svc.build !== undefined)
      problems.push(`${where}.build: the release must be built and pinned first (deploy renders the release)`);

    if (ext.job) {
      const definition = { ...svc };
      delete definition[EXTENSION_KEY];
      // the release keeps jobs out of `up` with a profile; their own stack file does that here
      delete definition.profiles;
      delete definition.depends_on;
      delete definition.restart;
      definition.deploy = {
        ...((svc.deploy as object | undefined) ?? {}),
        mode: "replicated-job",
        restart_policy: { condition: "none" },
      };
      jobs.push({ service: name, timeoutSeconds: ext.job.timeoutSeconds, definition });
      doc.deleteIn(["services", name]);
      continue;
    }
    if (svc[EXTENSION_KEY] !== undefined) {
      doc.deleteIn(["services", name, EXTENSION_KEY]);
      if (ext.http) {
        // the release moved the ports into a label for the edge; on a swarm the routing mesh publishes them again
        const published = takeLabel(doc, name, PUBLISHED_LABEL);
        if (published) doc.setIn(["services", name, "ports"], doc.createNode(published.split(",")));
        notes.push(`${name}: no edge on a swarm; the routing mesh and start-first updates keep it answering`);
      }
    }

    const ports = doc.getIn(["services", name, "ports"]);
    for (const p of isSeq(ports) ? (ports.toJSON() as unknown[]) : []) {
      const ip =
        typeof p === "string"
          ? /^(\d{1,3}(?:\.\d{1,3}){3}|\[[^\]]*\]):\S+:/.exec(p)?.[1]
          : (p as { host_ip?: string } | null)?.host_ip;
      if (ip)
        problems.push(
          `${where}.ports: \`${typeof p === "string" ? p : JSON.stringify(p)}\` binds to ${ip}; a swarm publishes a port on every address of every node (the routing mesh): remove the address, or keep the service off the swarm`,
        );
    }
    const deploy = { ...((svc.deploy as Record<string, unknown> | undefined) ?? {}) };
    if (runOnce.has(name) && deploy.mode === undefined) {
      deploy.mode = "replicated-job";
      notes.push(
        `${name}: runs once for others under compose; on a swarm it is a one-off job, run again when its definition changes`,
      );
    }
    const isJob = deploy.mode === "replicated-job" || deploy.mode === "global-job";
    if (isJob) {
      // a job has no restart-forever policy and no rolling update
      doc.deleteIn(["services", name, "restart"]);
      doc.deleteIn(["services", name, "depends_on"]);
      doc.setIn(["services", name, "deploy"], doc.createNode({ ...deploy, restart_policy: { condition: "none" } }));
      continue;
    }
    if (svc.restart !== undefined) {
      const condition = RESTART[String(svc.restart).split(":")[0] ?? ""];
      if (condition === undefined)
        problems.push(
          `${where}.restart: \`${String(svc.restart)}\` is not a restart policy (no, always, on-failure, unless-stopped)`,
        );
      else if (deploy.restart_policy === undefined) deploy.restart_policy = { condition };
      doc.deleteIn(["services", name, "restart"]);
    }
    if (svc.scale !== undefined) {
      if (deploy.replicas === undefined) deploy.replicas = svc.scale;
      doc.deleteIn(["services", name, "scale"]);
    }
    const deps = svc.depends_on;
    if (deps !== undefined) {
      const conditions = Array.isArray(deps)
        ? []
        : Object.entries(deps as Record<string, { condition?: string } | null>).filter(
            ([, v]) => v?.condition && v.condition !== "service_started",
          );
      for (const [dep, v] of conditions)
        notes.push(
          `${name}: waits for ${dep} (${v?.condition}) under compose; a swarm starts services in any order, so ${name} must retry ${dep} until it answers`,
        );
      doc.deleteIn(["services", name, "depends_on"]);
    }
    // a host-mode port is held by one task per node: a second copy beside the old one could not bind it
    const hostPorts =
      Array.isArray(svc.ports) && svc.ports.some((p) => (p as { mode?: unknown } | null)?.mode === "host");
    if (hostPorts && deploy.update_config === undefined)
      notes.push(
        `${name}: publishes a port in host mode, which one task per node can hold: its updates stop the old task first (the routing mesh's ingress mode keeps it answering)`,
      );
    const order = hasVolumes(svc) || hostPorts ? "stop-first" : "start-first";
    if (deploy.update_config === undefined) {
      deploy.update_config = { parallelism: 1, order, failure_action: "rollback", monitor: `${monitorSeconds(svc)}s` };
    }
    if (deploy.rollback_config === undefined) deploy.rollback_config = { parallelism: 1, order };
    doc.setIn(["services", name, "deploy"], doc.createNode(deploy));
  }
  if (problems.length) {
    throw new PipelineError(
      "COMPOSE_INVALID",
      `the release cannot run on a swarm:\n  ${problems.join("\n  ")}`,
      "fix the services named above in the production compose file; docs/swarm.md lists what changes on a swarm",
    );
  }
  if (!doc.has("version")) doc.set("version", "3.9");
  let jobsStack = "";
  if (jobs.length > 0) {
    const top = doc.toJS() as Record<string, unknown>;
    const shared = Object.fromEntries(
      ["version", "networks", "volumes", "configs", "secrets"]
        .filter((k) => top[k] !== undefined)
        .map((k) => [k, top[k]]),
    );
    jobsStack = new Document({
      ...shared,
      services: Object.fromEntries(jobs.map((j) => [j.service, j.definition])),
    }).toString({ lineWidth: 0 });
  }
  return { stack: doc.toString({ lineWidth: 0 }), jobs, jobsStack, notes };
}
