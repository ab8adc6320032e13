/**
 * The module's API as the Dagger engine would register it, from Dagger's own
 * introspector (it ships in @dagger.io/dagger and runs offline).
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { clientFile as makeClientFile, introspect, sdkDir as sdk, type Registered } from "./introspection.js";

const FUNCTIONS = ["build", "publish", "deploy", "verify", "ship", "rollback", "status", "doctor"];
const SECRETS = ["registryToken", "sshKey", "sshKeyPassphrase", "pullToken", "envFile"];

let api: Registered;
let clientFile: string;

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

beforeAll(() => {
  clientFile = makeClientFile();
  api = introspect(clientFile);
});

describe("the module as Dagger registers it", () => {
  it("exposes the pipeline's functions on the VpsPipeline object, each documented", () => {
    const methods = api.objects.VpsPipeline!.methods;
    expect(Object.keys(methods).sort()).toEqual([...FUNCTIONS].sort());
    for (const m of Object.values(methods)) {
      expect(m.description, m.name).toMatch(/\S/);
      expect(m.description, `${m.name} has an example`).toContain(`dagger call ${m.name}`);
    }
  });

  it("documents every argument", () => {
    for (const m of Object.values(api.objects.VpsPipeline!.methods)) {
      for (const a of Object.values(m.arguments)) expect(a.description, `${m.name}(${a.name})`).toMatch(/\S/);
    }
  });

  it("types every secret argument as Secret, and no secret-looking argument as a string", () => {
    let seen = 0;
    for (const m of Object.values(api.objects.VpsPipeline!.methods)) {
      for (const a of Object.values(m.arguments)) {
        if (SECRETS.includes(a.name)) {
          seen++;
          expect(a.type, `${m.name}(${a.name})`).toEqual({ kind: "OBJECT_KIND", name: "Secret" });
        } else if (/token|password|passphrase|secret|privatekey|sshkey|envfile/i.test(a.name)) {
          throw new Error(`${m.name}(${a.name}) looks secret but is ${a.type.kind}`);
        }
      }
    }
    expect(seen).toBeGreaterThanOrEqual(10);
  });

  it("defaults `source` to the context directory wherever it is taken", () => {
    const withSource = Object.values(api.objects.VpsPipeline!.methods).filter((m) => m.arguments.source);
    expect(withSource.map((m) => m.name).sort()).toEqual(["build", "deploy", "doctor", "publish", "ship"]);
    for (const m of withSource) {
      expect(m.arguments.source).toMatchObject({ type: { kind: "OBJECT_KIND", name: "Directory" }, defaultPath: "/" });
    }
  });

  it("caches build only: every function that pushes or touches the server opts out (the JSON above omits it; the scanner has it)", async () => {
    const { scan } = (await import(pathToFileURL(join(sdk, "module/introspector/index.js")).href)) as {
      scan: (files: string[], name: string, load: boolean) => Promise<{ objects: Record<string, { methods: Record<string, { cache?: string }> }> }>;
    };
    const mod = await scan([...tsFiles(".dagger/src"), clientFile], "vps-pipeline", false);
    const methods = mod.objects.VpsPipeline!.methods;
    for (const f of ["publish", "deploy", "verify", "ship", "rollback", "status", "doctor"]) expect(methods[f]!.cache, f).toBe("never");
    expect(methods.build!.cache).toBeUndefined();
  });
});

describe("dagger.json", () => {
  it("names the module and pins the engine to the SDK version we build against", () => {
    const conf = JSON.parse(readFileSync("dagger.json", "utf8")) as { name: string; engineVersion: string; sdk: { source: string }; source: string };
    const sdkVersion = (JSON.parse(readFileSync("node_modules/@dagger.io/dagger/package.json", "utf8")) as { version: string }).version;
    expect(conf).toEqual({ name: "vps-pipeline", engineVersion: `v${sdkVersion}`, sdk: { source: "typescript" }, source: ".dagger" });
  });
});
