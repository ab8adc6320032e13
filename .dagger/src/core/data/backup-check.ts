/**
 * A backup is only as good as a restore: `vps … check-backup` puts a snapshot
 * into a scratch copy of its service (a compose project of its own, beside the
 * real one, sharing nothing with it: fresh volumes, its own network with no way
 * out, no port),
 * waits for it to be healthy, runs the data's `check` command there, and
 * removes it all. This file makes that copy's compose file.
 */
import { composeData } from "../compose/compose.js";
import type { DataSpec } from "../compose/extension.js";
import { sourceEnd } from "../compose/short-volume.js";

/** The scratch copy's compose project: never one a user deploys (the suffix is ours). */
export const scratchProject = (project: string): string => `${project}-backup-check`;

/** The mark on everything the scratch copy makes: removal takes marked things only, never a project merely so named. */
export const SCRATCH_LABEL = "io.vps-pipeline.scratch";

/** Where its compose file and `.env` are written, under the deploy folder. */
export const scratchDir = (dir: string): string => `${dir}/.backups/check`;

/**
 * Settings of the real service a scratch copy must not have: ports, fixed names, other services, restarts, replicas.
 */
const DROPPED = [
  "ports",
  "container_name",
  "networks",
  "network_mode",
  "depends_on",
  "links",
  "restart",
  "deploy",
  "profiles",
  "x-vps-pipeline",
  "extends",
  "external_links",
  "labels",
];

/**
 * The compose file of a scratch copy of `spec.service` as release `releaseText`
 * runs it (image, command, environment, its files): every named volume it
 * mounts is a fresh one of the scratch project (compose names it
 * `<scratch>_<volume>`), on the project's own default network.
 */
export function scratchCompose(releaseText: string, spec: DataSpec, project: string): string {
  const root = (composeData(releaseText) ?? {}) as {
    services?: Record<string, Record<string, unknown>>;
    volumes?: Record<string, unknown>;
  };
  const svc: Record<string, unknown> = { ...(root.services?.[spec.service] ?? {}) };
  for (const k of DROPPED) delete svc[k];
  const volumes: Record<string, object> = {};
  const named = (source: string) => !!root.volumes && source in root.volumes;
  svc.volumes = (Array.isArray(svc.volumes) ? svc.volumes : []).map((v: unknown) => {
    const m = mountOf(v);
    if (m.type === "volume" && m.source && named(m.source)) {
      volumes[m.source] = { labels: { [SCRATCH_LABEL]: project } };
      return v;
    }
    if (m.type === "tmpfs" || (m.type === "volume" && !m.source)) return v;
    // a file the release ships stays, read-only; any other host path is the live one: an empty volume instead
    if (m.type === "bind" && m.source && SHIPPED.test(m.source))
      return { type: "bind", source: m.source, target: m.target, read_only: true };
    return { type: "volume", target: m.target };
  });
  svc.labels = { [SCRATCH_LABEL]: project };
  // internal: no way out of the host. The copy runs on production's data with the service's own environment; what it
  // does when it starts (send mail, call an API, join a queue) must reach nobody.
  const networks = { default: { internal: true, labels: { [SCRATCH_LABEL]: project } } };
  return `${JSON.stringify({ services: { [spec.service]: svc }, networks, ...(Object.keys(volumes).length ? { volumes } : {}) }, null, 2)}\n`;
}

/** Files the release ships (core/release/release-files.ts FILES_DIR): copies of the repository's, never live data. */
const SHIPPED = /^(\.\/)?\.releases\/files\//;

/** A service's volume entry, short or long, as type, source and target. */
function mountOf(v: unknown): { type: string; source?: string; target: string } {
  if (typeof v === "string") {
    const end = sourceEnd(v);
    if (end === v.length) return { type: "volume", target: v };
    const source = v.slice(0, end);
    const target = v.slice(end + 1).split(":")[0] ?? "";
    return { type: /^[./~$]/.test(source) || source.includes("/") ? "bind" : "volume", source, target };
  }
  const m = (v ?? {}) as { type?: unknown; source?: unknown; target?: unknown };
  return {
    type: String(m.type ?? "volume"),
    ...(m.source !== undefined ? { source: String(m.source) } : {}),
    target: String(m.target ?? ""),
  };
}

/** The scratch copy's volume that receives what a snapshot took from `volume` (docker's name of the real one). */
export const scratchVolume = (project: string, volume: string): string => `${scratchProject(project)}_${volume}`;
