/**
 * The module's API as the Dagger engine would register it, from Dagger's own
 * introspector (it ships in @dagger.io/dagger and runs offline).
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { SETTINGS } from "../../.dagger/src/core/settings/settings.js";
import { DAGGER_CALL_FLAGS } from "../../.dagger/src/core/ci/workflow.js";
import {
  clientFile as makeClientFile,
  introspect,
  sdkDir as sdk,
  type Method,
  type Registered,
} from "./introspection.js";

const SECRETS = [
  "registryToken",
  "sshKey",
  "sshKeyPassphrase",
  "pullToken",
  "envFile",
  "backupPassword",
  "backupOffsiteKey",
];
const CHECKS = ["composeFileRenders", "workflowCallsExist"];

let api: Registered;
let clientFile: string;

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** Every function and the constructor, as `Object.function`. */
function everyFunction(): [string, Method][] {
  return Object.entries(api.objects).flatMap(([o, def]) => [
    // own property only: every JS object has a `constructor`
    ...(Object.hasOwn(def, "constructor") ? [[`${o}.constructor`, def.constructor!] as [string, Method]] : []),
    ...Object.values(def.methods).map((m) => [`${o}.${m.name}`, m] as [string, Method]),
  ]);
}

beforeAll(() => {
  clientFile = makeClientFile();
  api = introspect(clientFile);
});

/** How the CLI names a function: checkBackup → check-backup. */
const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

describe("the module as Dagger registers it", () => {
  it("takes shared settings once: the module's constructor, and vps(...) returning the Vps object with the server's functions", () => {
    expect(Object.keys(api.objects.VpsPipeline!.methods).sort()).toEqual([
      "build",
      "composeFileRenders",
      "doctor",
      "init",
      "publish",
      "vps",
      "workflowCallsExist",
    ]);
    expect(Object.keys(api.objects.VpsPipeline!.constructor!.arguments)).toEqual([
      "source",
      "composeFile",
      "imagePrefix",
      "registry",
      "registryUser",
      "registryToken",
      "platforms",
      "settings",
      "allowModuleRepository",
    ]);
    expect(api.objects.VpsPipeline!.methods.vps!.returnType).toEqual({ kind: "OBJECT_KIND", name: "Vps" });
    expect(Object.keys(api.objects.Vps!.methods).sort()).toEqual([
      "backup",
      "checkBackup",
      "config",
      "deploy",
      "doctor",
      "edge",
      "logs",
      "maintenance",
      "plan",
      "preview",
      "previewDown",
      "restore",
      "rollback",
      "run",
      "ship",
      "status",
      "verify",
    ]);
  });

  it("documents every function (with a `dagger call` example) and every argument and field", () => {
    for (const [where, m] of everyFunction()) {
      if (!where.endsWith(".constructor")) expect(m.description, where).toMatch(/\S/);
      if (!where.endsWith(".constructor") && !CHECKS.includes(m.name))
        expect(m.description, `${where} has an example`).toMatch(
          new RegExp(`dagger -m \\. call .*\\b${kebab(m.name)}\\b`),
        );
      for (const a of Object.values(m.arguments)) expect(a.description, `${where}(${a.name})`).toMatch(/\S/);
    }
    for (const [o, def] of Object.entries(api.objects))
      for (const p of Object.values(def.properties))
        if ((p as { isExposed?: boolean }).isExposed) expect(p.description, `${o}.${p.name}`).toMatch(/\S/);
  });

  it("lists arguments in --help, not the objects' insides: no setting (least of all a secret) is exposed as a field", () => {
    const exposed = Object.entries(api.objects).flatMap(([o, def]) =>
      Object.values(def.properties)
        .filter((p) => (p as { isExposed?: boolean }).isExposed)
        .map((p) => `${o}.${p.name}`),
    );
    expect(exposed).toEqual([]);
    // still carried from vps(...) to its functions: the state holds every one
    expect(Object.keys(api.objects.Vps!.properties)).toEqual(
      expect.arrayContaining(["source", "sshKey", "envFile", "keepReleases", "settings", "allowModuleRepository"]),
    );
  });

  it("writes argument docs that make good --help placeholders: no backquotes (the CLI takes the first backquoted word as the value's name)", () => {
    for (const [where, m] of everyFunction())
      for (const a of Object.values(m.arguments)) expect(a.description, `${where}(${a.name})`).not.toContain("`");
  });

  it("names no argument like a flag of `dagger call` itself (the engine refuses the call: `flag already exists`)", () => {
    for (const [where, m] of everyFunction())
      for (const a of Object.values(m.arguments))
        expect(DAGGER_CALL_FLAGS, `${where}(${a.name})`).not.toContain(kebab(a.name));
  });

  it("takes a list only where a comma cannot be part of an item: the CLI splits list flags at commas", () => {
    // `--cmd="psql -c 'select a, b'"` became two words while cmd was a list
    const lists: string[] = [];
    for (const [where, m] of everyFunction())
      for (const a of Object.values(m.arguments)) if (a.type.kind === "LIST_KIND") lists.push(`${where}(${a.name})`);
    const allowed = /\((buildArgs|platforms|images|probes|service)\)$/;
    expect(lists.filter((l) => !allowed.test(l))).toEqual([]);
    const run = api.objects.Vps!.methods.run!.arguments;
    expect([run.cmd!.type.kind, run.argv!.type.kind]).toEqual(["STRING_KIND", "STRING_KIND"]);
  });

  it("types every secret argument as Secret, and no secret-looking argument as a string", () => {
    let seen = 0;
    for (const [where, m] of everyFunction()) {
      for (const a of Object.values(m.arguments)) {
        if (SECRETS.includes(a.name)) {
          seen++;
          expect(a.type, `${where}(${a.name})`).toEqual({ kind: "OBJECT_KIND", name: "Secret" });
        } else if (/token|password|passphrase|secret|privatekey|sshkey|envfile/i.test(a.name)) {
          throw new Error(`${where}(${a.name}) looks secret but is ${a.type.kind}`);
        }
      }
    }
    expect(seen).toBe(SECRETS.length + 1); // the push token on the constructor, the rest on vps(...), pullToken on doctor too
  });

  it("leaves every setting without a registered default, so that a flag left out is told from one given (flag > vps-pipeline.yml > default)", () => {
    const ctor = api.objects.VpsPipeline!.constructor!.arguments;
    const vps = api.objects.VpsPipeline!.methods.vps!.arguments;
    expect(ctor.source).toMatchObject({ type: { kind: "OBJECT_KIND", name: "Directory" }, defaultPath: "/" });
    for (const def of SETTINGS) {
      const a = (def.scope === "module" ? ctor : vps)[def.name];
      expect(a, def.name).toBeDefined();
      expect([a!.defaultValue, a!.isOptional], def.name).toEqual([undefined, true]);
      // --help still says the default: the same value the settings table (and zod) apply
      if (def.default !== undefined && def.default !== "" && !Array.isArray(def.default))
        expect(a!.description, def.name).toMatch(
          new RegExp(`Default: ${String(def.default).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}\\.`),
        );
    }
    expect(vps.sshKey!.isOptional).toBe(false);
  });

  it("takes closed choices as enums, so that --help lists their values", () => {
    const vps = api.objects.VpsPipeline!.methods.vps!.arguments;
    expect(vps.orchestrator!.type).toMatchObject({ kind: "ENUM_KIND", name: "Orchestrator" });
    expect(vps.previewWhenFull!.type).toMatchObject({ kind: "ENUM_KIND", name: "PreviewWhenFull" });
    for (const [where, m] of everyFunction())
      if (m.arguments.format)
        expect(m.arguments.format.type, where).toMatchObject({ kind: "ENUM_KIND", name: "Format" });
    expect(api.objects.Vps!.methods.status!.arguments.format!.defaultValue).toBe("text");
  });

  it("caches build only: every function that pushes, reads live state or touches the server opts out (the scanner has it)", async () => {
    const { scan } = (await import(pathToFileURL(join(sdk, "module/introspector/index.js")).href)) as {
      scan: (
        files: string[],
        name: string,
        load: boolean,
      ) => Promise<{ objects: Record<string, { methods: Record<string, { cache?: string }> }> }>;
    };
    const mod = await scan([...tsFiles(".dagger/src"), clientFile], "vps-pipeline", false);
    for (const f of ["publish", "doctor"]) expect(mod.objects.VpsPipeline!.methods[f]!.cache, f).toBe("never");
    for (const f of ["deploy", "plan", "verify", "rollback", "status", "doctor", "ship"])
      expect(mod.objects.Vps!.methods[f]!.cache, `Vps.${f}`).toBe("never");
    expect(mod.objects.VpsPipeline!.methods.build!.cache).toBeUndefined();
  });
});

describe("dagger.json", () => {
  it("names the module and requires the oldest engine it is known to run on, no newer than the SDK we build against", () => {
    const conf = JSON.parse(readFileSync("dagger.json", "utf8")) as {
      name: string;
      engineVersion: string;
      sdk: { source: string };
      source: string;
    };
    const sdkVersion = (
      JSON.parse(readFileSync("node_modules/@dagger.io/dagger/package.json", "utf8")) as { version: string }
    ).version;
    expect(conf).toEqual({
      name: "vps-pipeline",
      engineVersion: "v0.21.8",
      sdk: { source: "typescript" },
      source: ".dagger",
    });
    const num = (v: string) =>
      v
        .replace(/^v/, "")
        .split(".")
        .map(Number)
        .reduce((a, n) => a * 1000 + n, 0);
    expect(num(conf.engineVersion)).toBeLessThanOrEqual(num(sdkVersion));
  });

  it("names one Dagger version everywhere: dagger.json's engine, the SDK we build against, every workflow's CLI, the README", () => {
    const engine = (JSON.parse(readFileSync("dagger.json", "utf8")) as { engineVersion: string }).engineVersion;
    const pinned = (JSON.parse(readFileSync("package.json", "utf8")) as { devDependencies: Record<string, string> })
      .devDependencies["@dagger.io/dagger"];
    const installed = (
      JSON.parse(readFileSync("node_modules/@dagger.io/dagger/package.json", "utf8")) as { version: string }
    ).version;
    const workflows = readdirSync(".github/workflows").flatMap((f) => {
      const text = readFileSync(join(".github/workflows", f), "utf8");
      // the version given to each dagger-for-github step
      return [...text.matchAll(/uses: dagger\/dagger-for-github@[^\n]*\n\s+with:\n\s+version: "([^"]+)"/g)].map(
        (m) => `${f}: ${m[1]}`,
      );
    });
    expect(workflows.length).toBeGreaterThanOrEqual(6);
    const v = engine.replace(/^v/, "");
    expect({ pinned, installed, workflows: [...new Set(workflows.map((w) => w.split(": ")[1]))] }).toEqual({
      pinned: v,
      installed: v,
      workflows: [v],
    });
    expect(readFileSync("README.md", "utf8")).toContain(`**Dagger ${v}**`);
  });
});
