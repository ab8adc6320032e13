/**
 * What a preview (any pull request's code) may ask of the VPS, as an allow-list on the resolved release: what
 * compose will run, every alias, `extends` and `include` already resolved, each judged field substituted with the
 * preview's `.env`. Allowed: ordinary service keys; named volumes of its own (no driver, no options); binds of
 * paths inside its own folder; its own networks (bridge, no options); env files, configs and secrets from its
 * folder. Anything else is refused with the field and the fix: privileges, capabilities, devices, host
 * namespaces, another container's network or volumes, any host path outside its folder (read-only or not).
 * test/unit/preview-sandbox.test.ts holds one case per rule, each also behind a variable.
 */
import { interpolate } from "../compose/interpolate.js";
import { sourceEnd } from "../compose/short-volume.js";
import { normalize } from "../release/paths.js";

/** Service keys a preview may use as it likes (compose's ordinary settings of a container). */
const ORDINARY = new Set([
  "image",
  "command",
  "entrypoint",
  "environment",
  "labels",
  "annotations",
  "healthcheck",
  "depends_on",
  "restart",
  "init",
  "user",
  "working_dir",
  "stop_signal",
  "stop_grace_period",
  "tty",
  "stdin_open",
  "expose",
  // dropped for the preview (the edge serves it by hostname)
  "ports",
  "tmpfs",
  "ulimits",
  "container_name",
  "hostname",
  "domainname",
  "dns",
  "dns_search",
  "dns_opt",
  "extra_hosts",
  "read_only",
  "shm_size",
  "mem_limit",
  "mem_reservation",
  "memswap_limit",
  "mem_swappiness",
  "cpus",
  "cpu_shares",
  "cpu_quota",
  "cpu_period",
  "pids_limit",
  "platform",
  "pull_policy",
  "profiles",
  "sysctls",
  "attach",
  "scale",
  "cap_drop",
  "group_add",
  "mac_address",
  "post_start",
  "pre_stop",
  "develop",
  "stop_grace_period",
  "build",
]);

/** Keys judged further below. */
const JUDGED = new Set([
  "volumes",
  "env_file",
  "label_file",
  "networks",
  "network_mode",
  "ipc",
  "links",
  "volumes_from",
  "security_opt",
  "logging",
  "deploy",
  "configs",
  "secrets",
]);

/** Why a key that grants the host is refused, and what to do instead. */
const HOST_KEYS: Record<string, string> = {
  privileged: "gives the container every device and capability of the host",
  cap_add: "adds kernel capabilities (`cap_drop` is allowed)",
  devices: "hands the container host devices",
  device_cgroup_rules: "opens host devices",
  pid: "shares a process namespace (the host's, or another container's)",
  userns_mode: "leaves the user namespace (`host` is root on the VPS)",
  cgroup: "shares the host's cgroup namespace",
  cgroup_parent: "places the container in a cgroup of the host's",
  uts: "shares the host's UTS namespace",
  runtime: "picks another container runtime",
  isolation: "picks another isolation",
  gpus: "hands the container host GPUs",
  use_api_socket: "mounts the Docker API socket: control of every container on the VPS",
  external_links: "links containers outside the preview",
  credential_spec: "reads host credentials",
  oom_kill_disable: "lets the container exhaust the VPS's memory",
  oom_score_adj: "changes how the kernel chooses what to kill when memory runs out",
  storage_opt: "sets host storage options",
  blkio_config: "names host block devices",
  cpuset: "pins host CPUs",
  cpu_rt_runtime: "asks for real-time scheduling",
  cpu_rt_period: "asks for real-time scheduling",
  cpu_count: "sets Windows CPU options",
  cpu_percent: "sets Windows CPU options",
  provider: "runs a provider plugin on the host",
  models: "runs models on the host",
};

/** Names the server's SSH session sets: compose prefers them to the `.env`, so their value is the server's. */
const SESSION = /^(HOME|USER|LOGNAME|PATH|SHELL|PWD|OLDPWD|TERM|LANG|LC_\w+|SSH_\w+|MAIL|XDG_\w+|TMPDIR|HOSTNAME)$/;

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

interface Ctx {
  vars: ReadonlyMap<string, string>;
  problems: string[];
  /** Every host path the release names, normalised, relative to the preview's folder → the first field naming it. */
  hostPaths: Map<string, string>;
  /** The bind sources a container may write (not read-only) → the first field naming one. */
  writable: Map<string, string>;
  volumes: ReadonlySet<string>;
  networks: ReadonlySet<string>;
  services: ReadonlySet<string>;
}

/**
 * The value the server's compose will see, or undefined (a problem said) when a variable in it is not the
 * preview's to set: one its `.env` leaves unset, or one the server's session sets.
 */
function resolved(c: Ctx, v: unknown, where: string): string | undefined {
  const s = String(v);
  if (!s.includes("$")) return s;
  for (const m of s.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) {
    const name = m[1]!;
    if (SESSION.test(name) || !c.vars.has(name)) {
      c.problems.push(
        `${where}: \`${s}\` uses \`${name}\`, which ${SESSION.test(name) ? "the server's session sets" : "the preview's .env does not set"}; the server would choose this value: write it out, or set it in --preview-env`,
      );
      return undefined;
    }
  }
  return interpolate(s, c.vars);
}

/** What the pipeline keeps in a preview's folder: a container that could write one could act as the deploy user. */
const BOOKKEEPING = /^(\.releases|\.env|docker-compose\.yml|\.vps-preview)(\/|$)/;
/** Shipped repository files (core/release/release-files.ts): the one part of `.releases` a preview may bind. */
const SHIPPED = /^\.releases\/files\/[^/]+\/./;

/**
 * A host path: allowed only relative and inside the preview's folder (normalised), never the folder itself or what
 * the pipeline keeps there (but a shipped file, and the preview's own `.env` read-only). `mount`: a bind, writable
 * or not.
 */
function insideFolder(c: Ctx, path: string, where: string, mount?: { writable: boolean }): void {
  if (/^[/~]/.test(path) || /^[a-zA-Z]:[\\/]/.test(path)) {
    c.problems.push(
      `${where}: the host path \`${path}\` is outside the preview's folder (read-only or not, a preview reads nothing of the VPS's); use a named volume, or a file of the repository (shipped with the release)`,
    );
    return;
  }
  const inside = normalize(path.split("/"));
  if (inside === undefined)
    return void c.problems.push(
      `${where}: \`${path}\` leaves the preview's folder (previews live beside production's); use a path inside it, or a named volume`,
    );
  const ownEnvRead = inside === ".env" && !mount?.writable;
  if (mount && (inside === "." || (BOOKKEEPING.test(inside) && !SHIPPED.test(inside) && !ownEnvRead)))
    return void c.problems.push(
      `${where}: \`${path}\` is ${inside === "." ? "the preview's folder itself" : "what the pipeline keeps in the preview's folder"}: a container that can reach it can change the next deploy; bind a folder of its own (\`./data\`), or a file of the repository`,
    );
  if (!c.hostPaths.has(inside)) c.hostPaths.set(inside, where);
  if (mount?.writable && !c.writable.has(inside)) c.writable.set(inside, where);
}

/**
 * No host path lies inside a bind a container can write: that container could swap a folder on the way for a
 * symlink to anywhere, before the path is mounted or read (the server checks the preview's running containers too).
 */
function nestedInWritable(c: Ctx): void {
  for (const [path, where] of c.hostPaths)
    for (const [outer, at] of c.writable)
      if (path.startsWith(`${outer}/`))
        c.problems.push(
          `${where}: \`${path}\` lies inside \`${outer}\`, which ${at} lets a container write (it could make it lead anywhere on the VPS); bind \`${outer}\` read-only, or keep \`${path}\` out of it`,
        );
}

/** Short syntax `src:dst[:mode]`: read-only when its mode says `ro`. */
const readOnlyShort = (entry: string, end: number) => {
  const rest = entry.slice(end + 1);
  const mode = rest.includes(":") ? rest.slice(rest.lastIndexOf(":") + 1) : "";
  return mode.split(",").includes("ro");
};

function volumeEntry(c: Ctx, entry: unknown, where: string): void {
  if (typeof entry === "string") {
    // compose substitutes the whole entry, then reads `source:target:mode` from it
    const raw = resolved(c, entry, where);
    if (raw === undefined) return;
    const end = sourceEnd(raw);
    if (end === raw.length) return; // an anonymous volume: `/data`
    const source = raw.slice(0, end);
    if (source === "") return void c.problems.push(`${where}: \`${raw}\` has an empty source`);
    if (/^[./~]/.test(source) || /^[a-zA-Z]:[\\/]/.test(source))
      insideFolder(c, source, where, { writable: !readOnlyShort(raw, end) });
    else if (!c.volumes.has(source))
      c.problems.push(
        `${where}: \`${source}\` is no volume of the file; declare it under \`volumes:\` (a preview gets its own)`,
      );
    return;
  }
  if (!isObject(entry)) return void c.problems.push(`${where}: must be a string or a map`);
  const type = resolved(c, entry.type ?? "volume", `${where}.type`);
  if (type === undefined) return;
  if (type === "tmpfs") return;
  if (type === "bind") {
    const source = resolved(c, entry.source ?? "", `${where}.source`);
    const readOnly =
      entry.read_only === true || /^(true|1)$/i.test(resolved(c, entry.read_only ?? "", `${where}.read_only`) ?? "");
    if (source !== undefined) insideFolder(c, source, `${where}.source`, { writable: !readOnly });
    return;
  }
  if (type === "volume") {
    if (entry.source === undefined) return;
    const source = resolved(c, entry.source, `${where}.source`);
    if (source !== undefined && !c.volumes.has(source))
      c.problems.push(`${where}.source: \`${source}\` is no volume of the file; declare it under \`volumes:\``);
    return;
  }
  c.problems.push(
    `${where}.type: \`${type}\` mounts are not allowed in a preview (volume, bind inside its folder, tmpfs are)`,
  );
}

/** A file path (env_file, label_file, configs/secrets `file:`): inside the folder. */
function filePaths(c: Ctx, v: unknown, where: string): void {
  const list = Array.isArray(v) ? v : [v];
  list.forEach((e, i) => {
    const at = Array.isArray(v) ? `${where}[${i}]` : where;
    const p = isObject(e) ? e.path : e;
    if (p === undefined) return;
    const path = resolved(c, p, at);
    if (path !== undefined) insideFolder(c, path, at);
  });
}

function ownService(c: Ctx, raw: unknown, where: string, what: string): void {
  const ref = resolved(c, raw, where);
  if (ref === undefined) return;
  const name = ref.replace(/^service:/, "").split(":")[0]!;
  if (ref.startsWith("container:") || !c.services.has(name))
    c.problems.push(`${where}: \`${ref}\` is not a service of the preview; ${what}`);
}

function service(c: Ctx, name: string, svc: Record<string, unknown>): void {
  const where = `services.${name}`;
  for (const [key, value] of Object.entries(svc)) {
    const at = `${where}.${key}`;
    if (key.startsWith("x-") || ORDINARY.has(key)) continue;
    if (HOST_KEYS[key]) {
      c.problems.push(
        `${at}: ${HOST_KEYS[key]}; a preview runs any pull request's code beside production: remove it for previews`,
      );
      continue;
    }
    if (!JUDGED.has(key)) {
      c.problems.push(
        `${at}: not on the preview's allow-list (docs/previews.md); remove it, or keep previews off this stack`,
      );
      continue;
    }
    switch (key) {
      case "volumes":
        (Array.isArray(value) ? value : []).forEach((v, i) => volumeEntry(c, v, `${at}[${i}]`));
        break;
      case "env_file":
      case "label_file":
        filePaths(c, value, at);
        break;
      case "networks": {
        const names = Array.isArray(value) ? value.map(String) : isObject(value) ? Object.keys(value) : [];
        for (const n of names)
          if (n !== "default" && !c.networks.has(n))
            c.problems.push(`${at}.${n}: no network of the file; a preview joins only its own networks`);
        break;
      }
      case "network_mode": {
        const mode = resolved(c, value, at);
        if (mode === undefined || mode === "none" || mode === "bridge") break;
        if (mode.startsWith("service:")) ownService(c, mode, at, "a preview shares only its own services' networks");
        else
          c.problems.push(
            `${at}: \`${mode}\` joins ${mode === "host" ? "the VPS's own network (its ports beside production's)" : "a network that is not the preview's"}; remove it (a preview runs on its own networks)`,
          );
        break;
      }
      case "ipc": {
        const mode = resolved(c, value, at);
        if (mode === undefined || mode === "private" || mode === "shareable" || mode === "none") break;
        if (mode.startsWith("service:")) ownService(c, mode, at, "share IPC only within the preview");
        else c.problems.push(`${at}: \`${mode}\` shares an IPC namespace that is not the preview's; remove it`);
        break;
      }
      case "links":
        (Array.isArray(value) ? value : []).forEach((l, i) =>
          ownService(c, l, `${at}[${i}]`, "link only the preview's services"),
        );
        break;
      case "volumes_from":
        (Array.isArray(value) ? value : []).forEach((v, i) =>
          ownService(c, v, `${at}[${i}]`, "take volumes only from the preview's services"),
        );
        break;
      case "security_opt":
        (Array.isArray(value) ? value : [value]).forEach((raw, i) => {
          const o = resolved(c, raw, `${at}[${i}]`);
          if (o !== undefined && !/^no-new-privileges([:=]true)?$/.test(o))
            c.problems.push(
              `${at}[${i}]: \`${o}\` loosens the container's confinement; only \`no-new-privileges\` is allowed`,
            );
        });
        break;
      case "logging": {
        const driver =
          isObject(value) && value.driver !== undefined ? resolved(c, value.driver, `${at}.driver`) : undefined;
        if (driver !== undefined && !["json-file", "local", "none"].includes(driver))
          c.problems.push(
            `${at}.driver: \`${driver}\` sends the preview's logs off its containers; use json-file, local or none`,
          );
        break;
      }
      case "deploy":
        deploy(c, value, at);
        break;
      case "configs":
      case "secrets":
        break; // their sources are judged at the top level
    }
  }
}

function deploy(c: Ctx, value: unknown, at: string): void {
  if (!isObject(value)) return;
  const allowed = new Set([
    "replicas",
    "resources",
    "restart_policy",
    "update_config",
    "rollback_config",
    "labels",
    "mode",
    "placement",
    "endpoint_mode",
  ]);
  for (const k of Object.keys(value))
    if (!allowed.has(k) && !k.startsWith("x-")) c.problems.push(`${at}.${k}: not on the preview's allow-list`);
  const reservations = isObject(value.resources) ? value.resources.reservations : undefined;
  if (isObject(reservations) && reservations.devices !== undefined)
    c.problems.push(`${at}.resources.reservations.devices: hands the container host devices; remove it for previews`);
}

/**
 * Every way the release asks more of the VPS than a preview may (empty: it may run), and the host paths it let
 * through (relative to the preview's folder): the server checks these resolve inside the folder, through no symlink
 * and no bind a running container can write, before anything starts (remote/preview/confine… in deploy).
 */
export function sandbox(root: unknown, vars: ReadonlyMap<string, string>): { problems: string[]; hostPaths: string[] } {
  const r = isObject(root) ? root : {};
  const problems: string[] = [];
  const section = (k: string) => (isObject(r[k]) ? r[k] : {});
  const c: Ctx = {
    vars,
    problems,
    hostPaths: new Map(),
    writable: new Map(),
    volumes: new Set(Object.keys(section("volumes"))),
    networks: new Set(Object.keys(section("networks"))),
    services: new Set(Object.keys(section("services"))),
  };
  for (const [name, def] of Object.entries(section("volumes"))) {
    if (!isObject(def)) continue;
    if (def.driver !== undefined && def.driver !== "local")
      problems.push(
        `volumes.${name}.driver: \`${String(def.driver)}\` is not allowed in a preview; drop it (a local volume)`,
      );
    if (def.driver_opts !== undefined)
      problems.push(
        `volumes.${name}.driver_opts: options of a volume can bind any host path (\`o: bind, device: /…\`); drop them for previews`,
      );
  }
  for (const [name, def] of Object.entries(section("networks"))) {
    if (!isObject(def)) continue;
    if (def.driver !== undefined && def.driver !== "bridge")
      problems.push(
        `networks.${name}.driver: \`${String(def.driver)}\` is not allowed in a preview; its networks are bridges`,
      );
    if (def.driver_opts !== undefined)
      problems.push(`networks.${name}.driver_opts: not allowed in a preview (a bridge's options name host interfaces)`);
  }
  for (const kind of ["configs", "secrets"])
    for (const [name, def] of Object.entries(section(kind)))
      if (isObject(def) && def.file !== undefined) filePaths(c, def.file, `${kind}.${name}.file`);
  for (const [name, svc] of Object.entries(section("services"))) if (isObject(svc)) service(c, name, svc);
  nestedInWritable(c);
  return { problems, hostPaths: [...c.hostPaths.keys()].sort() };
}
