/**
 * What makes a release safe to run as a preview beside production, decided on
 * the rendered release: no host port, no fixed name of a container, volume or
 * network, no writable host path, caps on memory and CPU; each service behind
 * the edge at its preview hostname.
 */
import type { Document } from "yaml";
import { composeDocument, setInEmpty, setLabel, setLabelIn } from "../compose/compose.js";
import { PUBLISHED_LABEL } from "../edge/edge.js";
import { PipelineError } from "../errors.js";
import { EXTENSION_KEY, JOB_PROFILE } from "../compose/extension.js";
import { PREVIEW_LABEL, previewMark, type PreviewSettings } from "./preview.js";
import { sandbox } from "./sandbox.js";
import { envValues } from "../compose/env-file.js";

/**
 * The hostname of each service behind the edge: the main one (the first with a `host`, else the first) at
 * `pr-<n>.<domain>`, the others at `pr-<n>-<service>.<domain>` (one level under the wildcard).
 */
export function previewHosts(
  http: readonly { service: string; host?: string | undefined }[],
  pr: number,
  domain: string,
): Record<string, string> {
  const main = (http.find((h) => h.host) ?? http[0])?.service;
  return Object.fromEntries(
    http.map((h) => {
      const label =
        h.service === main
          ? `pr-${pr}`
          : `pr-${pr}-${h.service.toLowerCase().replace(/[^a-z0-9-]+/g, "-")}`.slice(0, 63).replace(/-+$/, "");
      return [h.service, `${label}.${domain}`];
    }),
  );
}

export interface PreviewRelease {
  compose: string;
  /** service → the hostname it is served at. */
  hosts: Record<string, string>;
  /** `https://pr-<n>.<domain>`, or undefined when no service is behind the edge. */
  url?: string;
  /** What was changed for the preview, said once in the output. */
  notes: string[];
  /**
   * Every host path it names, relative to its folder: the server checks they resolve inside it before anything
   * starts (DeployRequest.confined).
   */
  hostPaths: string[];
}

type Svc = Record<string, unknown>;

/**
 * The release as the preview runs it, from production's rendered release: every `ports:` dropped (the edge serves
 * the preview by hostname), each service behind the edge at its preview hostname, `container_name` made the
 * preview's own (the old name stays an alias on its networks), data declarations dropped (a preview takes no
 * snapshot), caps where a service sets none. What would share something with production is refused, all at once.
 */
export function previewRelease(
  releaseText: string,
  pr: number,
  s: Pick<PreviewSettings, "domain" | "memory" | "cpus"> & {
    /** Production's project: the preview's mark names it (core/preview/preview.ts). */
    project: string;
    seed?: string;
    env?: string;
  },
): PreviewRelease {
  const doc = composeDocument(releaseText, "the release");
  const root = (doc.toJS() ?? {}) as {
    services?: Record<string, Svc>;
    volumes?: Record<string, Svc | null>;
    networks?: Record<string, Svc | null>;
  };
  // what the preview may ask of the VPS, on the resolved release with the preview's .env (sandbox.ts)
  const judged = sandbox(root, envValues(s.env ?? ""));
  const problems: string[] = judged.problems;
  const notes: string[] = [];
  const services = root.services ?? {};
  const http = Object.entries(services).flatMap(([name, svc]) => {
    const h = (svc?.[EXTENSION_KEY] as { http?: { host?: string } } | undefined)?.http;
    return h ? [{ service: name, ...(h.host ? { host: h.host } : {}) }] : [];
  });
  const hosts = previewHosts(http, pr, s.domain);
  const dropped: string[] = [];
  for (const [name, raw] of Object.entries(services)) {
    const svc = raw ?? {};
    if (svc.ports !== undefined) {
      doc.deleteIn(["services", name, "ports"]);
      dropped.push(name);
    }
    if (hosts[name]) {
      setInEmpty(doc, ["services", name, EXTENSION_KEY, "http", "host"], hosts[name]);
      setLabel(doc, name, PUBLISHED_LABEL, "");
    }
    if ((svc[EXTENSION_KEY] as { data?: unknown } | undefined)?.data !== undefined)
      doc.deleteIn(["services", name, EXTENSION_KEY, "data"]);
    if (typeof svc.container_name === "string") renameContainer(doc, name, svc, `${svc.container_name}-pr-${pr}`);
    const limits = (
      svc.deploy as { resources?: { limits?: { memory?: unknown; cpus?: unknown; pids?: unknown } } } | undefined
    )?.resources?.limits;
    // compose refuses `cpus`, `mem_limit` or `pids_limit` beside a `deploy.resources.limits` that differs: the caps
    // are written there, the service's own values carried over
    const cap = (key: "memory" | "cpus" | "pids", own: unknown, preview: unknown) => {
      if (limits?.[key] !== undefined) return;
      const value = own ?? preview;
      if (value !== undefined) setInEmpty(doc, ["services", name, "deploy", "resources", "limits", key], value);
    };
    cap("memory", svc.mem_limit, s.memory);
    cap("cpus", svc.cpus, s.cpus);
    cap("pids", svc.pids_limit, undefined);
  }
  for (const [kind, map] of [
    ["volumes", root.volumes],
    ["networks", root.networks],
  ] as const) {
    for (const [name, def] of Object.entries(map ?? {})) {
      if (def?.external)
        problems.push(
          `${kind}.${name}.external: a preview would share this ${kind.slice(0, -1)} with production; previews get their own (drop \`external\`, or keep previews off this stack)`,
        );
      else if (def?.name !== undefined)
        problems.push(
          `${kind}.${name}.name: a fixed name is production's ${kind.slice(0, -1)} too; drop \`name:\` so that compose names it after the project (<project>-pr-<n>_${name})`,
        );
    }
  }
  if (s.seed) seedJob(doc, services, s.seed, problems);
  markResources(doc, root, previewMark(s.project, pr));
  if (problems.length)
    throw new PipelineError(
      "INVALID_INPUT",
      `this release cannot run as a preview beside production:\n  ${problems.join("\n  ")}`,
      "change the production compose file as said (previews share the VPS with production); nothing was changed",
    );
  if (dropped.length)
    notes.push(
      `ports of ${dropped.join(", ")} not published (a preview publishes no host port${http.length ? "; the edge serves it by hostname" : ""})`,
    );
  if (!http.length)
    notes.push(
      `no service is behind the edge (\`${EXTENSION_KEY}: { http: … }\`): the preview runs, but nothing serves it at a hostname`,
    );
  const main = http.find((h) => h.host) ?? http[0];
  return {
    compose: doc.toString({ lineWidth: 0 }),
    hosts,
    ...(main ? { url: `https://${hosts[main.service]}` } : {}),
    notes,
    hostPaths: judged.hostPaths,
  };
}

/**
 * The seed the user names (`--preview-seed`): a service of the file (production never starts it: give it a
 * profile) that runs in each preview as its last release-phase job, after the migrations, on every push: it
 * must be idempotent. Moved to the end of the file: jobs run in file order.
 */
function seedJob(doc: Document, services: Record<string, Svc>, seed: string, problems: string[]): void {
  const svc = services[seed];
  const ext = (svc?.[EXTENSION_KEY] ?? {}) as { http?: unknown; data?: unknown; job?: unknown };
  if (!svc)
    return void problems.push(
      `previewSeed: \`${seed}\` is no service of the release (services: ${Object.keys(services).join(", ")})`,
    );
  if (ext.http !== undefined || ext.data !== undefined)
    return void problems.push(
      `services.${seed}: the preview seed runs once per deploy and exits; it cannot be behind the edge or own data`,
    );
  const node = doc.getIn(["services", seed], true);
  doc.deleteIn(["services", seed]);
  doc.setIn(["services", seed], node);
  if (ext.job === undefined) setInEmpty(doc, ["services", seed, EXTENSION_KEY, "job"], true);
  doc.setIn(["services", seed, "profiles"], doc.createNode([JOB_PROFILE], { flow: true }));
}

/**
 * The preview's mark on everything compose makes of it: each service's containers, each volume and network
 * (the default network declared for it), so that removal acts on marked things only.
 */
function markResources(
  doc: Document,
  root: { services?: Record<string, Svc>; volumes?: Record<string, Svc | null>; networks?: Record<string, Svc | null> },
  mark: string,
): void {
  for (const name of Object.keys(root.services ?? {})) setLabel(doc, name, PREVIEW_LABEL, mark);
  const networks = Object.keys(root.networks ?? {});
  for (const [kind, names] of [
    ["volumes", Object.keys(root.volumes ?? {})],
    ["networks", networks.includes("default") ? networks : [...networks, "default"]],
  ] as const)
    for (const n of names) setLabelIn(doc, [kind, n], PREVIEW_LABEL, mark);
}

/**
 * `container_name: x` becomes the preview's own name; `x` stays an alias on each of the service's networks, so that the
 * stack finds it as before.
 */
function renameContainer(doc: Document, name: string, svc: Svc, to: string): void {
  const alias = svc.container_name as string;
  doc.setIn(["services", name, "container_name"], to);
  if (svc.network_mode !== undefined) return;
  const nets = svc.networks;
  const list = Array.isArray(nets)
    ? nets.map(String)
    : nets && typeof nets === "object"
      ? Object.keys(nets)
      : ["default"];
  const map: Record<string, unknown> = {};
  for (const n of list) {
    const cur = (
      !Array.isArray(nets) && nets && typeof nets === "object" ? (nets as Record<string, unknown>)[n] : undefined
    ) as { aliases?: unknown } | null | undefined;
    const aliases = Array.isArray(cur?.aliases) ? cur.aliases.map(String) : [];
    map[n] = { ...(cur ?? {}), aliases: [...new Set([...aliases, alias])] };
  }
  doc.setIn(["services", name, "networks"], doc.createNode(map));
}
