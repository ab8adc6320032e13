/**
 * Runs Dagger's own introspector on .dagger/src (offline; see docs/architecture.md) and
 * returns the module's API as the engine would register it.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { shapeApi, type ApiFunction, type ApiObjectDef, type ApiShape } from "../../.dagger/src/core/ci/workflow.js";

export const sdkDir = join(process.cwd(), "node_modules/@dagger.io/dagger/dist/src");

export interface Arg {
  name: string;
  description: string;
  type: { kind: string; name?: string };
  defaultPath?: string;
  defaultValue?: unknown;
  isOptional: boolean;
}
export interface Method {
  name: string;
  description: string;
  arguments: Record<string, Arg>;
  returnType?: { kind: string; name?: string };
}
export interface ObjectDef {
  description: string;
  constructor?: Method;
  methods: Record<string, Method>;
  properties: Record<string, { name: string; description: string }>;
}
export interface Registered {
  objects: Record<string, ObjectDef>;
}

/** A copy of the SDK's generated client: the introspector wants a file named `*client.gen.ts`. */
export function clientFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), "introspect-")), "client.gen.ts");
  copyFileSync(join(sdkDir, "api/client.gen.d.ts"), file);
  return file;
}

export function introspect(client = clientFile()): Registered {
  const out = execFileSync(
    "node",
    [join(sdkDir, "module/entrypoint/introspection_entrypoint.js"), "vps-pipeline", ".dagger/src", client],
    {
      env: { ...process.env, DRY_RUN: "1" },
      encoding: "utf8",
    },
  );
  return JSON.parse(out) as Registered;
}

function described(m: Method): ApiFunction & { name: string } {
  const args = Object.values(m.arguments);
  return {
    name: m.name,
    args: args.map((a) => a.name),
    required: args.filter((a) => !a.isOptional && a.defaultValue === undefined && !a.defaultPath).map((a) => a.name),
    ...(m.returnType?.kind === "OBJECT_KIND" && m.returnType.name ? { returns: m.returnType.name } : {}),
  };
}

/**
 * The registered API as the module's own check reads it from the engine, through the same shaping
 * (core/ci/workflow.ts).
 */
export function apiObjects(api: Registered): ApiObjectDef[] {
  return Object.entries(api.objects).map(([name, o]) => ({
    name,
    functions: Object.values(o.methods).map(described),
    ...(Object.hasOwn(o, "constructor") && o.constructor ? { ctor: described(o.constructor) } : {}),
  }));
}

/** The registered API in the shape core/ci/workflow.ts checks `dagger call` lines against. */
export function apiShape(api: Registered, rename: (name: string) => string = (n) => n): ApiShape {
  return shapeApi(
    apiObjects(api).map((d) => ({
      ...d,
      name: rename(d.name),
      functions: d.functions.map((f) => ({ ...f, ...(f.returns ? { returns: rename(f.returns) } : {}) })),
    })),
    "VpsPipeline",
  );
}
