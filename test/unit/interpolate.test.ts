/**
 * Issue 32, the pure part: compose's substitutions (compose itself confirms each in
 * test/module/compose-judge.test.ts), and what they change in a stack and a release.
 */
import { describe, expect, it } from "vitest";
import { parseComposeStack, releaseShape, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import { interpolate } from "../../.dagger/src/core/compose/interpolate.js";
import { fileRefs, releaseFiles } from "../../.dagger/src/core/release/release-files.js";

const D = `sha256:${"a".repeat(64)}`;
const vars = new Map([
  ["N", "3"],
  ["EMPTY", ""],
  ["FALLBACK", "1.36"],
]);

describe("interpolate, as compose does it", () => {
  it("substitutes every form compose knows", () => {
    const cases: [string, string][] = [
      ["$N ${N} ${N:-9} ${N-9}", "3 3 3 3"],
      ["${MISSING:-2} ${MISSING-2} ${EMPTY:-4} ${EMPTY-5}|", "2 2 4 |"],
      ["${N:+set} ${N+set} ${EMPTY:+x}|${EMPTY+x} ${MISSING+x}|", "set set |x |"],
      ["${TAG:-${FALLBACK}}", "1.36"],
      ["${TAG:-a-${N:-0}-b}", "a-3-b"],
      ["$${N} costs $$5", "${N} costs $5"],
      ["${N:?needed} ${EMPTY?set is enough}|", "3 |"],
      ["a $ alone", "a $ alone"],
      ["$MISSING.", "."],
    ];
    for (const [text, want] of cases) expect(interpolate(text, vars), text).toBe(want);
  });

  it("a required variable without a value is an error naming it, when the file is being checked; else empty", () => {
    expect(() => interpolate("${TOKEN:?set it in .env}", vars, { strict: true, where: "services.web.image" })).toThrow(
      /services\.web\.image: required variable TOKEN is missing a value: set it in \.env/,
    );
    expect(() => interpolate("${EMPTY:?}", vars, { strict: true })).toThrow(/required variable EMPTY/);
    expect(interpolate("${TOKEN:?x}", vars)).toBe("");
    expect(() => interpolate("${N", vars)).toThrow(/not closed/);
    expect(() => interpolate("${N:=2}", vars)).toThrow(/no substitution compose knows/);
  });
});

describe("a stack read with its variables", () => {
  const file = [
    "services:",
    "  db:",
    "    image: postgres:${PG_VERSION:-16}",
    "  web:",
    "    build:",
    "      context: ./${APP_DIR:-web}",
    "      args: { NODE_VERSION: '${NODE_VERSION:-20}', BASE_IMAGE: null, LITERAL: '$${X}' }",
    "    image: ghcr.io/acme/app/web",
    "    volumes:",
    '      - "${NGINX_CONF:-./nginx.conf}:/etc/nginx/nginx.conf:ro"',
    "      - { type: bind, source: site.conf, target: /etc/site.conf }",
    "      - .hidden:/hidden",
    "      - named:/data",
    "volumes: { named: {} }",
    "",
  ].join("\n");

  it("builds with the defaults (and the variables given), leaves a bare argument to the Dockerfile", () => {
    const s = parseComposeStack(file, "compose.yaml", "ghcr.io/acme/app", new Map([["NODE_VERSION", "22"]]));
    expect(s.builds[0]).toMatchObject({ context: "web", args: { NODE_VERSION: "22", LITERAL: "${X}" } });
    expect(s.builds[0]!.args).not.toHaveProperty("BASE_IMAGE");
    const required = file.replace("${NODE_VERSION:-20}", "${NODE_VERSION:?pin node}");
    // refused for a build; given by --build-args, it builds; a deploy of published images builds nothing
    expect(() => parseComposeStack(required, "compose.yaml", undefined, new Map(), true)).toThrow(
      /services\.web\.build\.args\.NODE_VERSION: required variable NODE_VERSION is missing a value: pin node/,
    );
    const given = parseComposeStack(
      required,
      "compose.yaml",
      "ghcr.io/acme/app",
      new Map([["NODE_VERSION", "21"]]),
      true,
    );
    expect(given.builds[0]!.args.NODE_VERSION).toBe("21");
    expect(parseComposeStack(required, "compose.yaml", "ghcr.io/acme/app").builds).toHaveLength(1);
  });

  it("pulls and judges the images the .env makes", () => {
    expect(releaseShape(file, "PG_VERSION=15\n").images.db).toBe("postgres:15");
    expect(releaseShape(file).images.db).toBe("postgres:16");
  });

  it("ships the repository files its binds name, behind a variable or without ./, and points the release at them", () => {
    const s = parseComposeStack(file, "compose/compose.yaml", "ghcr.io/acme/app");
    const refs = fileRefs(s.doc.toJS(), "compose/compose.yaml", new Map([["NGINX_CONF", "./conf/prod.conf"]]));
    expect(refs.map((r) => [r.field, r.sourcePath])).toEqual([
      ["services.web.volumes[0]", "compose/conf/prod.conf"],
      ["services.web.volumes[1].source", "compose/site.conf"],
      ["services.web.volumes[2]", "compose/.hidden"],
    ]);
    const found = new Map(refs.map((r) => [r.sourcePath!, { type: "file" as const, content: "x" }]));
    const release = renderRelease(s, { web: D }, releaseFiles(refs, found).rewrites);
    const vols = release.split("\n").filter((l) => l.includes("/etc/nginx/nginx.conf"));
    expect(vols[0]).toMatch(/- "?\.\/\.releases\/files\/[^:]+:\/etc\/nginx\/nginx\.conf:ro"?$/);
    expect(vols[0]).not.toContain("${");
  });
});

describe("what compose refuses, refused before anything is sent (issue 32, case 10)", () => {
  it("a depends_on cycle, naming it", () => {
    const cyclic =
      "services:\n  a: { image: x, depends_on: [b] }\n  b: { image: x, depends_on: { c: { condition: service_started } } }\n  c: { image: x, depends_on: [a] }\n";
    expect(() => parseComposeStack(cyclic, "compose.yaml")).toThrow(
      /services\.a\.depends_on: a dependency cycle \(a → b → c → a\)/,
    );
    expect(() => parseComposeStack("services:\n  a: { image: x, depends_on: [a] }\n", "compose.yaml")).toThrow(
      /\(a → a\)/,
    );
    expect(() =>
      parseComposeStack("services:\n  a: { image: x, depends_on: [b] }\n  b: { image: x }\n", "c.yaml"),
    ).not.toThrow();
  });
});
