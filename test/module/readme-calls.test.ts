/**
 * The README is executable: every `dagger call` example in it, after the shell
 * expansion a user's bash would do with the README's own example values, names
 * only functions and flags the module has and every argument they require (the
 * checker of `dagger check` and of the workflows), passes secrets by reference,
 * and gives each token its user. The laptop line is the workflow's line.
 */
import { readFileSync, readdirSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { checkCall, daggerCalls, moduleRefProblem, type ApiShape } from "../../.dagger/src/core/ci/workflow.js";
import { parseSettingsFile, settle } from "../../.dagger/src/core/settings/settings.js";
import { apiShape, introspect } from "./introspection.js";

/** The README and every page of docs/: each example in them is checked. */
const DOCS = [
  "README.md",
  ...readdirSync("docs")
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
const readme = DOCS.map((f) => readFileSync(f, "utf8")).join("\n");

/** The README's shell snippets: indented code lines, continuation lines joined, with the heading they sit under. */
function snippets(): { section: string; command: string }[] {
  const out: { section: string; command: string }[] = [];
  let section = "";
  let pending = "";
  for (const line of readme.split("\n")) {
    if (line.startsWith("#")) section = line;
    if (!line.startsWith("    ")) continue;
    const text = line.trim();
    if (text.endsWith("\\")) {
      pending += `${text.slice(0, -1)} `;
      continue;
    }
    out.push({ section, command: pending + text });
    pending = "";
  }
  return out;
}

/** What a command substitution prints, for the ones the README uses. */
function substitute(cmd: string): string {
  if (/git rev-parse HEAD/.test(cmd)) return "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";
  if (/git log -1 --format=%cI/.test(cmd)) return "2026-11-30T12:00:00+01:00";
  if (/^cat /.test(cmd)) return "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----";
  return "output";
}

type Vars = Map<string, string | string[]>;

/** Bash's word splitting and expansion, as far as the README needs it: quotes, $NAME, ${NAME}, "${ARR[@]}", $(…). */
export function shellWords(line: string, vars: Vars): string[] {
  const words: string[] = [];
  let cur: string | undefined;
  let dq = false;
  const scalar = (name: string): string => {
    const v = vars.get(name);
    return Array.isArray(v) ? (v[0] ?? "") : (v ?? (name === "HOME" ? "/home/me" : name === "USER" ? "me" : "EXAMPLE"));
  };
  const addExpanded = (value: string) => {
    if (dq) {
      cur = (cur ?? "") + value;
      return;
    }
    const parts = value.split(/\s+/);
    parts.forEach((p, i) => {
      if (i > 0) {
        if (cur !== undefined && cur !== "") words.push(cur);
        cur = undefined;
      }
      if (p !== "") cur = (cur ?? "") + p;
    });
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (!dq && /\s/.test(c)) {
      if (cur !== undefined) words.push(cur);
      cur = undefined;
    } else if (!dq && c === "'") {
      const end = line.indexOf("'", i + 1);
      cur = (cur ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      dq = !dq;
      cur ??= "";
    } else if (c === "\\" && i + 1 < line.length) {
      cur = (cur ?? "") + line[++i];
    } else if (c === "$" && line[i + 1] === "(") {
      let depth = 0;
      let j = i + 1;
      for (; j < line.length; j++) {
        if (line[j] === "(") depth++;
        if (line[j] === ")" && --depth === 0) break;
      }
      addExpanded(substitute(line.slice(i + 2, j)));
      i = j;
    } else if (c === "$" && line[i + 1] === "{") {
      const end = line.indexOf("}", i);
      const inner = line.slice(i + 2, end);
      const arr = /^(\w+)\[@\]$/.exec(inner);
      if (arr) {
        const v = vars.get(arr[1]!);
        const items = Array.isArray(v) ? v : [String(v ?? "")];
        items.forEach((item, k) => {
          if (k > 0) {
            words.push(cur ?? "");
            cur = undefined;
          }
          cur = (cur ?? "") + item;
        });
      } else addExpanded(scalar(inner));
      i = end;
    } else if (c === "$" && /[A-Za-z_]/.test(line[i + 1] ?? "")) {
      const m = /^[A-Za-z_]\w*/.exec(line.slice(i + 1))!;
      addExpanded(scalar(m[0]));
      i += m[0].length;
    } else cur = (cur ?? "") + c;
  }
  if (cur !== undefined) words.push(cur);
  return words;
}

/**
 * The README's example values: `export A=… B=…` and `ARR=(…)` lines. Read twice: a user has every
 * value the README shows in their environment whichever paragraph shows it.
 */
function exampleVars(): Vars {
  return readVars(readVars(new Map()));
}

function readVars(known: Vars): Vars {
  const vars: Vars = new Map(known);
  for (const { command } of snippets()) {
    const arr = /^([A-Z_]+)=\((.*)\)$/.exec(command);
    if (arr) vars.set(arr[1]!, shellWords(arr[2]!, vars));
    else if (/^export [A-Z_]+=/.test(command)) {
      for (const w of shellWords(command.replace(/#.*$/, ""), vars).slice(1)) {
        const eq = w.indexOf("=");
        if (eq > 0) vars.set(w.slice(0, eq), w.slice(eq + 1));
      }
    }
  }
  return vars;
}

/** Every `dagger call …` example, expanded: the words after `dagger call`; `byVersion`: loaded as users load it. */
function readmeCalls(): { section: string; words: string[]; byVersion: boolean }[] {
  const vars = exampleVars();
  return snippets()
    .filter((s) => /^dagger -m (\.|\$VPS_PIPELINE) call /.test(s.command) && !s.command.includes("settings]"))
    .map((s) => ({
      section: s.section,
      words: shellWords(s.command.replace(/\s+#.*$/, ""), vars).slice(4),
      byVersion: s.command.startsWith("dagger -m $VPS_PIPELINE"),
    }));
}

/** The README's fenced ```yaml blocks. */
const yamlBlocks = () =>
  [...readme.matchAll(/^( *)```yaml\n([\s\S]*?)^\1```$/gm)].map((m) => dedent(m[2]!, m[1]!.length));
const dedent = (text: string, n: number) =>
  text
    .split("\n")
    .map((l) => l.slice(n))
    .join("\n");

/** The words again as one line that core/ci/workflow.ts's splitter reads back as the same words. */
const asLine = (words: string[]) =>
  words.map((w) => (/\s/.test(w) ? w.replace(/^([^=]*=)?(.*)$/s, '$1"$2"') : w)).join(" ");
const flagNames = (words: string[]) => words.filter((w) => w.startsWith("--")).map((w) => w.split("=")[0]!);

let api: ApiShape;
beforeAll(() => {
  api = apiShape(introspect());
});

describe("the README's dagger calls", () => {
  it("are there (the checks below have something to check), each loading the module explicitly as Dagger 1.0 needs", () => {
    expect(readmeCalls().length).toBeGreaterThanOrEqual(10);
    expect(
      snippets()
        .filter((s) => /^dagger (call|check|functions)\b/.test(s.command))
        .map((s) => s.command),
    ).toEqual([]);
  });

  it("fit the module after shell expansion with the README's own values", () => {
    for (const c of readmeCalls())
      expect(checkCall({ file: "README.md", line: asLine(c.words) }, api), `${c.section}: ${asLine(c.words)}`).toEqual(
        [],
      );
  });

  it("pass secrets by reference and give every token its user", () => {
    for (const c of readmeCalls()) {
      const flags = flagNames(c.words);
      for (const w of c.words) {
        const [flag, value = ""] = w.split(/=(.*)/s);
        if (/token|ssh-key|env-file|passphrase/.test(flag!))
          expect(value, `${c.section}: ${flag}`).toMatch(/^(env|file|cmd):\S/);
      }
      if (flags.includes("--pull-token"))
        expect(flags, `${c.section}: --pull-token without --pull-user`).toContain("--pull-user");
      // loaded by version, the call reads the README's vps-pipeline.yml, which names the account
      if (flags.includes("--registry-token") && !c.byVersion)
        expect(flags, `${c.section}: --registry-token without --registry-user`).toContain("--registry-user");
    }
  });

  it("the expansion itself: a value with spaces stays one word in quotes and splits without them", () => {
    const vars: Vars = new Map([["K", "203.0.113.7 ssh-ed25519 AAAA"]]);
    expect(shellWords(`a --host-key="$K" b`, vars)).toEqual(["a", "--host-key=203.0.113.7 ssh-ed25519 AAAA", "b"]);
    expect(shellWords("a --host-key=$K b", vars)).toEqual(["a", "--host-key=203.0.113.7", "ssh-ed25519", "AAAA", "b"]);
    vars.set("V", ["vps", "--host-key=203.0.113.7 ssh-ed25519 AAAA"]);
    expect(shellWords(`x "\${V[@]}" status`, vars)).toEqual([
      "x",
      "vps",
      "--host-key=203.0.113.7 ssh-ed25519 AAAA",
      "status",
    ]);
  });

  it("the laptop line is the workflow's ship line: the same functions and the same flags", () => {
    const laptop = readmeCalls().find((c) => /laptop/i.test(c.section) && c.words.includes("ship"));
    expect(laptop).toBeDefined();
    const workflow = daggerCalls("deploy.yml", readFileSync(".github/workflows/deploy.yml", "utf8")).find((c) =>
      / ship /.test(c.line),
    )!;
    const wfWords = shellWords(workflow.line, new Map());
    expect(laptop!.words.filter((w) => !w.startsWith("-"))).toEqual(wfWords.filter((w) => !w.startsWith("-")));
    expect(flagNames(laptop!.words).sort()).toEqual(flagNames(wfWords).sort());
  });

  it("a repository of its own: the calls load the module by a pinned version with --source=., and the settings file they read is valid and complete", () => {
    const byVersion = readmeCalls().filter((c) => c.byVersion);
    expect(byVersion.length).toBeGreaterThanOrEqual(3);
    const pinned = exampleVars().get("VPS_PIPELINE") as string;
    expect(moduleRefProblem(pinned)).toBeUndefined();
    for (const c of byVersion) expect(c.words, c.section).toContain("--source=.");
    const settings = yamlBlocks().find((b) => /^vps:/m.test(b) && !/^jobs:/m.test(b))!;
    const file = parseSettingsFile(settings, "vps-pipeline.yml");
    // what the short lines leave out is there: the token's account, and the server's required settings
    expect(file.module.registryUser).toMatch(/\S/);
    expect(() => settle("vps", {}, file)).not.toThrow();
  });

  it("the workflow a user copies fits the module, pins it, and its line stays short (secrets, the function, the commit)", () => {
    const wf = yamlBlocks().find((b) => b.includes("dagger/dagger-for-github@"))!;
    const calls = daggerCalls("README deploy.yml", wf);
    expect(calls).toHaveLength(1);
    expect(checkCall(calls[0]!, api)).toEqual([]);
    expect(calls[0]!.module).toMatch(/@v\d+\.\d+\.\d+$/);
    expect(calls[0]!.line.length).toBeLessThan(200);
    // the action pin is the one this repository's own workflows use
    const ours = /dagger\/dagger-for-github@\S+/.exec(readFileSync(".github/workflows/deploy.yml", "utf8"))![0];
    expect(wf).toContain(ours);
  });
});
