/**
 * Issue 32, cases 8 to 10: extends, include, `!reset`/`!override` resolved into one file, and what compose
 * refuses only with the deploy's variables. Compose itself judges the merge rules on real files
 * (test/module/compose-judge.test.ts, fixtures in test/fixtures/compose-judge/{extends,include}); here: the
 * refusals, the reading rounds, and that a plain file is left as written.
 */
import { describe, expect, it } from "vitest";
import { COMPOSE_YAML, composeData, parseComposeStack } from "../../.dagger/src/core/compose/compose.js";
import { composeFilesWanted, resolveComposeText } from "../../.dagger/src/core/compose/resolve.js";
import { assertSubstitutable, substitutionProblems } from "../../.dagger/src/core/compose/substituted.js";
import { isPipelineError } from "../../.dagger/src/core/errors.js";

function resolve(files: Record<string, string>, main = "compose.yaml"): string {
  return resolveComposeText(main, files[main]!, (f) => files[f], COMPOSE_YAML);
}

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isPipelineError(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
  throw new Error("not refused");
}

type Data = { services: Record<string, Record<string, unknown>>; [k: string]: unknown };

describe("extends and include, resolved", () => {
  it("leaves a file without them exactly as written (comments and all)", () => {
    const text = "# mine\nservices:\n  web: { image: nginx }  # kept\n";
    expect(resolve({ "compose.yaml": text })).toBe(text);
  });

  it("merges a base from another folder, its paths spelt for the compose file's folder", () => {
    const data = composeData(
      resolve(
        {
          "deploy/compose.yaml": "services:\n  web:\n    extends: { file: ../lib/base.yaml, service: web }\n",
          "lib/base.yaml":
            "services:\n  web:\n    build: ./web\n    env_file: web.env\n    volumes: ['./conf:/etc/conf:ro', '/abs:/abs']\n",
        },
        "deploy/compose.yaml",
      ),
    ) as Data;
    expect(data.services.web).toEqual({
      build: "../lib/web",
      env_file: "../lib/web.env",
      volumes: ["../lib/conf:/etc/conf:ro", "/abs:/abs"],
    });
  });

  it("applies !reset and !override, and keeps one port, volume and variable per name", () => {
    const data = composeData(
      resolve({
        "compose.yaml": `services:
  base:
    image: a
    command: [x]
    ports: ["80:80", "81:81"]
    volumes: ["./a:/data"]
    environment: [A=1, B=2]
  web:
    extends: base
    command: !reset
    ports: ["80:80", "82:82"]
    volumes: ["./b:/data"]
    environment: { B: "3" }
  only:
    extends: base
    ports: !override ["90:90"]
`,
      }),
    ) as Data;
    expect(data.services.web).toEqual({
      image: "a",
      ports: ["80:80", "81:81", "82:82"],
      volumes: ["./b:/data"],
      environment: ["A=1", "B=3"],
    });
    expect(data.services.only!.ports).toEqual(["90:90"]);
  });

  it("refuses cycles, missing services, paths out of the source and what the release cannot rebase", () => {
    expect(refusal(() => resolve({ "compose.yaml": "services:\n  a: { extends: b }\n  b: { extends: a }\n" }))).toMatch(
      /COMPOSE_INVALID: .*services\.\w\.extends: a cycle/,
    );
    expect(refusal(() => resolve({ "compose.yaml": "services:\n  a: { extends: nope }\n" }))).toMatch(
      /names the service `nope`/,
    );
    expect(refusal(() => resolve({ "compose.yaml": "include: [../up.yaml]\nservices:\n  a: { image: x }\n" }))).toMatch(
      /include\[0\]\.path: `\.\.\/up\.yaml` leaves the source directory/,
    );
    expect(
      refusal(() =>
        resolve({
          "compose.yaml": "include: [sub/c.yaml]\nservices:\n  a: { image: x }\n",
          "sub/c.yaml": "services:\n  b:\n    image: y\n    volumes: ['${CONF:-./c}:/c']\n",
        }),
      ),
    ).toMatch(
      /services\.b\.volumes\[0\]: `\$\{CONF:-\.\/c\}` is a path with a variable in a file read from another folder/,
    );
    expect(
      refusal(() =>
        resolve({
          "compose.yaml": "include: [{ path: sub/c.yaml, env_file: sub/.env }]\nservices:\n  a: { image: x }\n",
          "sub/c.yaml": "services:\n  b: { image: y }\n",
        }),
      ),
    ).toMatch(/include\[0\]\.env_file: not supported/);
    expect(
      refusal(() =>
        resolve({
          "compose.yaml": "include: [c.yaml]\nservices:\n  a: { image: x }\n",
          "c.yaml": "include: [compose.yaml]\nservices:\n  b: { image: y }\n",
        }),
      ),
    ).toMatch(/include: a cycle \(compose\.yaml → c\.yaml → compose\.yaml\)/);
    expect(
      refusal(() =>
        resolve({
          "compose.yaml": "include: [c.yaml]\nservices:\n  a: { image: x }\n",
          "c.yaml": "services:\n  a: { image: y }\n",
        }),
      ),
    ).toMatch(/services\.a: defined here and in the included c\.yaml, differently/);
  });

  it("asks for the files it pulls in, round by round, until it has them all", () => {
    const all: Record<string, string> = {
      "compose.yaml": "include: [a/one.yaml]\nservices:\n  web: { extends: { file: b/base.yaml, service: web } }\n",
      "a/one.yaml": "services:\n  one: { extends: { file: ../c/deep.yaml, service: deep } }\n",
      "b/base.yaml": "services:\n  web: { image: nginx }\n",
      "c/deep.yaml": "services:\n  deep: { image: redis }\n",
    };
    const known = new Map([["compose.yaml", all["compose.yaml"]!]]);
    const rounds: string[][] = [];
    for (let want = composeFilesWanted("compose.yaml", known, COMPOSE_YAML); want.length;) {
      rounds.push(want);
      for (const f of want) known.set(f, all[f]!);
      want = composeFilesWanted("compose.yaml", known, COMPOSE_YAML);
      expect(rounds.length).toBeLessThan(5);
    }
    expect(rounds.flat().sort()).toEqual(["a/one.yaml", "b/base.yaml", "c/deep.yaml"]);
    const stack = parseComposeStack(resolve(all), "compose.yaml");
    expect(stack.services.sort()).toEqual(["one", "web"]);
  });
});

describe("what the deploy's .env makes compose refuse", () => {
  const root = (svc: string) => composeData(`services:\n  s:\n${svc}`);
  it("names a bind that substitutes to an empty source, and the variable", () => {
    const p = substitutionProblems(root("    image: x\n    volumes: ['${MEDIA}:/media']\n"), new Map());
    expect(p).toEqual([
      expect.stringMatching(/^services\.s\.volumes\[0\]: .* `:\/media` .*\(MEDIA unset or empty in the \.env\)/),
    ]);
    expect(
      substitutionProblems(root("    image: x\n    volumes: ['${MEDIA}:/media']\n"), new Map([["MEDIA", "/srv"]])),
    ).toEqual([]);
  });

  it("names a typed field that is no longer its type", () => {
    const p = substitutionProblems(
      root("    image: x\n    read_only: ${RO}\n    deploy: { replicas: '${N}' }\n    cpus: '${C:-0.5}'\n"),
      new Map([["RO", "maybe"]]),
    );
    expect(p).toHaveLength(2);
    expect(p.join("\n")).toMatch(
      /services\.s\.deploy\.replicas: `\$\{N\}` is `` once substituted, not a whole number \(N unset/,
    );
    expect(p.join("\n")).toMatch(/services\.s\.read_only: `\$\{RO\}` is `maybe` once substituted, not true or false/);
  });

  it("refuses a release with a required variable the .env leaves unset, naming it and never a value", () => {
    const release = "services:\n  s:\n    image: x:${TAG:?set TAG}\n    environment: [KEY=${SECRET_KEY}]\n";
    expect(
      refusal(() => assertSubstitutable("compose.yaml", release, "SECRET_KEY=hunter2-value\n", "envFile")),
    ).toMatch(
      /^COMPOSE_INVALID: compose\.yaml with the \.env of --env-file cannot be deployed; nothing was sent:\n {2}services\.s\.image: required variable TAG is missing a value: set TAG/,
    );
    expect(
      refusal(() => assertSubstitutable("compose.yaml", release, "SECRET_KEY=hunter2-value\n", "envFile")),
    ).not.toContain("hunter2");
    expect(() => assertSubstitutable("compose.yaml", release, "TAG=1\n", "previewEnv")).not.toThrow();
  });
});
