/**
 * A stack on a swarm as the manager reports it (services, their tasks, the
 * nodes), and the judgements made of it: has a deploy converged, did it fail,
 * does what runs match the release. Pure: the JSON comes from
 * core/swarm/swarm-commands.ts `stackState`.
 */
import { parseJson } from "../errors.js";

export interface SwarmService {
  /** The service's name in the compose file (the swarm's is `<project>_<name>`). */
  service: string;
  id: string;
  image: string;
  mode: "replicated" | "global" | "replicated-job" | "global-job";
  replicas?: number;
  /** When its definition last changed (the manager's clock). */
  updatedAt?: string;
  /** Swarm's own rolling update: `updating`, `completed`, `paused`, `rollback_started`, `rollback_completed`… */
  update?: { state: string; message: string };
}

export interface SwarmTask {
  id: string;
  service: string;
  node: string;
  nodeReady: boolean;
  slot?: number;
  state: string;
  desired: string;
  image: string;
  error: string;
  exitCode?: number;
  at: string;
}

export interface SwarmNode {
  id: string;
  hostname: string;
  state: string;
  availability: string;
  manager: boolean;
}

export interface StackState {
  services: SwarmService[];
  tasks: SwarmTask[];
  nodes: SwarmNode[];
}

interface RawService {
  ID: string;
  UpdatedAt?: string;
  Spec: {
    Name: string;
    TaskTemplate?: { ContainerSpec?: { Image?: string } };
    Mode?: { Replicated?: { Replicas?: number }; Global?: object; ReplicatedJob?: object; GlobalJob?: object };
  };
  UpdateStatus?: { State?: string; Message?: string };
}
interface RawTask {
  ID: string;
  ServiceID: string;
  NodeID?: string;
  Slot?: number;
  Spec?: { ContainerSpec?: { Image?: string } };
  Status?: {
    State?: string;
    Err?: string;
    Message?: string;
    Timestamp?: string;
    ContainerStatus?: { ExitCode?: number };
  };
  DesiredState?: string;
}
interface RawNode {
  ID: string;
  Description?: { Hostname?: string };
  Status?: { State?: string };
  Spec?: { Availability?: string };
  ManagerStatus?: object;
}

function toNode(n: RawNode): SwarmNode {
  return {
    id: n.ID,
    hostname: n.Description?.Hostname ?? n.ID.slice(0, 12),
    state: n.Status?.State ?? "unknown",
    availability: n.Spec?.Availability ?? "unknown",
    manager: n.ManagerStatus !== undefined,
  };
}

/** `docker node inspect` of every node (swarmNodes). */
export function parseNodes(json: string): SwarmNode[] {
  return json.trim() === "" ? [] : parseJson<RawNode[]>(json, "docker node inspect").map(toNode);
}

/** `=== services|tasks|nodes` sections, each a JSON array (or empty), as stackState prints them. */
export function parseStackState(text: string, project: string): StackState {
  const sections = new Map<string, string>();
  let key = "";
  for (const line of text.split("\n")) {
    const m = /^=== (\w+)$/.exec(line);
    if (m) key = m[1]!;
    else if (key) sections.set(key, `${sections.get(key) ?? ""}${line}\n`);
  }
  const arr = <T>(k: string): T[] => {
    const t = (sections.get(k) ?? "").trim();
    return t === "" ? [] : parseJson<T[]>(t, `docker inspect (${k})`);
  };
  const nodes = arr<RawNode>("nodes").map(toNode);
  const prefix = `${project}_`;
  const services = arr<RawService>("services").map((s): SwarmService => {
    const m = s.Spec.Mode ?? {};
    const mode = m.Global ? "global" : m.ReplicatedJob ? "replicated-job" : m.GlobalJob ? "global-job" : "replicated";
    return {
      service: s.Spec.Name.startsWith(prefix) ? s.Spec.Name.slice(prefix.length) : s.Spec.Name,
      id: s.ID,
      image: s.Spec.TaskTemplate?.ContainerSpec?.Image ?? "",
      mode,
      ...(s.UpdatedAt ? { updatedAt: s.UpdatedAt } : {}),
      ...(mode === "replicated" ? { replicas: m.Replicated?.Replicas ?? 1 } : {}),
      ...(s.UpdateStatus?.State
        ? { update: { state: s.UpdateStatus.State, message: s.UpdateStatus.Message ?? "" } }
        : {}),
    };
  });
  const byId = new Map(services.map((s) => [s.id, s.service]));
  const nodeById = new Map(nodes.map((n) => [n.id, n]));
  const tasks = arr<RawTask>("tasks")
    .filter((t) => byId.has(t.ServiceID))
    .map((t): SwarmTask => {
      const node = t.NodeID ? nodeById.get(t.NodeID) : undefined;
      const exit = t.Status?.ContainerStatus?.ExitCode;
      return {
        id: t.ID,
        service: byId.get(t.ServiceID)!,
        node: node?.hostname ?? (t.NodeID ? t.NodeID.slice(0, 12) : "(unassigned)"),
        nodeReady: node?.state === "ready",
        ...(t.Slot ? { slot: t.Slot } : {}),
        state: t.Status?.State ?? "unknown",
        desired: t.DesiredState ?? "unknown",
        image: t.Spec?.ContainerSpec?.Image ?? "",
        error: t.Status?.Err ?? "",
        ...(typeof exit === "number" ? { exitCode: exit } : {}),
        at: t.Status?.Timestamp ?? "",
      };
    });
  return { services, tasks, nodes };
}

/** `repo[:tag]@sha256:…` → `repo@sha256:…`; a reference without a digest stays as it is. */
function pinned(ref: string): string {
  const at = ref.indexOf("@");
  if (at < 0) return ref;
  const repo = ref.slice(0, at);
  const tag = repo.lastIndexOf(":");
  return `${tag > repo.lastIndexOf("/") ? repo.slice(0, tag) : repo}${ref.slice(at)}`;
}

/**
 * Whether a task or service runs `expected`: the same digest, or the tag swarm resolved to one (`postgres:16` →
 * `postgres:16@sha256:…`).
 */
export function runsImage(expected: string, actual: string): boolean {
  if (expected === actual) return true;
  if (expected.includes("@")) return pinned(expected) === pinned(actual);
  return actual.startsWith(`${expected}@`);
}

export interface Expected {
  service: string;
  image: string;
}

export interface Convergence {
  /**
   * Every service runs the release: the wanted number of tasks running (healthy: swarm reports `running` only once a
   * healthcheck passed).
   */
  done: boolean;
  /** Swarm gave up: it rolled a service back, or paused its update. */
  failed: string[];
  /** What is still awaited, one line per service (for the progress log and the timeout's message). */
  waiting: string[];
  /**
   * Services whose update waits for a task on a node that went down: swarm
   * never gives up on it (the update stays `updating`); a forced update
   * starts it again on the nodes left. service → the down nodes.
   */
  stuck: Record<string, string[]>;
}

function lastError(tasks: SwarmTask[]): string {
  const t = [...tasks]
    .filter((x) => x.error || ["failed", "rejected"].includes(x.state))
    .sort((a, b) => (Date.parse(a.at) || 0) - (Date.parse(b.at) || 0))
    .at(-1);
  return t ? `; last task on ${t.node}: ${t.state}${t.error ? ` (${t.error})` : ""}` : "";
}

/**
 * How many tasks a service should run: its replicas; for a global one, one per
 * ready node swarm placed a task of `image` on (its placement constraints are
 * swarm's to apply), at least one.
 */
function wanted(s: SwarmService, tasks: SwarmTask[], image: string): number {
  if (s.mode !== "global") return s.replicas ?? 1;
  return Math.max(
    1,
    new Set(
      tasks
        .filter((t) => t.service === s.service && t.desired === "running" && t.nodeReady && runsImage(image, t.image))
        .map((t) => t.node),
    ).size,
  );
}

/** Failed tasks of a service, none running, after which waiting longer is pointless. */
export const CRASH_LOOP = 3;

/** Task states before `running`. */
const STARTING = ["new", "pending", "assigned", "accepted", "preparing", "ready", "starting"];

export function assessConvergence(expected: readonly Expected[], st: StackState): Convergence {
  const failed: string[] = [];
  const waiting: string[] = [];
  const stuck: Record<string, string[]> = {};
  for (const e of expected) {
    const s = st.services.find((x) => x.service === e.service);
    if (!s) {
      waiting.push(`${e.service}: not created yet`);
      continue;
    }
    const mine = st.tasks.filter((t) => t.service === e.service && runsImage(e.image, t.image));
    const u = s.update?.state ?? "";
    const why = s.update?.message ? ` (${s.update.message})` : "";
    // swarm's own rollback puts the previous definition back: a failure unless that is what is expected (a rollback)
    if (!runsImage(e.image, s.image)) {
      if (u.startsWith("rollback")) failed.push(`${e.service}: swarm rolled its update back${why}${lastError(mine)}`);
      else waiting.push(`${e.service}: the service still has ${s.image}`);
      continue;
    }
    if (u === "paused" || u === "rollback_paused") {
      failed.push(`${e.service}: swarm paused its update${why}${lastError(mine)}`);
      continue;
    }
    if (s.mode === "replicated-job" || s.mode === "global-job") {
      const done = mine.filter((t) => t.state === "complete");
      const bad = mine.filter((t) => t.state === "failed" && t.desired !== "running");
      if (bad.length > 0 && done.length === 0)
        failed.push(
          `${e.service}: the one-off task failed${bad[0]!.exitCode !== undefined ? ` with exit code ${bad[0]!.exitCode}` : ""}${lastError(bad)}`,
        );
      else if (done.length === 0) waiting.push(`${e.service}: the one-off task has not completed${lastError(mine)}`);
      continue;
    }
    const want = wanted(s, st.tasks, e.image);
    const running = mine.filter((t) => t.desired === "running" && t.state === "running" && t.nodeReady).length;
    // start-first: the old tasks run until the new ones are up; the update is done when none is left
    const old = st.tasks.filter(
      (t) => t.service === e.service && t.desired === "running" && !runsImage(e.image, t.image) && t.nodeReady,
    ).length;
    // a new task that never started on a node now down (swarm set it to shut down, but the update still waits for it)
    const lost = mine.filter(
      (t) => STARTING.includes(t.state) && st.nodes.some((n) => n.hostname === t.node && n.state === "down"),
    );
    if (u === "updating" && lost.length > 0) stuck[e.service] = [...new Set(lost.map((t) => t.node))];
    // swarm retries a task that crashes, fails its healthcheck or cannot pull forever: three failures and none running
    // is the verdict
    // only since the definition last changed: the history may hold failures of an earlier deploy of the same image
    const since = Date.parse(s.updatedAt ?? "") || 0;
    const failures = mine.filter(
      (t) => (t.state === "failed" || t.state === "rejected") && (Date.parse(t.at) || 0) >= since,
    ).length;
    if (running === 0 && failures >= CRASH_LOOP) {
      failed.push(`${e.service}: ${failures} tasks failed and none runs${lastError(mine)}`);
      continue;
    }
    if (u === "updating" || u === "rollback_started" || running < want || old > 0) {
      waiting.push(
        `${e.service}: ${running}/${want} running${old ? `, ${old} of the previous version still running` : ""}${u === "updating" || u === "rollback_started" ? ` (${u.replace("_", " ")})` : ""}${running < want ? lastError(mine) : ""}`,
      );
    }
  }
  return { done: failed.length === 0 && waiting.length === 0, failed, waiting, stuck };
}

/** What verify and status show of one service: desired against running, and where each task runs which digest. */
export interface ServiceTasks {
  service: string;
  mode: SwarmService["mode"];
  desired: number;
  running: number;
  image: string;
  tasks: { node: string; state: string; image: string; error?: string }[];
}

export function serviceTasks(st: StackState): ServiceTasks[] {
  return st.services.map((s) => {
    const live = st.tasks.filter(
      (t) => t.service === s.service && (t.desired === "running" || (s.mode.endsWith("job") && t.state === "complete")),
    );
    return {
      service: s.service,
      mode: s.mode,
      desired: s.mode.endsWith("job") ? 1 : wanted(s, st.tasks, s.image),
      running: live.filter((t) => t.state === (s.mode.endsWith("job") ? "complete" : "running") && t.nodeReady).length,
      image: s.image,
      tasks: live.map((t) => ({
        node: t.node,
        state: t.nodeReady
          ? t.state
          : `${t.state} (node ${st.nodes.find((n) => n.hostname === t.node)?.state ?? "unknown"})`,
        image: t.image,
        ...(t.error ? { error: t.error } : {}),
      })),
    };
  });
}

/**
 * verify on a swarm: each service of the release exists, its definition has the
 * release's image, all its tasks run (on ready nodes) and every task runs that
 * digest; the stack has no service the release does not have. One line per problem.
 */
export function stackDrift(release: string, expected: readonly Expected[], st: StackState): string[] {
  const out: string[] = [];
  const views = serviceTasks(st);
  for (const e of expected) {
    const s = st.services.find((x) => x.service === e.service);
    const v = views.find((x) => x.service === e.service);
    if (!s || !v) {
      out.push(`${e.service}: no such service in the stack: deploy again, or \`rollback --to ${release}\``);
      continue;
    }
    if (!runsImage(e.image, s.image))
      out.push(
        `${e.service}: the service is defined with ${s.image}, release ${release} pins ${e.image} (changed by hand with \`docker service update\`?)`,
      );
    for (const t of v.tasks) {
      if (t.image && !runsImage(e.image, t.image))
        out.push(`${e.service}: a task on ${t.node} runs ${t.image}, release ${release} pins ${e.image}`);
    }
    if (v.running < v.desired)
      out.push(
        `${e.service}: ${v.running}/${v.desired} ${s.mode.endsWith("job") ? "completed" : "running"}${v.tasks
          .filter((t) => !t.state.startsWith("running"))
          .map((t) => `; on ${t.node}: ${t.state}${t.error ? ` (${t.error})` : ""}`)
          .join("")}`,
      );
    // a rollback swarm finished is fine when it left the release's image (checked above)
    const u = s.update?.state;
    const doing: Record<string, string> = {
      updating: "an update is in progress",
      paused: "an update is paused",
      rollback_started: "an update is being rolled back",
      rollback_paused: "a rollback is paused",
    };
    if (u && doing[u]) out.push(`${e.service}: ${doing[u]}${s.update?.message ? ` (${s.update.message})` : ""}`);
  }
  for (const s of st.services)
    if (!expected.some((e) => e.service === s.service))
      out.push(`service ${s.service} runs in the stack but release ${release} does not have it (started by hand?)`);
  return out;
}
