/**
 * `extends`, `include`, `!reset` and `!override` resolved as compose resolves them, into the one file the
 * pipeline reads and the server runs: a service's base (in the same file or another), included files' services,
 * volumes, networks, configs and secrets, each file's relative paths rebased onto the compose file's folder (as
 * compose resolves a path against the file that wrote it). The files pulled in are read first
 * (`composeFilesWanted`), so this stays pure. A file that uses none of these is returned as written.
 */
import { Document, isAlias, isMap, isScalar, isSeq, parseDocument, type Node } from "yaml";
import { PipelineError } from "../errors.js";
import { dirname, normalize } from "../release/paths.js";
import { sourceEnd } from "./short-volume.js";
import { enforceUnicity, mergeYaml, pathKey, type Path, type Tagged } from "./merge.js";

/** The `yaml` options every compose text is parsed with (compose.ts), passed in to keep one definition. */
export type ComposeYaml = Parameters<typeof parseDocument>[1];

interface Loaded {
  file: string;
  data: Record<string, unknown>;
  tags: Tagged;
}

const refuse = (file: string, problem: string, hint: string): never => {
  throw new PipelineError("COMPOSE_INVALID", `${file}: ${problem}`, hint);
};

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/** Whether a text needs resolving at all (cheap: most files have none of these). */
export function needsResolving(text: string): boolean {
  return /\b(extends|include)\s*:|!reset|!override/.test(text);
}

/** Every `!reset` and `!override` node's path, from the document's root. */
function taggedPaths(doc: Document): Tagged {
  const overrides = new Set<string>();
  const resets = new Set<string>();
  const walk = (node: unknown, at: Path) => {
    if (!node || isAlias(node)) return;
    const tag = (node as Node).tag;
    if (tag === "!reset") resets.add(pathKey(at));
    if (tag === "!override") overrides.add(pathKey(at));
    if (isMap(node))
      for (const pair of node.items) {
        if (isScalar(pair.key) && pair.key.value !== "<<") walk(pair.value, [...at, String(pair.key.value)]);
      }
    else if (isSeq(node)) node.items.forEach((n, i) => walk(n, [...at, i]));
  };
  walk(doc.contents, []);
  return { overrides, resets };
}

/** Paths that start at the repository's root, `/`-separated; undefined when one leaves it. */
const join = (dir: string, p: string): string | undefined => normalize([...dir.split("/"), ...p.split("/")]);

/** `to`-relative spelling of the root-relative `target` (`./x`, `../a/x`). */
function relativeTo(to: string, target: string): string {
  const a = to ? to.split("/").filter((s) => s && s !== ".") : [];
  const b = target === "." ? [] : target.split("/");
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const up = a.slice(i).map(() => "..");
  const rest = b.slice(i);
  const parts = [...up, ...rest];
  if (parts.length === 0) return ".";
  return up.length ? parts.join("/") : `./${parts.join("/")}`;
}

/** A path written in a file of folder `from`, spelt for a file in folder `to`; absolute, `~`, URLs kept. */
function rebaser(file: string, from: string, to: string) {
  return (p: unknown, field: string): unknown => {
    if (typeof p !== "string" || from === to) return p;
    if (p.startsWith("/") || p.startsWith("~") || /^[a-z][a-z0-9+.-]*:/i.test(p)) return p;
    if (p.includes("$"))
      refuse(
        file,
        `${field}: \`${p}\` is a path with a variable in a file read from another folder; compose resolves it there, after substitution, and the release cannot`,
        "write the path without a variable, or move the service into the compose file's own folder",
      );
    const root = join(from, p);
    if (root === undefined)
      return refuse(
        file,
        `${field}: \`${p}\` leaves the source directory`,
        "the pipeline only ships files under the source directory",
      );
    return relativeTo(to, root);
  };
}

/** Every relative path of a service (build context, env files, binds, label files), rebased. */
function rebaseService(svc: Record<string, unknown>, where: string, re: ReturnType<typeof rebaser>): void {
  if (typeof svc.build === "string") svc.build = re(svc.build, `${where}.build`);
  else if (isObject(svc.build)) {
    const b = { ...svc.build };
    if (b.context !== undefined) b.context = re(b.context, `${where}.build.context`);
    else b.context = re(".", `${where}.build.context`);
    if (isObject(b.additional_contexts))
      b.additional_contexts = Object.fromEntries(
        Object.entries(b.additional_contexts).map(([k, v]) => [
          k,
          typeof v === "string" && v.startsWith(".") ? re(v, `${where}.build.additional_contexts.${k}`) : v,
        ]),
      );
    svc.build = b;
  }
  const files = (v: unknown, field: string): unknown =>
    Array.isArray(v)
      ? v.map((e, i) => files(e, `${field}[${i}]`))
      : isObject(v)
        ? { ...v, path: re(v.path, `${field}.path`) }
        : re(v, field);
  if (svc.env_file !== undefined) svc.env_file = files(svc.env_file, `${where}.env_file`);
  if (svc.label_file !== undefined) svc.label_file = files(svc.label_file, `${where}.label_file`);
  if (Array.isArray(svc.volumes))
    svc.volumes = svc.volumes.map((v: unknown, i) => {
      const field = `${where}.volumes[${i}]`;
      if (typeof v === "string") {
        const end = sourceEnd(v);
        // a source behind a variable may turn out relative: it is refused from another folder (rebaser)
        if (end < v.length && /^[.$]/.test(v)) return `${String(re(v.slice(0, end), field))}${v.slice(end)}`;
        return v;
      }
      if (isObject(v) && v.type === "bind" && typeof v.source === "string")
        return { ...v, source: re(v.source, `${field}.source`) };
      return v;
    });
}

function rebaseTop(data: Record<string, unknown>, re: ReturnType<typeof rebaser>): void {
  for (const kind of ["configs", "secrets"] as const) {
    const all = data[kind];
    if (!isObject(all)) continue;
    for (const [name, def] of Object.entries(all))
      if (isObject(def) && typeof def.file === "string")
        all[name] = { ...def, file: re(def.file, `${kind}.${name}.file`) };
  }
}

function deleteAt(root: unknown, at: Path): void {
  let node = root;
  for (const k of at.slice(0, -1)) {
    if (!node || typeof node !== "object") return;
    node = (node as Record<string | number, unknown>)[k];
  }
  const last = at.at(-1);
  if (last === undefined || !node || typeof node !== "object") return;
  if (Array.isArray(node) && typeof last === "number") node.splice(last, 1);
  else delete (node as Record<string | number, unknown>)[last];
}

/** The `extends:`/`include:` files a compose file pulls in, read with `read` (root-relative paths). */
export class ComposeResolver {
  private readonly loaded = new Map<string, Loaded>();

  constructor(
    /** The compose file (root-relative): every path is rebased onto its folder. */
    private readonly main: string,
    private readonly read: (file: string) => string | undefined,
    private readonly yamlOptions: ComposeYaml,
  ) {}

  private load(file: string, by: string): Loaded {
    const known = this.loaded.get(file);
    if (known) return known;
    const text = this.read(file);
    if (text === undefined)
      return refuse(
        by,
        `\`${file}\` cannot be read in the source directory`,
        "extends and include name files relative to the file that names them, inside the source directory",
      );
    const doc = parseDocument(text, { ...this.yamlOptions, prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0)
      refuse(file, `not valid YAML: ${doc.errors[0]?.message ?? ""}`, "fix the YAML syntax at the line shown");
    const data = (doc.toJS({ maxAliasCount: 10_000 }) ?? {}) as Record<string, unknown>;
    if (!isObject(data)) return refuse(file, "is not a map", "a compose file is a map with `services:`");
    const tags = taggedPaths(doc);
    // a `!reset` outside services drops its key; inside a service, after that service's merge (`service`)
    for (const k of tags.resets) {
      const at = JSON.parse(k) as Path;
      if (at[0] !== "services") deleteAt(data, at);
    }
    const re = rebaser(file, dirname(file), dirname(this.main));
    if (isObject(data.services))
      for (const [name, svc] of Object.entries(data.services))
        if (isObject(svc)) rebaseService(svc, `services.${name}`, re);
        else if (svc === null || svc === undefined) data.services[name] = {};
    rebaseTop(data, re);
    const loaded = { file, data, tags };
    this.loaded.set(file, loaded);
    return loaded;
  }

  /** One service with its `extends` chain merged in, as compose merges it. */
  private service(file: string, name: string, chain: string[]): Record<string, unknown> {
    const f = this.load(file, chain.at(-1)?.split("#")[0] ?? this.main);
    const where = `services.${name}`;
    const id = `${file}#${name}`;
    if (chain.includes(id))
      refuse(
        this.main,
        `${where}.extends: a cycle (${[...chain, id].join(" → ")})`,
        "a service cannot extend itself, directly or through others",
      );
    const services = isObject(f.data.services) ? f.data.services : {};
    const own = services[name];
    if (!isObject(own))
      return refuse(
        chain.at(-1)?.split("#")[0] ?? this.main,
        `extends names the service \`${name}\`, which ${file} does not define`,
        "name a service of that file in `extends.service`",
      );
    let merged: Record<string, unknown> = structuredClone(own);
    if (own.extends !== undefined) {
      const ext = typeof own.extends === "string" ? { service: own.extends } : own.extends;
      if (!isObject(ext) || typeof ext.service !== "string")
        refuse(file, `${where}.extends: must name a service`, "write `extends: { service: <name>, file: <path> }`");
      const e = ext as { service: string; file?: unknown };
      let baseFile = file;
      if (e.file !== undefined) {
        if (typeof e.file !== "string" || e.file.includes("$") || e.file.startsWith("/"))
          refuse(
            file,
            `${where}.extends.file: must be a path relative to ${file}, without variables`,
            "name the file relative to the compose file that extends it",
          );
        const p = join(dirname(file), e.file as string);
        if (p === undefined)
          return refuse(file, `${where}.extends.file: leaves the source directory`, "keep the file inside --source");
        baseFile = p;
      }
      const base = this.service(baseFile, e.service, [...chain, id]);
      const { extends: _drop, ...rest } = own;
      void _drop;
      // the extending service's own tags decide: its paths are `services.<name>…` in its own file
      merged = mergeYaml(structuredClone(base), rest, ["services", name], f.tags) as Record<string, unknown>;
    }
    for (const k of f.tags.resets) {
      const at = JSON.parse(k) as Path;
      if (at[0] === "services" && at[1] === name) deleteAt(merged, at.slice(2));
    }
    return enforceUnicity(merged, ["services", name]) as Record<string, unknown>;
  }

  /** A file with its extends and includes resolved (services, volumes, networks, configs, secrets). */
  private project(file: string, including: string[]): Record<string, unknown> {
    if (including.includes(file))
      refuse(
        this.main,
        `include: a cycle (${[...including, file].join(" → ")})`,
        "a file cannot include itself, directly or through others",
      );
    const f = this.load(file, including.at(-1) ?? this.main);
    const out: Record<string, unknown> = { ...f.data };
    delete out.include;
    const services: Record<string, unknown> = {};
    for (const name of Object.keys(isObject(f.data.services) ? f.data.services : {}))
      services[name] = this.service(file, name, []);
    if (f.data.services !== undefined) out.services = services;
    const includes = f.data.include === undefined ? [] : f.data.include;
    if (!Array.isArray(includes))
      refuse(file, "include: must be a list", "write `include: [path/to/compose.yaml]` or a list of `{ path: … }`");
    (includes as unknown[]).forEach((item, i) => {
      const field = `include[${i}]`;
      const spec = typeof item === "string" ? { path: item } : item;
      if (!isObject(spec))
        return refuse(file, `${field}: must be a path or a map with \`path:\``, "see compose's include");
      for (const k of ["env_file", "project_directory"])
        if (spec[k] !== undefined)
          refuse(
            file,
            `${field}.${k}: not supported (the release reads every file with the production .env, from the compose file's folder)`,
            `remove \`${k}\`; the included file's variables then come from the production .env`,
          );
      const paths = typeof spec.path === "string" ? [spec.path] : spec.path;
      if (!Array.isArray(paths) || paths.length === 0 || paths.some((p) => typeof p !== "string"))
        return refuse(file, `${field}.path: must be a path or a list of paths`, "name the file(s) to include");
      let merged: Record<string, unknown> | undefined;
      for (const p of paths as string[]) {
        if (p.includes("$") || p.startsWith("/"))
          refuse(
            file,
            `${field}.path: \`${p}\` must be relative, without variables`,
            "name the file relative to this one",
          );
        const at = join(dirname(file), p);
        if (at === undefined)
          return refuse(file, `${field}.path: \`${p}\` leaves the source directory`, "keep it inside --source");
        const one = this.project(at, [...including, file]);
        merged = merged ? (mergeYaml(merged, one, []) as Record<string, unknown>) : one;
      }
      for (const kind of ["services", "volumes", "networks", "configs", "secrets"]) {
        const theirs = merged?.[kind];
        if (!isObject(theirs)) continue;
        const mine = (isObject(out[kind]) ? out[kind] : (out[kind] = {})) as Record<string, unknown>;
        for (const [name, def] of Object.entries(theirs)) {
          if (name in mine && JSON.stringify(mine[name]) !== JSON.stringify(def))
            refuse(
              file,
              `${kind}.${name}: defined here and in the included ${String(paths[0])}, differently`,
              "compose refuses a conflicting definition: keep one",
            );
          mine[name] = def;
        }
      }
    });
    return out;
  }

  /** The whole file resolved, as plain data. */
  resolve(): Record<string, unknown> {
    return this.project(this.main, []);
  }
}

/**
 * The compose text the pipeline works from: `text` itself when it uses no extends, include or tags; otherwise
 * the file they make, every alias and merge resolved. `read` gives another repository file (or undefined).
 */
export function resolveComposeText(
  file: string,
  text: string,
  read: (file: string) => string | undefined,
  yamlOptions: ComposeYaml,
): string {
  if (!needsResolving(text)) return text;
  const r = new ComposeResolver(file, (f) => (f === file ? text : read(f)), yamlOptions);
  const data = r.resolve();
  return new Document(data, { aliasDuplicateObjects: false }).toString({ lineWidth: 0 });
}

/**
 * The repository files `text` (at `file`) pulls in that `known` lacks, so that a caller that reads files
 * asynchronously can fetch them all before resolving: ask again until it answers none.
 */
export function composeFilesWanted(
  file: string,
  known: ReadonlyMap<string, string>,
  yamlOptions: ComposeYaml,
): string[] {
  const text = known.get(file);
  if (text === undefined || !needsResolving(text)) return [];
  const missing = new Set<string>();
  const r = new ComposeResolver(
    file,
    (f) => {
      const t = known.get(f);
      if (t === undefined) missing.add(f);
      // a stand-in for the file not read yet: what it pulls in is asked for on the next round
      return t ?? "services: {}\n";
    },
    yamlOptions,
  );
  try {
    r.resolve();
  } catch (e) {
    // a stand-in lacks the services asked of it: the missing file's read comes first
    if (missing.size === 0) throw e;
  }
  return [...missing];
}
