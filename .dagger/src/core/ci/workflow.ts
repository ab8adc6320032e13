/**
 * The `dagger call` lines of a GitHub workflow, checked against the module's
 * API: every function in the chain exists on the object the previous one
 * returns, every flag is an argument of its function, every required argument
 * is given. Used by the `dagger check` of the module and by the test suite.
 */
import { parse } from "yaml";

/** Flags of `dagger call` itself (and its global ones): a module argument must never be named like one. */
export const DAGGER_CALL_FLAGS = [
  "json",
  "output",
  "help",
  "mod",
  "no-mod",
  "progress",
  "debug",
  "silent",
  "quiet",
  "verbose",
  "web",
  "interactive",
  "interactive-command",
  "command",
  "lock",
  "model",
  "allow-llm",
  "eager-runtime",
  "no-exit",
  "auto-apply",
  "x-release",
] as const;

export interface ApiFunction {
  args: string[];
  required: string[];
  /** Name of the module object it returns, when it returns one (chaining goes on there). */
  returns?: string | undefined;
}

export interface ApiShape {
  main: string;
  /** Arguments of the main object's constructor (flags before the first function). */
  constructor: ApiFunction;
  objects: Record<string, Record<string, ApiFunction>>;
}

/** One object of the module as an API reader sees it: the engine's names or the introspector's. */
export interface ApiObjectDef {
  name: string;
  functions: (ApiFunction & { name: string })[];
  /** The main object's constructor (named so that no object's own `constructor` is ever taken for it). */
  ctor?: ApiFunction | undefined;
}

/** A type definition as the engine lists it: its kind, and a name only where the kind has one. */
export interface RawTypeDef {
  kind: string;
  name?: string | null | undefined;
}

/** The kind of the engine's object type definitions (`TypeDefKind.ObjectKind`). */
export const OBJECT_KIND = "OBJECT_KIND";

/**
 * Whether a type definition is one of this module's objects: an object (enums, inputs, scalars and
 * interfaces have no object name, and the engine answers null for it rather than failing), named
 * as the main object, with its prefix, or as one of the others.
 */
export function isModuleObject(def: RawTypeDef, main: string, others: readonly string[]): boolean {
  if (def.kind !== OBJECT_KIND || typeof def.name !== "string") return false;
  return def.name.startsWith(main) || others.includes(def.name);
}

/**
 * The engine names a module's other objects with the module's prefix
 * (`VpsPipelineVps`), the offline introspector without (`Vps`): both mean `Vps`.
 */
export function localObjectName(name: string, main: string): string {
  return name !== main && name.startsWith(main) ? name.slice(main.length) : name;
}

/** The API shape from the module's objects, whichever reader named them; objects of other modules are left out. */
export function shapeApi(defs: readonly ApiObjectDef[], main: string): ApiShape {
  const local = new Set(defs.map((d) => localObjectName(d.name, main)));
  const objects: ApiShape["objects"] = {};
  let constructor: ApiFunction = { args: [], required: [] };
  for (const d of defs) {
    const name = localObjectName(d.name, main);
    objects[name] = Object.fromEntries(
      d.functions.map(({ name: fn, returns, ...f }) => {
        const r = returns === undefined ? undefined : localObjectName(returns, main);
        // another object (init's Directory): named as returned, so a check stops at Dagger's own API
        return [fn, { ...f, ...(r !== undefined ? { returns: local.has(r) ? r : `core:${r}` } : {}) }];
      }),
    );
    if (name === main && d.ctor) constructor = d.ctor;
  }
  return { main, constructor, objects };
}

export interface WorkflowCall {
  file: string;
  line: string;
  /** The step's `module` input (the action runs `dagger call -m <module> …`); tests and the README give none. */
  module?: string;
}

interface Step {
  uses?: string;
  with?: Record<string, unknown>;
}
interface Workflow {
  jobs?: Record<string, { steps?: Step[] }>;
}

/** The `args` of every dagger-for-github step (verb `call`). */
export function daggerCalls(file: string, yamlText: string): WorkflowCall[] {
  const wf = parse(yamlText) as Workflow;
  return Object.values(wf.jobs ?? {}).flatMap((j) =>
    (j.steps ?? [])
      .filter((s) => s.uses?.startsWith("dagger/dagger-for-github@"))
      .map((s) => ({ file, line: String(s.with?.args ?? s.with?.call ?? ""), module: String(s.with?.module ?? "") })),
  );
}

/** Split a command line the way bash would for our purposes: whitespace, with quoted parts kept whole. */
export function words(line: string): string[] {
  return [...line.matchAll(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g)].map((m) => m[0]);
}

/** `--registry-token` → `registryToken`: how the CLI names an argument (and `preview-down`, a function). */
export function flagToArg(flag: string): string {
  return flag.replace(/^--/, "").replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The functions a call line chains, in order (`vps`, `ship`). */
export function chainOf(line: string): string[] {
  return words(line).filter((w) => !w.startsWith("-"));
}

/** A module loaded from another repository (`github.com/owner/repo@v1.2.3`), not from this checkout (`.`, `./x`). */
export function isRemoteModule(module: string): boolean {
  return module !== "" && module !== "." && !module.startsWith("./") && !module.startsWith("../");
}

/**
 * What is wrong with a step's `module:`: none (Dagger 1.0 loads no module implicitly), or a remote one not pinned
 * to a release (`@main` moves under the workflow; a semver tag or a commit does not).
 */
export function moduleRefProblem(module: string): string | undefined {
  if (module === "")
    return "the step has no `module:`; Dagger 1.0 loads no module implicitly (give `module: .` or `module: github.com/<owner>/vps-pipeline@vX.Y.Z`)";
  if (!isRemoteModule(module)) return undefined;
  const at = module.lastIndexOf("@");
  const version = at > 0 ? module.slice(at + 1) : "";
  if (/^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version) || /^[0-9a-f]{40}$/.test(version)) return undefined;
  return `\`module: ${module}\` is not pinned: name a release (\`@vX.Y.Z\`) or a commit (\`@<40 hex>\`), never a branch, so a push to the module cannot change what deploys`;
}

/** Every way `line` does not fit `api`; empty when it does. */
export function checkCall(call: WorkflowCall, api: ApiShape): string[] {
  const problems: string[] = [];
  const where = `${call.file}: \`dagger call ${call.line.slice(0, 60)}…\``;
  if (call.module !== undefined) {
    const why = moduleRefProblem(call.module);
    if (why) problems.push(`${where}: ${why}`);
    // loaded from elsewhere, the module's default source is its own repository, never the caller's
    if (why === undefined && isRemoteModule(call.module) && !words(call.line).some((w) => /^--source=/.test(w)))
      problems.push(
        `${where}: a module loaded by version reads --source=. (your checkout), else it reads its own repository`,
      );
  }
  let object = api.main;
  let fn: { name: string; def: ApiFunction } = { name: "(constructor)", def: api.constructor };
  let given: string[] = [];
  const close = () => {
    for (const r of fn.def.required)
      if (!given.includes(r))
        problems.push(`${where}: ${fn.name} needs --${r.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  };
  for (const w of words(call.line)) {
    if (w.startsWith("--")) {
      const name = w.split("=")[0]!.slice(2);
      if ((DAGGER_CALL_FLAGS as readonly string[]).includes(name)) continue;
      const arg = flagToArg(name);
      if (!fn.def.args.includes(arg)) problems.push(`${where}: ${fn.name} has no argument --${name}`);
      given.push(arg);
      continue;
    }
    close();
    // a core object (init's Directory, then `export`): the rest of the chain is Dagger's own API
    if (object.startsWith("core:")) return problems;
    // the CLI names functions in kebab case as it does arguments: preview-down → previewDown
    const def = api.objects[object]?.[flagToArg(w)];
    if (!def) {
      problems.push(`${where}: ${object} has no function \`${w}\``);
      return problems;
    }
    fn = { name: w, def };
    given = [];
    object = def.returns ?? "";
  }
  close();
  return problems;
}
