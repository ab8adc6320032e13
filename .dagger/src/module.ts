/**
 * What the module layer needs beyond wiring: errors shown with their code and
 * hint, and reading the module's own API from the engine for `dagger check`.
 */
import type { Client, Directory } from "@dagger.io/dagger";
import { asPipelineError } from "./core/errors.js";
import { checkCall, daggerCalls, type ApiFunction, type ApiShape } from "./core/workflow.js";

/** Errors reach the Dagger TUI and CI logs with their code and hint; anything unexpected gets a code too. */
export async function explained<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const err = asPipelineError(e, "running the function");
    throw new Error(err.describe(), { cause: err });
  }
}

/** The module's API as the engine serves it, in the shape core/workflow.ts checks calls against. */
async function apiShape(dag: Client): Promise<ApiShape> {
  const objects: ApiShape["objects"] = {};
  let constructor: ApiFunction = { args: [], required: [] };
  for (const def of await dag.currentTypeDefs()) {
    const o = def.asObject();
    const name = await o.name().catch(() => "");
    if (name !== "VpsPipeline" && name !== "Vps") continue;
    const fns: Record<string, ApiFunction> = {};
    for (const f of await o.functions()) {
      const args = await f.args();
      const described: ApiFunction = { args: [], required: [] };
      for (const a of args) {
        const argName = await a.name();
        described.args.push(argName);
        const given = (v: unknown) => v !== null && v !== undefined && v !== "";
        const optional = (await a.typeDef().optional()) || given(await a.defaultValue()) || given(await a.defaultPath());
        if (!optional) described.required.push(argName);
      }
      const returns = await f.returnType().asObject().name().catch(() => "");
      fns[await f.name()] = { ...described, ...(returns === "Vps" || returns === "VpsPipeline" ? { returns } : {}) };
    }
    objects[name] = fns;
    if (name === "VpsPipeline") {
      const c = await o.constructor_();
      constructor = { args: await Promise.all((await c.args()).map((a) => a.name())), required: [] };
    }
  }
  return { main: "VpsPipeline", constructor, objects };
}

/** Problems of the `dagger call` lines in .github/workflows, read from the source. */
export async function workflowProblems(source: Directory, dag: Client): Promise<string[]> {
  const dir = source.directory(".github/workflows");
  const api = await apiShape(dag);
  const problems: string[] = [];
  for (const file of await dir.entries()) {
    if (!/\.ya?ml$/.test(file)) continue;
    for (const call of daggerCalls(file, await dir.file(file).contents())) problems.push(...checkCall(call, api));
  }
  return problems;
}
