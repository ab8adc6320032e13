/**
 * `plan`: what a deploy would change, as data (printed as text, JSON or
 * Markdown). Built from the current release record and the new one; nothing in
 * it ever holds a value of the `.env`.
 */
import { parse } from "yaml";
import { releaseShape } from "../compose/compose.js";
import { interpolate } from "../compose/interpolate.js";
import { PUBLISHED_LABEL } from "../edge/edge.js";
import { referencedHashes, type ReleaseFiles } from "./release-files.js";
import { diffEnv, envValues, type EnvDiff } from "../compose/env-file.js";

export interface ServiceChange {
  service: string;
  change: "added" | "removed" | "changed" | "unchanged";
  from?: string;
  to?: string;
}

export interface Plan {
  /** The release that runs now, or null on a server that never had one. */
  current: string | null;
  preflight: { docker: string; compose: string; freeMiB: number };
  services: ServiceChange[];
  /** `null` when no `.env` is given: the server's is kept as it is. */
  env: EnvDiff | null;
  /** Release-phase jobs that would run before the switch. */
  jobs: string[];
  /**
   * The edge routes of the release (services with `x-vps-pipeline.http`): what the edge will serve after the deploy.
   */
  routes: string[];
  /**
   * Files from the repository the release carries: where, the content's hash, and whether the server has that content
   * already.
   */
  files: { field: string; written: string; hash: string; change: "new" | "unchanged" }[];
  /** What the user should know (a secret kept in Git). */
  notes: string[];
  /** True when nothing would change but a new release record. */
  noop: boolean;
}

export function planRelease(a: {
  current: string | null;
  currentCompose: string;
  newCompose: string;
  currentEnv?: string;
  newEnv?: string;
  preflight: Plan["preflight"];
  files?: ReleaseFiles["manifest"];
  notes?: string[];
}): Plan {
  const before = a.currentCompose ? releaseShape(a.currentCompose, a.currentEnv).images : {};
  const after = releaseShape(a.newCompose, a.newEnv ?? a.currentEnv);
  const names = [...new Set([...Object.keys(before), ...Object.keys(after.images)])].sort();
  const services: ServiceChange[] = names.map((service) => {
    const from = before[service];
    const to = after.images[service];
    if (from === undefined) return { service, change: "added", to: to ?? "" };
    if (to === undefined) return { service, change: "removed", from };
    return from === to ? { service, change: "unchanged", from, to } : { service, change: "changed", from, to };
  });
  const env = a.newEnv === undefined ? null : diffEnv(a.currentEnv ?? "", a.newEnv);
  const jobs = after.jobs.map((j) => j.service);
  const envSame = !env || env.added.length + env.removed.length + env.changed.length === 0;
  const kept = referencedHashes(a.currentCompose);
  const files = (a.files ?? []).map((f) => ({
    field: f.field,
    written: f.written,
    hash: f.hash,
    change: kept.has(f.hash) ? ("unchanged" as const) : ("new" as const),
  }));
  return {
    current: a.current,
    preflight: a.preflight,
    services,
    env,
    jobs,
    routes: edgeRoutes(a.newCompose, a.newEnv ?? a.currentEnv ?? ""),
    files,
    notes: a.notes ?? [],
    noop:
      services.every((s) => s.change === "unchanged") &&
      envSame &&
      jobs.length === 0 &&
      files.every((f) => f.change === "unchanged"),
  };
}

/**
 * `web: ${WEB_PORT:-8080}, https://gold.example.com → :8000/health`, one per service behind the edge, ports as written
 * (compose interpolates them on the server).
 */
/** Each route as the edge will serve it: its published port interpolated with the `.env` the release gets. */
function edgeRoutes(compose: string, env: string): string[] {
  const vars = envValues(env);
  // a port, never a value that is not one (nothing else of the .env is shown)
  const port = (spec: string) => {
    const v = interpolate(spec, vars);
    return /^(\[[0-9a-fA-F:]+\]:)?[\d.:-]*(\/(tcp|udp|sctp))?$/.test(v) ? v : spec;
  };
  const services = ((parse(compose) ?? {}) as { services?: Record<string, { labels?: unknown }> }).services ?? {};
  const label = (labels: unknown): string | undefined => {
    if (Array.isArray(labels))
      return labels
        .map(String)
        .find((l) => l.startsWith(`${PUBLISHED_LABEL}=`))
        ?.slice(PUBLISHED_LABEL.length + 1);
    const v = (labels as Record<string, unknown> | undefined)?.[PUBLISHED_LABEL];
    return v === undefined ? undefined : String(v);
  };
  return releaseShape(compose).http.map((h) => {
    const published = label(services[h.service]?.labels);
    const from = [published && port(published), h.host ? `https://${h.host}` : ""].filter(Boolean).join(", ");
    return `${h.service}: ${from} → :${h.port}${h.health}`;
  });
}

const short = (image: string | undefined) => (image ?? "").replace(/@sha256:([0-9a-f]{12})[0-9a-f]+$/, "@sha256:$1…");

export function formatPlan(p: Plan): string {
  const lines = [
    `plan: ${p.noop ? "nothing would change" : "the deploy would change:"}  (current release: ${p.current ?? "none"})`,
  ];
  lines.push(
    `  preflight ok: docker ${p.preflight.docker}, compose ${p.preflight.compose}, ${p.preflight.freeMiB} MiB free`,
  );
  for (const s of p.services) {
    const mark = { added: "+", removed: "-", changed: "~", unchanged: "=" }[s.change];
    lines.push(
      `  ${mark} ${s.service.padEnd(12)} ${s.change === "changed" ? `${short(s.from)} → ${short(s.to)}` : short(s.to ?? s.from)}`,
    );
  }
  if (p.env === null) lines.push("  .env: none given, the server's is kept");
  else
    lines.push(
      `  .env: ${[...p.env.added.map((k) => `+${k}`), ...p.env.removed.map((k) => `-${k}`), ...p.env.changed.map((k) => `~${k}`)].join(" ") || "no key changes"}`,
    );
  lines.push(`  jobs before the switch: ${p.jobs.join(", ") || "none"}`);
  lines.push(`  edge routes: ${p.routes.join(", ") || "none"}`);
  lines.push(`  files from the repository: ${p.files.length ? "" : "none"}`);
  for (const f of p.files)
    lines.push(
      `    ${f.change === "new" ? "~" : "="} ${f.written} (${f.field}) sha256:${f.hash}…${f.change === "new" ? " new content" : ""}`,
    );
  for (const n of p.notes) lines.push(`  note: ${n}`);
  return lines.join("\n");
}

export function markdownPlan(p: Plan): string {
  const lines = [
    `### plan: ${p.noop ? "nothing would change" : "changes"} (current release \`${p.current ?? "none"}\`)`,
    "",
    "| service | change | from | to |",
    "|---|---|---|---|",
  ];
  for (const s of p.services)
    lines.push(`| ${s.service} | ${s.change} | \`${short(s.from) || "-"}\` | \`${short(s.to) || "-"}\` |`);
  lines.push(
    "",
    p.env === null
      ? "- `.env`: none given, the server's is kept"
      : `- \`.env\` keys: added ${p.env.added.join(", ") || "none"}; removed ${p.env.removed.join(", ") || "none"}; changed ${p.env.changed.join(", ") || "none"}`,
  );
  lines.push(`- jobs before the switch: ${p.jobs.join(", ") || "none"}`);
  lines.push(`- edge routes: ${p.routes.map((r) => `\`${r}\``).join(", ") || "none"}`);
  lines.push(`- files from the repository: ${p.files.map((f) => `\`${f.written}\` ${f.change}`).join(", ") || "none"}`);
  for (const n of p.notes) lines.push(`- note: ${n}`);
  return lines.join("\n");
}
