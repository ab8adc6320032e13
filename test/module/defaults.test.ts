/**
 * Every default the engine registers equals the value the TypeScript default evaluates to. The
 * introspector reads a default's text, not its value: `1_048_576` was registered as 1 (and `logs`
 * then refused its own default). Each parameter initializer of the module's functions is evaluated
 * here and compared with what the introspector registered.
 */
import { readFileSync } from "node:fs";
import ts from "typescript";
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULTS } from "../../.dagger/src/core/defaults.js";
import { Format, Orchestrator, PreviewWhenFull } from "../../.dagger/src/enums.js";
import { introspect, type Registered } from "./introspection.js";

/** `[object, function, argument, initializer text]` for every parameter with a default in a module class. */
export function initializers(file: string, text = readFileSync(file, "utf8")): [string, string, string, string][] {
  const src = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const found: [string, string, string, string][] = [];
  const visit = (n: ts.Node, cls?: string) => {
    if (ts.isClassDeclaration(n) && n.name) cls = n.name.text;
    if (cls && (ts.isMethodDeclaration(n) || ts.isConstructorDeclaration(n))) {
      const fn = ts.isConstructorDeclaration(n) ? "constructor" : n.name.getText(src);
      for (const p of n.parameters)
        if (p.initializer) found.push([cls, fn, p.name.getText(src), p.initializer.getText(src)]);
    }
    ts.forEachChild(n, (c) => visit(c, cls));
  };
  visit(src);
  return found;
}

/** What an initializer evaluates to, with the module's DEFAULTS table and its enums in scope. */
const evaluate = (text: string): unknown =>
  new Function("DEFAULTS", "Format", "Orchestrator", "PreviewWhenFull", `return (${text});`)(
    DEFAULTS,
    Format,
    Orchestrator,
    PreviewWhenFull,
  );

let api: Registered;
beforeAll(() => {
  api = introspect();
});

describe("defaults: what the engine registers is what TypeScript means", () => {
  it("every registered default equals its initializer's value", () => {
    const problems: string[] = [];
    let compared = 0;
    for (const file of [".dagger/src/index.ts", ".dagger/src/vps.ts"]) {
      for (const [cls, fn, arg, text] of initializers(file)) {
        const obj = api.objects[cls];
        const method = fn === "constructor" ? obj?.constructor : obj?.methods[fn];
        const registered = method && Object.hasOwn(method.arguments, arg) ? method.arguments[arg] : undefined;
        if (!registered) continue; // not a function of the module (a static helper)
        compared++;
        const want = evaluate(text);
        if (JSON.stringify(registered.defaultValue) !== JSON.stringify(want))
          problems.push(
            `${cls}.${fn}(${arg} = ${text}): registered ${JSON.stringify(registered.defaultValue)}, means ${JSON.stringify(want)}`,
          );
      }
    }
    expect(problems).toEqual([]);
    expect(compared).toBeGreaterThan(40);
  });

  it("the reader finds initializers, a separated number among them", () => {
    const found = initializers("x.ts", "class A { f(a = 1_048_576, b = DEFAULTS.port, c: string[] = []) {} }");
    expect(found.map(([, , a, t]) => [a, evaluate(t)])).toEqual([
      ["a", 1048576],
      ["b", DEFAULTS.port],
      ["c", []],
    ]);
  });
});
