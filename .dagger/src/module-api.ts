/**
 * Reading the module's own API from the engine, for the `dagger check` of the
 * workflows: the objects whatever the engine calls them, in core/ci/workflow.ts's shape.
 */
import type { Client, Directory, FunctionArg, TypeDef } from "@dagger.io/dagger";
import {
  OBJECT_KIND,
  checkCall,
  daggerCalls,
  isModuleObject,
  shapeApi,
  type ApiFunction,
  type ApiObjectDef,
  type ApiShape,
} from "./core/ci/workflow.js";
import { pullRequestProblems } from "./core/ci/pull-request-safety.js";

/** The module's main object, and its other objects as the introspector names them. */
const MAIN_OBJECT = "VpsPipeline";
const OTHER_OBJECTS = ["Vps"];

/** The module's API as the engine serves it, in the shape core/ci/workflow.ts checks calls against. */
async function apiShape(dag: Client): Promise<ApiShape> {
  const defs: ApiObjectDef[] = [];
  const given = (v: unknown) => v !== null && v !== undefined && v !== "";
  const described = async (args: FunctionArg[]): Promise<ApiFunction> => {
    const out: ApiFunction = { args: [], required: [] };
    for (const a of args) {
      const argName = await a.name();
      out.args.push(argName);
      const optional = (await a.typeDef().optional()) || given(await a.defaultValue()) || given(await a.defaultPath());
      if (!optional) out.required.push(argName);
    }
    return out;
  };
  // The kind first: only an object has a name to read (the engine answers null for the others).
  const objectName = async (t: TypeDef): Promise<string | null> =>
    (await t.kind()) === OBJECT_KIND ? await t.asObject().name() : null;
  for (const def of await dag.currentTypeDefs()) {
    const kind = await def.kind();
    const name = kind === OBJECT_KIND ? await def.asObject().name() : null;
    // Only this module's objects: the main one and those the engine names with its prefix.
    if (!isModuleObject({ kind, name }, MAIN_OBJECT, OTHER_OBJECTS) || name === null) continue;
    const o = def.asObject();
    const functions: ApiObjectDef["functions"] = [];
    for (const f of await o.functions()) {
      const returns = await objectName(f.returnType());
      functions.push({ name: await f.name(), ...(await described(await f.args())), ...(returns ? { returns } : {}) });
    }
    const constructor = name === MAIN_OBJECT ? await described(await (await o.constructor_()).args()) : undefined;
    defs.push({ name, functions, ...(constructor ? { ctor: { args: constructor.args, required: [] } } : {}) });
  }
  return shapeApi(defs, MAIN_OBJECT);
}

/** Problems of the `dagger call` lines in .github/workflows, read from the source. */
export async function workflowProblems(source: Directory, dag: Client): Promise<string[]> {
  const dir = source.directory(".github/workflows");
  const api = await apiShape(dag);
  const problems: string[] = [];
  for (const file of await dir.entries()) {
    if (!/\.ya?ml$/.test(file)) continue;
    const text = await dir.file(file).contents();
    for (const call of daggerCalls(file, text)) problems.push(...checkCall(call, api));
    problems.push(...pullRequestProblems(file, text));
  }
  return problems;
}
