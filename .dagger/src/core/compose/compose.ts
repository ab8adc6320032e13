/**
 * The production compose file: which services we build, and the release file the
 * VPS receives (build sections gone, our images pinned by digest, the rest untouched).
 */
import {
  Document,
  isMap,
  isScalar,
  parseDocument,
  visit,
  type DocumentOptions,
  type ParseOptions,
  type SchemaOptions,
  type Tags,
} from "yaml";
import { envValues } from "./env-file.js";
import { dirname, normalize } from "../release/paths.js";
import { PipelineError } from "../errors.js";
import { interpolate } from "./interpolate.js";
import { sourceEnd } from "./short-volume.js";
import { PUBLISHED_LABEL, edgePublished } from "../edge/edge.js";
import { dataProblems } from "../data/data.js";
import {
  EXTENSION_KEY,
  JOB_PROFILE,
  parseServiceExtension,
  type DataSpec,
  type HttpSpec,
  type JobSpec,
} from "./extension.js";
import { invalidImageReference, isDigest, parseImageReference, pinned, repositoryOf } from "../registry/images.js";

/** What compose itself accepts as a service name. */
const SERVICE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface BuildTarget {
  service: string;
  /** Other services built from the same image and build: built once with this one, pinned to its digest. */
  also?: string[];
  /** Build context, relative to the source root, `/`-separated, no `..`. */
  context: string;
  /** Dockerfile path relative to the context. */
  dockerfile: string;
  target?: string;
  args: Record<string, string>;
  /** `host/owner/repo/service`, lowercase, no tag. */
  repository: string;
  /** The name as the user wrote it (compose `image:` or prefix + service), before lowercasing. */
  writtenName: string;
}

export interface ComposeStack {
  /** Path of the compose file inside the source root. */
  file: string;
  doc: Document;
  services: string[];
  builds: BuildTarget[];
  /** Release-phase jobs (`x-vps-pipeline: { job: … }`), in file order. */
  jobs: JobSpec[];
  /** Services behind the edge (`x-vps-pipeline: { http: … }`), with their `ports:` as `[ip:]published:target`. */
  http: (HttpSpec & { published: string[] })[];
  /** Services that own data (`x-vps-pipeline: { data: … }`). */
  data: DataSpec[];
}

function buildArgs(
  node: unknown,
  where: string,
  problems: string[],
  value: (v: string, at: string) => string | undefined,
): Record<string, string> {
  const args: Record<string, string> = {};
  if (node === undefined || node === null) return args;
  // a bare `NAME` (list) or `NAME:` (map) takes the builder's environment, which has none here: compose then
  // leaves the argument out and the Dockerfile's default applies (`--build-args=NAME=…` gives it)
  const add = (k: string, v: string | undefined) => {
    if (v !== undefined) args[k] = v;
  };
  if (Array.isArray(node)) {
    for (const item of node) {
      const s = String(item);
      const eq = s.indexOf("=");
      if (eq === 0) problems.push(`${where}.args: \`${s}\` has no name; write \`NAME=value\``);
      else if (eq > 0) add(s.slice(0, eq), value(s.slice(eq + 1), `${where}.args.${s.slice(0, eq)}`));
    }
  } else if (typeof node === "object") {
    for (const [k, v] of Object.entries(node as Record<string, unknown>))
      if (v !== null) add(k, value(String(v), `${where}.args.${k}`));
  } else problems.push(`${where}.args: must be a map or a list of NAME=value`);
  return args;
}

/**
 * Compose (go-yaml) accepts files with hundreds of aliases; the yaml package's
 * default (100) calls that an attack. This still stops a real blow-up.
 */
const ALIAS_LIMIT = 10_000;

/**
 * YAML as compose reads it: merge keys (`<<: *anchor`) applied, anchors and
 * aliases resolved into plain nodes, so that what a service gets from an
 * anchor (its `image`, `build`, `ports`, `x-vps-pipeline`) is its own, and the
 * rendered release can be edited key by key. A file without aliases keeps its
 * comments and layout.
 */
export function composeDocument(text: string, file: string): Document {
  const doc = parseDocument(text, { ...COMPOSE_YAML, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new PipelineError(
      "COMPOSE_INVALID",
      `${file} is not valid YAML: ${doc.errors[0]?.message ?? ""}`,
      "fix the YAML syntax at the line shown; `docker compose -f <file> config` shows the same",
    );
  }
  let aliased = false;
  visit(doc, {
    Alias: () => {
      aliased = true;
      return visit.BREAK;
    },
  });
  if (!aliased) return doc;
  try {
    // the same object met twice is written out twice, never turned back into an alias
    return new Document(doc.toJS({ maxAliasCount: ALIAS_LIMIT }), { aliasDuplicateObjects: false });
  } catch (e) {
    throw new PipelineError(
      "COMPOSE_INVALID",
      `${file}: its anchors expand to more than ${ALIAS_LIMIT} nodes`,
      "use fewer aliases of large anchors; `docker compose config` prints the file with every alias resolved",
      { cause: e },
    );
  }
}

/**
 * `0440` is octal to compose (its YAML reader keeps YAML 1.1's leading-zero octal), decimal 440 to YAML 1.2:
 * read as compose does (a file mode `0440` is 288) and written back as written, so a release never turns
 * `mode: 0440` into `mode: 440` (octal 670 to compose).
 */
const leadingZeroOctal = {
  identify: (v: unknown) => typeof v === "number",
  default: true,
  tag: "tag:yaml.org,2002:int",
  format: "OCT-1.1",
  test: /^0[0-7]+$/,
  resolve: (s: string) => parseInt(s, 8),
  stringify: ({ value }: { value: unknown }) => `0${Number(value).toString(8)}`,
};

/** How every compose text is parsed: merge keys applied, octal as compose reads it. */
export const COMPOSE_YAML = {
  merge: true,
  customTags: (tags: Tags) => [leadingZeroOctal, ...tags],
} satisfies ParseOptions & DocumentOptions & SchemaOptions;

/** The plain data of a compose text (a rendered release, a stack file), merge keys applied. */
export function composeData(text: string): unknown {
  return parseDocument(text, COMPOSE_YAML).toJS({ maxAliasCount: ALIAS_LIMIT });
}

/**
 * Parse and check the production compose file. `imagePrefix` (`ghcr.io/owner/repo`)
 * names built services that have no `image:`. Every problem is reported at once.
 * `vars` are the build's variables (`--build-args`): a built service's `image:` and `build:` are substituted with
 * them; `building` makes a required one (`${NPM_TOKEN:?}`) without a value an error, as it is to compose's build
 * (a deploy of published images builds nothing: there it is not).
 */
export function parseComposeStack(
  text: string,
  file: string,
  imagePrefix?: string,
  vars: ReadonlyMap<string, string> = new Map(),
  building = false,
): ComposeStack {
  const doc = composeDocument(text, file);
  const root: unknown = doc.toJS();
  const services = (root as { services?: unknown } | null)?.services;
  if (!services || typeof services !== "object" || Array.isArray(services) || Object.keys(services).length === 0) {
    throw new PipelineError(
      "COMPOSE_INVALID",
      `${file} has no \`services:\` map`,
      "a compose file lists its containers under a top-level `services:` key",
    );
  }
  const problems: string[] = [];
  // extends and include are resolved before a file is read here (resolve.ts, through the module's inputs)
  if ((root as { include?: unknown }).include !== undefined)
    problems.push("include: not resolved (core/compose/resolve.ts resolves it before the file is read)");
  const builds: BuildTarget[] = [];
  const jobs: JobSpec[] = [];
  const http: (HttpSpec & { published: string[] })[] = [];
  const data: DataSpec[] = [];
  const base = dirname(file);
  const prefix = imagePrefix?.toLowerCase().replace(/\/+$/, "");
  const all = services as Record<string, unknown>;

  for (const [name, raw] of Object.entries(all)) {
    const where = `services.${name}`;
    if (!SERVICE_NAME.test(name)) {
      problems.push(
        `${where}: compose refuses this name; use letters, digits, \`_\`, \`.\`, \`-\`, starting with a letter or digit`,
      );
      continue;
    }
    const svc = (raw ?? {}) as Record<string, unknown>;
    if (svc.extends !== undefined) {
      problems.push(`${where}.extends: not resolved (core/compose/resolve.ts resolves it before the file is read)`);
      continue;
    }
    const ext = parseServiceExtension(name, svc[EXTENSION_KEY]);
    problems.push(...ext.problems);
    if (ext.job) {
      jobs.push(ext.job);
      for (const [other, rawOther] of Object.entries(all)) {
        if (other !== name && Object.keys(dependsOn(rawOther)).includes(name)) {
          problems.push(
            `services.${other}.depends_on: waits for \`${name}\`, a release-phase job, which runs before the switch and never as part of the stack; drop the dependency (the job has finished before ${other} starts), or remove \`${EXTENSION_KEY}.job\` and use \`condition: service_completed_successfully\` to let compose run it`,
          );
        }
      }
    }
    if (ext.http) {
      const ports = edgePublished(where, svc.ports, ext.http.port);
      problems.push(...ports.problems);
      if (ports.published.length === 0 && !ext.http.host && ports.problems.length === 0) {
        problems.push(
          `${where}: is behind the edge (\`${EXTENSION_KEY}.http\`) but publishes no port and has no \`host\`; add \`ports: ["<host port>:${ext.http.port}"]\` or \`host: <hostname>\``,
        );
      }
      if (svc.container_name !== undefined)
        problems.push(
          `${where}.container_name: a service behind the edge runs two containers during an upgrade; remove \`container_name\``,
        );
      if (Array.isArray(svc.profiles) && svc.profiles.length > 0)
        problems.push(
          `${where}.profiles: a service behind the edge always runs; remove \`profiles\` or \`${EXTENSION_KEY}.http\``,
        );
      if (svc.network_mode !== undefined)
        problems.push(
          `${where}.network_mode: a service behind the edge must be reachable on the edge's network; remove \`network_mode\``,
        );
      http.push({ ...ext.http, published: ports.published });
    }
    if (ext.data) {
      problems.push(
        ...dataProblems(
          where,
          svc,
          ext.data,
          ((root as { volumes?: unknown }).volumes ?? {}) as Record<string, unknown>,
        ),
      );
      if (Array.isArray(svc.profiles) && svc.profiles.length > 0)
        problems.push(`${where}.profiles: a service that owns data always runs; remove \`profiles\``);
      data.push(ext.data);
    }
    // what compose builds is what its variables make it (the build's: defaults, unless given)
    const value = (v: unknown, at: string) => {
      if (typeof v !== "string") return v;
      try {
        return interpolate(v, vars, { strict: building, where: at });
      } catch (e) {
        problems.push(e instanceof PipelineError ? e.message : String(e));
        return undefined;
      }
    };
    if (svc.build === undefined) {
      // an image that is only pulled is the server's to substitute, with the release's .env (releaseShape)
      if (typeof svc.image !== "string")
        problems.push(`${where}: has neither \`image:\` nor \`build:\`; add the image to run`);
      continue;
    }
    const image =
      typeof svc.image === "string" ? (value(svc.image, `${where}.image`) as string | undefined) : undefined;
    const written = typeof svc.build === "string" ? { context: svc.build } : (svc.build as Record<string, unknown>);
    if (!written || typeof written !== "object") {
      problems.push(`${where}.build: must be a path or a map with \`context:\``);
      continue;
    }
    const b: Record<string, unknown> = {
      ...written,
      context: value(written.context, `${where}.build.context`),
      dockerfile: value(written.dockerfile, `${where}.build.dockerfile`),
      target: value(written.target, `${where}.build.target`),
    };
    if (b.dockerfile_inline !== undefined) {
      problems.push(
        `${where}.build.dockerfile_inline: not supported; put the Dockerfile in a file and name it in \`dockerfile:\``,
      );
      continue;
    }
    const ctxRaw = typeof b.context === "string" ? b.context : ".";
    if (/^([a-z][a-z0-9+.-]*:|git@)/i.test(ctxRaw)) {
      // compose would fetch it at build time: what is shipped would not be the commit's files
      problems.push(
        `${where}.build.context: \`${ctxRaw}\` is a remote context; the pipeline builds only from the source it ships (the commit's files), so a build from a URL is refused: vendor it into the repository (a submodule checked out with the source is a folder like any other), or build it elsewhere and name its image in \`image:\``,
      );
      continue;
    }
    if (ctxRaw.startsWith("/")) {
      problems.push(
        `${where}.build.context: \`${ctxRaw}\` must be a path inside the source directory, relative to ${file}`,
      );
      continue;
    }
    const context = normalize([...base.split("/"), ...ctxRaw.split("/")]);
    if (context === undefined) {
      problems.push(
        `${where}.build.context: \`${ctxRaw}\` leaves the source directory; the pipeline only sees files under it`,
      );
      continue;
    }
    let repository: string;
    let writtenName: string;
    if (image !== undefined) {
      writtenName = image;
      const lower = image.toLowerCase();
      const why = invalidImageReference(lower);
      if (why) {
        problems.push(`${where}.image: \`${image}\` ${why}`);
        continue;
      }
      repository = repositoryOf(lower);
    } else if (prefix) {
      writtenName = `${imagePrefix!.replace(/\/+$/, "")}/${name}`;
      repository = `${prefix}/${name.toLowerCase()}`;
      const why = invalidImageReference(repository);
      if (why) {
        problems.push(`${where}: the image name \`${repository}\` ${why}; set \`image:\` for this service`);
        continue;
      }
    } else {
      problems.push(
        `${where}: has \`build:\` but no \`image:\` and no image prefix was given; add \`image: ghcr.io/<owner>/<repo>/${name}\` or pass an image prefix`,
      );
      continue;
    }
    const target: BuildTarget = {
      service: name,
      context,
      dockerfile: typeof b.dockerfile === "string" ? b.dockerfile : "Dockerfile",
      args: buildArgs(b.args, `${where}.build`, problems, (v, at) => value(v, at) as string | undefined),
      repository,
      writtenName,
    };
    if (typeof b.target === "string") target.target = b.target;
    const other = builds.find((x) => x.repository === repository);
    if (other) {
      // one image for several services (an anchor shared by web and worker): built once, every one pinned to it
      const spec = (t: BuildTarget) =>
        JSON.stringify([t.context, t.dockerfile, t.target ?? "", Object.entries(t.args).sort()]);
      if (spec(other) === spec(target)) (other.also ??= []).push(name);
      else
        problems.push(
          `${where}: builds the image \`${repository}\` as services.${other.service} does, from another build (context, dockerfile, target or args differ); give each its own \`image:\`, or the same \`build:\``,
        );
      continue;
    }
    builds.push(target);
  }
  const cycle = dependencyCycle(all);
  if (cycle)
    problems.push(
      `services.${cycle[0]}.depends_on: a dependency cycle (${cycle.join(" → ")}); compose refuses it: remove one of these dependencies`,
    );
  if (problems.length > 0) {
    throw new PipelineError(
      "COMPOSE_INVALID",
      `${file} cannot be deployed:\n  ${problems.join("\n  ")}`,
      "fix the services named above in the production compose file",
    );
  }
  return { file, doc, services: Object.keys(services), builds, jobs, http, data };
}

/** The first `depends_on` cycle (`a → b → a`), or undefined; compose refuses a file with one, whatever the profiles. */
function dependencyCycle(services: Record<string, unknown>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const walk = (name: string, path: string[]): string[] | undefined => {
    if (state.get(name) === "done") return undefined;
    if (state.get(name) === "open") return [...path.slice(path.indexOf(name)), name];
    state.set(name, "open");
    for (const dep of Object.keys(dependsOn(services[name])))
      if (dep in services) {
        const found = walk(dep, [...path, name]);
        if (found) return found;
      }
    state.set(name, "done");
    return undefined;
  };
  for (const name of Object.keys(services)) {
    const found = walk(name, []);
    if (found) return found;
  }
  return undefined;
}

/** A service's `depends_on` as a map of service → condition (the list form means `service_started`). */
function dependsOn(raw: unknown): Record<string, string> {
  const d = (raw as { depends_on?: unknown } | null)?.depends_on;
  if (Array.isArray(d)) return Object.fromEntries(d.map((x) => [String(x), "service_started"]));
  if (d && typeof d === "object") {
    return Object.fromEntries(
      Object.entries(d as Record<string, unknown>).map(([k, v]) => [
        k,
        String((v as { condition?: unknown } | null)?.condition ?? "service_started"),
      ]),
    );
  }
  return {};
}

/**
 * The compose file the VPS runs: every built service's `build:` removed and its
 * `image:` set to `repo@sha256:…`; everything else exactly as the user wrote it.
 * `digests` maps service name to manifest digest and must cover every build.
 */
export function renderRelease(
  stack: ComposeStack,
  digests: Record<string, string>,
  files: ReadonlyMap<string, string> = new Map(),
): string {
  const missing = stack.builds.filter((b) => digests[b.service] === undefined).map((b) => b.service);
  if (missing.length > 0) {
    throw new PipelineError(
      "DIGEST_MISSING",
      `no digest for built service(s): ${missing.join(", ")}`,
      "publish every built service first, or pass a tag so deploy can resolve digests",
    );
  }
  const doc = stack.doc.clone();
  // A service that runs a built service's image by name (a worker, a migration) runs the same digest.
  const byRepository = new Map(stack.builds.map((b) => [b.repository, b]));
  for (const name of stack.services) {
    const image = doc.getIn(["services", name, "image"]);
    if (
      stack.builds.some((b) => b.service === name) ||
      typeof image !== "string" ||
      invalidImageReference(image.toLowerCase())
    )
      continue;
    const shared = byRepository.get(repositoryOf(image.toLowerCase()));
    if (shared) doc.setIn(["services", name, "image"], pinned(shared.repository, digests[shared.service] as string));
  }
  for (const b of stack.builds)
    for (const service of [b.service, ...(b.also ?? [])]) {
      doc.deleteIn(["services", service, "build"]);
      doc.deleteIn(["services", service, "pull_policy"]);
      doc.setIn(["services", service, "image"], pinned(b.repository, digests[b.service] as string));
    }
  // Paths from the repository point at the release's copies (core/release/release-files.ts).
  for (const [field, to] of files) rewritePath(doc, field, to);
  // Jobs run before the switch (`compose run`); their own profile keeps `up` from starting them again.
  for (const j of stack.jobs)
    doc.setIn(["services", j.service, "profiles"], doc.createNode([JOB_PROFILE], { flow: true }));
  // Behind the edge: the edge holds the host ports (two copies cannot), the label says which, for compose to
  // interpolate.
  for (const h of stack.http) {
    doc.deleteIn(["services", h.service, "ports"]);
    setLabel(doc, h.service, PUBLISHED_LABEL, h.published.join(","));
  }
  return doc.toString({ lineWidth: 0 });
}

/** The image prefix `dagger check` renders with when none was given (never pushed to). */
export const CHECK_IMAGE_PREFIX = "registry.invalid/check/stack";

/** What the compose check does: parse and render with stand-in digests (and a stand-in prefix when none is given). */
export function renderForCheck(text: string, file: string, imagePrefix?: string): string {
  const stack = parseComposeStack(text, file, imagePrefix ?? CHECK_IMAGE_PREFIX);
  return renderRelease(stack, Object.fromEntries(stack.builds.map((b) => [b.service, `sha256:${"0".repeat(64)}`])));
}

/** Point the path at `field` (as core/release/release-files.ts names it) at `to`, keeping the rest of the entry. */
function rewritePath(doc: Document, field: string, to: string): void {
  const m = /^(services\.([^.]+)\.(volumes|env_file)(?:\[(\d+)\])?(\.source)?|(configs|secrets)\.([^.]+)\.file)$/.exec(
    field,
  );
  if (!m)
    throw new PipelineError("INTERNAL", `no such place in a compose file: ${field}`, "this is a bug of vps-pipeline");
  if (m[6]) return void doc.setIn([m[6], m[7], "file"], to);
  const path: (string | number)[] = ["services", m[2]!, m[3]!, ...(m[4] !== undefined ? [Number(m[4])] : [])];
  const node = doc.getIn(path);
  if (m[5]) doc.setIn([...path, "source"], to);
  else if (m[3] === "volumes") {
    const text = String(isScalar(node) ? node.value : node);
    doc.setIn(path, `${to}${text.slice(sourceEnd(text))}`);
  } else if (isMap(node)) doc.setIn([...path, "path"], to);
  else doc.setIn(path, to);
}

/** `doc.setIn`, also through a key written empty (`deploy:` with nothing under it is null to YAML, not a map). */
export function setInEmpty(doc: Document, path: readonly (string | number)[], value: unknown): void {
  for (let i = 1; i < path.length; i++) {
    const node: unknown = doc.getIn(path.slice(0, i), true);
    if (node === null || (isScalar(node) && node.value === null)) doc.setIn(path.slice(0, i), doc.createNode({}));
  }
  doc.setIn(path, value);
}

/** Set one label on a service, whether its `labels:` is a map or a `KEY=value` list. */
export function setLabel(doc: Document, service: string, key: string, value: string): void {
  setLabelIn(doc, ["services", service], key, value);
}

/** Set one label on what is at `at` (a service, a volume, a network), its `labels:` a map, a list or absent. */
export function setLabelIn(doc: Document, at: readonly (string | number)[], key: string, value: string): void {
  const labels = doc.getIn([...at, "labels"]);
  if (labels && typeof labels === "object" && "items" in labels && !isMap(labels)) {
    const seq = labels as { items: unknown[] };
    seq.items = seq.items.filter((i) => !(isScalar(i) && String(i.value).startsWith(`${key}=`)));
    seq.items.push(doc.createNode(`${key}=${value}`));
  } else setInEmpty(doc, [...at, "labels", key], value);
}

/** What a release runs, read from its rendered compose file: the judge of health for deploy, rollback and verify. */
export interface ReleaseShape {
  /** service → image, for every service in the file. */
  images: Record<string, string>;
  /** Services that must be running (and healthy where they have a healthcheck). */
  long: string[];
  /** Services compose runs once for others (`condition: service_completed_successfully`): exit 0 is success. */
  once: string[];
  /** Services under a profile: judged when a container exists, not missed when none does. */
  optional: string[];
  /** Services compose does not restart (`restart` unset or "no"): one that exits 0 is done (an init container). */
  mayExit: string[];
  /** Release-phase jobs: never part of the running stack. */
  jobs: JobSpec[];
  /** Services behind the edge: rolled over one beside the other, never stopped first. */
  http: HttpSpec[];
  /** service → replicas, where the file sets them (`scale`, `deploy.replicas`). */
  replicas: Record<string, number>;
  /** Services that own data: captured before a release's jobs, restored on demand. */
  data: DataSpec[];
}

function replicas(svc: Record<string, unknown>, vars: ReadonlyMap<string, string>): number | undefined {
  const n = (v: unknown) => {
    const t = typeof v === "string" ? interpolate(v, vars).trim() : v;
    return typeof t === "number" ? t : typeof t === "string" && /^\d+$/.test(t) ? Number(t) : undefined;
  };
  return n(svc.scale) ?? n((svc.deploy as { replicas?: unknown } | undefined)?.replicas);
}

/** What a release runs; `env` (its `.env`) resolves interpolated replica counts (`replicas: "${N:-2}"`). */
export function releaseShape(releaseText: string, env = ""): ReleaseShape {
  const vars = envValues(env);
  const root = (composeData(releaseText) ?? {}) as { services?: Record<string, unknown> };
  const services = root.services && typeof root.services === "object" ? root.services : {};
  const shape: ReleaseShape = {
    images: {},
    long: [],
    once: [],
    optional: [],
    mayExit: [],
    jobs: [],
    http: [],
    replicas: {},
    data: [],
  };
  const onceTargets = new Set<string>();
  for (const raw of Object.values(services)) {
    for (const [dep, condition] of Object.entries(dependsOn(raw)))
      if (condition === "service_completed_successfully") onceTargets.add(dep);
  }
  for (const [name, raw] of Object.entries(services)) {
    const svc = (raw ?? {}) as Record<string, unknown>;
    // as compose pulls and runs it: with the release's .env (`image: postgres:${PG_VERSION:-16}`)
    shape.images[name] = typeof svc.image === "string" ? interpolate(svc.image, vars) : "";
    const { job, http, data } = parseServiceExtension(name, svc[EXTENSION_KEY]);
    if (data) shape.data.push(data);
    const n = replicas(svc, vars);
    if (n !== undefined) shape.replicas[name] = n;
    if (job) shape.jobs.push(job);
    else if (n === 0) continue;
    else if (Array.isArray(svc.profiles) && svc.profiles.length > 0) shape.optional.push(name);
    else if (onceTargets.has(name)) shape.once.push(name);
    else shape.long.push(name);
    if (
      !job &&
      !onceTargets.has(name) &&
      (svc.restart === undefined || interpolate(String(svc.restart), vars) === "no")
    )
      shape.mayExit.push(name);
    if (http && !job && !shape.optional.includes(name)) shape.http.push(http);
  }
  return shape;
}

export interface ImageToResolve {
  service: string;
  repository: string;
  /** A tag (or digest) to look up in the registry. */
  reference: string;
}

export interface ReleaseImagePlan {
  /** service → digest, for images given pinned. */
  pinned: Record<string, string>;
  /** Images given by tag: deploy resolves them to digests before anything runs. */
  toResolve: ImageToResolve[];
}

/**
 * Which image each built service deploys. `refs` are `repo@sha256:…` (as publish
 * prints them), `repo:tag`, or either prefixed with `service=`; `tag` stands for
 * every built service not named in `refs`. Every built service must get one.
 */
export function planReleaseImages(stack: ComposeStack, refs: readonly string[], tag?: string): ReleaseImagePlan {
  const pinned: Record<string, string> = {};
  const toResolve: ImageToResolve[] = [];
  const problems: string[] = [];
  const given = new Set<string>();
  for (const raw of refs) {
    const eq = raw.indexOf("=");
    const named = eq > 0 && !raw.slice(0, eq).includes("/") ? raw.slice(0, eq) : undefined;
    const ref = (named ? raw.slice(eq + 1) : raw).trim().toLowerCase();
    const parsed = parseImageReference(ref);
    const repo = `${parsed.registry}/${parsed.path}`;
    const target = named
      ? stack.builds.find((b) => b.service === named)
      : stack.builds.find((b) => b.repository === repo);
    if (!target) {
      problems.push(
        `\`${raw}\` matches no built service (built: ${stack.builds.map((b) => `${b.service} → ${b.repository}`).join(", ")})`,
      );
      continue;
    }
    if (parsed.digest !== undefined) {
      if (!isDigest(parsed.digest)) problems.push(`\`${raw}\`: \`${parsed.digest}\` is not a sha256 digest`);
      else pinned[target.service] = parsed.digest;
    } else if (parsed.tag !== undefined)
      toResolve.push({ service: target.service, repository: target.repository, reference: parsed.tag });
    else
      problems.push(
        `\`${raw}\` has neither tag nor digest; pass \`repo@sha256:…\` as publish prints it, or \`repo:tag\``,
      );
    given.add(target.service);
  }
  for (const b of stack.builds) {
    if (given.has(b.service)) continue;
    if (tag !== undefined) toResolve.push({ service: b.service, repository: b.repository, reference: tag });
    else
      problems.push(
        `no image given for built service \`${b.service}\`: pass its \`repo@sha256:…\` in images, or a tag`,
      );
  }
  if (problems.length)
    throw new PipelineError(
      "INVALID_INPUT",
      `images:\n  ${problems.join("\n  ")}`,
      "pass one `repo@sha256:…` per built service (the output of publish), or a tag such as sha-1a2b3c4 that deploy resolves to digests",
    );
  return { pinned, toResolve };
}

/** `env_file` entries of a service (string, list of strings, or list of `{path}`), as written. */
function envFiles(svc: Record<string, unknown>): string[] {
  const e = svc.env_file;
  const list = Array.isArray(e) ? e : e === undefined ? [] : [e];
  return list.map((x) => (typeof x === "string" ? x : String((x as { path?: unknown } | null)?.path ?? "")));
}

/**
 * An override file for running jobs before the switch: a job whose `env_file`
 * names the project's `.env` also reads the release's own (`relEnv`, relative
 * to the deploy folder), whose values win. Undefined when no job needs it.
 */
export function jobEnvOverride(releaseText: string, relEnv: string): string | undefined {
  const root = (composeData(releaseText) ?? {}) as { services?: Record<string, Record<string, unknown>> };
  const services: Record<string, { env_file: string[] }> = {};
  for (const job of releaseShape(releaseText).jobs) {
    const files = envFiles(root.services?.[job.service] ?? {});
    if (files.some((f) => f.replace(/^\.\//, "") === ".env")) services[job.service] = { env_file: [relEnv] };
  }
  return Object.keys(services).length ? `${JSON.stringify({ services })}\n` : undefined;
}
