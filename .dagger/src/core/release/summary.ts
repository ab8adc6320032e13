/**
 * What deploy, rollback and status print, as text for a terminal and as
 * Markdown for a GitHub job summary (`>> $GITHUB_STEP_SUMMARY`).
 */
import type { ContainerState } from "./health.js";
import type { HistoryRecord } from "./release.js";

export interface ReleaseSummary {
  action: "deploy" | "rollback";
  release: string;
  previous?: string | undefined;
  /** service → image as the release pins it. */
  images: Record<string, string>;
  durations: Record<string, number>;
}

export function markdownRelease(r: ReleaseSummary): string {
  const steps = Object.entries(r.durations)
    .map(([k, v]) => `${k} ${v.toFixed(2)}s`)
    .join(" · ");
  const total = Object.values(r.durations).reduce((a, b) => a + b, 0);
  return [
    `### ${r.action === "deploy" ? "🚀 deployed" : "↩️ rolled back to"} \`${r.release}\`${r.previous ? ` (previous: \`${r.previous}\`)` : ""}`,
    "",
    "| service | image |",
    "|---|---|",
    ...Object.entries(r.images).map(([s, i]) => `| ${s} | \`${i}\` |`),
    "",
    `steps: ${steps} — ${total.toFixed(2)}s in all`,
  ].join("\n");
}

export interface StatusView {
  release: string | null;
  services: ContainerState[];
  releases: { id: string; current: boolean; missing: string[] }[];
  history: HistoryRecord[];
  /** On a swarm: each service's tasks (node, state, image) and the nodes. */
  swarm?: {
    services: {
      service: string;
      mode: string;
      desired: number;
      running: number;
      image: string;
      tasks: { node: string; state: string; image: string; error?: string }[];
    }[];
    nodes: { hostname: string; state: string; availability: string; manager: boolean }[];
  };
  /** Data snapshots kept (newest last). */
  snapshots?: {
    id: string;
    service: string;
    capture: string;
    release: string;
    before: string;
    at: string;
    bytes: number;
    seconds: number;
    stoppedSeconds?: number;
    offsite?: boolean;
    verified?: string;
  }[];
  edge?: {
    state: string;
    image: string;
    publish: string[];
    maintenance?: boolean;
    routes: { service: string; listen: { hostIp?: string; port: number }[]; host?: string; upstreams: string[] }[];
  };
  /** Live pull request previews of the project. */
  previews?: { pr: number; url: string; release: string; lastDeploy: string; bytes: number }[];
}

/** One line per live preview: its number, URL, release, age since its last push, disk. */
function previewLines(x: NonNullable<StatusView["previews"]>, now = Date.now()): string[] {
  const age = (at: string) => {
    const h = Math.max(0, (now - Date.parse(at)) / 3_600_000);
    return h < 1 ? `${Math.round(h * 60)} min` : h < 48 ? `${h.toFixed(1)} h` : `${(h / 24).toFixed(1)} d`;
  };
  return [
    "previews (preview-down --pr=<n> removes one):",
    ...x.map(
      (p) =>
        `  #${String(p.pr).padEnd(6)} ${p.url || "(no URL)"}  ${p.release || "(no release: its first deploy failed)"}  pushed ${age(p.lastDeploy)} ago  ${(p.bytes / 1048576).toFixed(1)} MiB`,
    ),
  ];
}

/** One line for the edge and one per route of this project. */
function edgeLines(e: NonNullable<StatusView["edge"]>): string[] {
  return [
    `edge: ${e.state}, ${e.image}, publishes ${e.publish.map((p) => p.replace(/:\d+$/, "")).join(", ") || "nothing"}${e.maintenance ? "; IN MAINTENANCE: its routes answer 503 with the page (`maintenance --off` ends it)" : ""}`,
    ...e.routes.map(
      (r) =>
        `  ${r.service.padEnd(12)} ${[...r.listen.map((l) => `:${l.port}`), ...(r.host ? [`https://${r.host}`] : [])].join(" ")} → ${r.upstreams.join(", ") || "(no container)"}`,
    ),
  ];
}

/** One line per node, then per service its replicas and where each task runs. */
function swarmLines(w: NonNullable<StatusView["swarm"]>): string[] {
  return [
    `nodes: ${w.nodes.map((n) => `${n.hostname} ${n.state}${n.availability !== "active" ? `/${n.availability}` : ""}${n.manager ? " (manager)" : ""}`).join(", ")}`,
    ...w.services.flatMap((s) => [
      `  ${s.service.padEnd(12)} ${s.running}/${s.desired} ${s.mode.endsWith("job") ? "completed" : "running"}  ${s.image}`,
      ...s.tasks.map(
        (t) =>
          `      ${t.node.padEnd(12)} ${t.state}${t.image !== s.image ? `  ${t.image}` : ""}${t.error ? `  ${t.error}` : ""}`,
      ),
    ]),
  ];
}

function snapshotLines(x: NonNullable<StatusView["snapshots"]>): string[] {
  return [
    "snapshots (restore --snapshot=<id>):",
    ...x.map(
      (r) =>
        `  ${r.id.slice(0, 12)}  ${r.service.padEnd(10)} ${r.capture.padEnd(8)} ${r.at}  ${(r.bytes / 1048576).toFixed(1)} MiB  while ${r.release} was current, before ${r.before}${r.offsite ? ", off-site too" : ""}${r.verified ? `, verified ${r.verified}` : ""}`,
    ),
  ];
}

function historyLine(h: HistoryRecord): string {
  const what =
    h.action === "run" ? `  ${h.service ?? ""}: ${(h.command ?? []).join(" ")} → exit ${h.exitCode ?? "?"}` : "";
  return `${h.at}  ${h.action.padEnd(8)} ${h.result.padEnd(11)} ${h.release}  by ${h.by}${what}${h.reason ? `  — ${h.reason}` : ""}`;
}

export function formatStatus(s: StatusView): string {
  return [
    `current release: ${s.release ?? "(none)"}`,
    ...s.services.map((c) => `  ${c.service.padEnd(12)} ${c.state}${c.health ? `/${c.health}` : ""}  ${c.image}`),
    ...(s.swarm ? swarmLines(s.swarm) : []),
    "kept releases:",
    ...s.releases.map(
      (r) =>
        `  ${r.current ? "*" : " "} ${r.id}  ${r.missing.length ? `images missing (a rollback pulls them back): ${r.missing.join(", ")}` : "images present"}`,
    ),
    ...(s.edge ? edgeLines(s.edge) : []),
    ...(s.snapshots?.length ? snapshotLines(s.snapshots) : []),
    ...(s.previews?.length ? previewLines(s.previews) : []),
    "history:",
    ...s.history.map((h) => `  ${historyLine(h)}${h.hint ? `\n      hint: ${h.hint}` : ""}`),
  ].join("\n");
}

export function markdownStatus(s: StatusView): string {
  const last = s.history.at(-1);
  const lines = [`### status: current release \`${s.release ?? "none"}\``, ""];
  if (last) {
    lines.push(`last ${last.action}: **${last.result}** \`${last.release}\` by ${last.by} at ${last.at}`);
    if (last.reason) lines.push("", `> ${last.code ? `\`${last.code}\`: ` : ""}${last.reason}`);
    if (last.hint) lines.push(">", `> hint: ${last.hint}`);
    lines.push("");
  }
  lines.push(
    "| service | state | image |",
    "|---|---|---|",
    ...s.services.map((c) => `| ${c.service} | ${c.state}${c.health ? `/${c.health}` : ""} | \`${c.image}\` |`),
  );
  lines.push(
    "",
    "| kept release | images |",
    "|---|---|",
    ...s.releases.map(
      (r) =>
        `| \`${r.id}\`${r.current ? " (current)" : ""} | ${r.missing.length ? `${r.missing.length} missing` : "present"} |`,
    ),
  );
  if (s.swarm) lines.push("", "```", ...swarmLines(s.swarm), "```");
  if (s.edge) lines.push("", "```", ...edgeLines(s.edge), "```");
  if (s.snapshots?.length) lines.push("", "```", ...snapshotLines(s.snapshots), "```");
  if (s.previews?.length)
    lines.push(
      "",
      "| preview | URL | release | last push | disk |",
      "|---|---|---|---|---|",
      ...s.previews.map(
        (p) => `| #${p.pr} | ${p.url} | \`${p.release}\` | ${p.lastDeploy} | ${(p.bytes / 1048576).toFixed(1)} MiB |`,
      ),
    );
  return lines.join("\n");
}
