/**
 * The GitHub wrapper cannot drift from the module: every `dagger call` line in
 * the workflows names a function that exists, only arguments it has, and every
 * argument it requires.
 */
import { readFileSync, readdirSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { flagToArg, introspect, type Registered } from "./introspection.js";

interface Step { uses?: string; with?: Record<string, string> }
interface Workflow { jobs: Record<string, { steps: Step[] }> }

/** Split a command line the way bash would for our purposes: whitespace, with quoted parts kept whole. */
function words(line: string): string[] {
  return [...line.matchAll(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g)].map((m) => m[0]);
}

function daggerCalls(): { file: string; args: string }[] {
  const dir = ".github/workflows";
  return readdirSync(dir).flatMap((file) => {
    const wf = parse(readFileSync(`${dir}/${file}`, "utf8")) as Workflow;
    return Object.values(wf.jobs).flatMap((j) =>
      j.steps.filter((s) => s.uses?.startsWith("dagger/dagger-for-github@")).map((s) => ({ file, args: String(s.with?.args ?? s.with?.call ?? "") })),
    );
  });
}

let api: Registered;
beforeAll(() => {
  api = introspect();
});

describe("the workflows' dagger calls", () => {
  it("are there: ship on push, rollback on dispatch", () => {
    expect(daggerCalls().map((c) => `${c.file}:${words(c.args)[0]}`).sort()).toEqual(["deploy.yml:rollback", "deploy.yml:ship"]);
  });

  it("name only functions and arguments the module has, and every argument a function requires", () => {
    const methods = api.objects.VpsPipeline!.methods;
    for (const call of daggerCalls()) {
      const [fn, ...rest] = words(call.args);
      const method = methods[fn!];
      expect(method, `${call.file}: function ${fn}`).toBeDefined();
      const given = rest.map((w) => flagToArg(w.split("=")[0]!));
      for (const g of given) expect(Object.keys(method!.arguments), `${call.file}: ${fn} --${g}`).toContain(g);
      const required = Object.values(method!.arguments).filter((a) => !a.isOptional && a.defaultValue === undefined && !a.defaultPath).map((a) => a.name);
      for (const r of required) expect(given, `${call.file}: ${fn} needs --${r}`).toContain(r);
    }
  });

  it("pass secrets by reference (env:NAME), never by value, and no expression is pasted into the line", () => {
    for (const call of daggerCalls()) {
      expect(call.args, call.file).not.toContain("${{");
      for (const w of words(call.args)) {
        const [flag, value = ""] = w.split(/=(.*)/s);
        if (/token|ssh-key|env-file|passphrase/.test(flag!) && !/^--ssh-key-passphrase$/.test(flag!)) expect(value, `${call.file}: ${flag}`).toMatch(/^env:[A-Z_]+$/);
        expect(value, `${call.file}: ${flag}`).not.toMatch(/secrets\./);
      }
    }
  });
});
