/**
 * Runs Dagger's own introspector on .dagger/src (offline, as DESIGN.md shows) and
 * returns the module's API as the engine would register it.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const sdkDir = join(process.cwd(), "node_modules/@dagger.io/dagger/dist/src");

export interface Arg { name: string; description: string; type: { kind: string; name?: string }; defaultPath?: string; defaultValue?: unknown; isOptional: boolean }
export interface Method { name: string; description: string; arguments: Record<string, Arg> }
export interface Registered { objects: Record<string, { description: string; methods: Record<string, Method> }> }

/** A copy of the SDK's generated client: the introspector wants a file named `*client.gen.ts`. */
export function clientFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), "introspect-")), "client.gen.ts");
  copyFileSync(join(sdkDir, "api/client.gen.d.ts"), file);
  return file;
}

export function introspect(client = clientFile()): Registered {
  const out = execFileSync("node", [join(sdkDir, "module/entrypoint/introspection_entrypoint.js"), "vps-pipeline", ".dagger/src", client], {
    env: { ...process.env, DRY_RUN: "1" },
    encoding: "utf8",
  });
  return JSON.parse(out) as Registered;
}

/** `--registry-token` → `registryToken`: how the CLI names an argument. */
export function flagToArg(flag: string): string {
  return flag.replace(/^--/, "").replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
