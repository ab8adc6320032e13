/**
 * Compose files as people write them: the public corpus in ../shared/compose-corpus
 * (real projects' files, never edited) and the YAML features real files use.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { parseComposeStack, releaseShape, renderForCheck } from "../../.dagger/src/core/compose/compose.js";
import { isPipelineError } from "../../.dagger/src/core/errors.js";
import { renderSwarmRelease } from "../../.dagger/src/core/swarm/swarm-release.js";

const CORPUS = join(process.cwd(), "../shared/compose-corpus/awesome-compose");

describe("the public compose corpus", () => {
  const files = existsSync(CORPUS) ? readdirSync(CORPUS).filter((f) => /\.ya?ml$/.test(f)) : [];

  it("is there (CI lays shared/ beside the clone)", () => {
    expect(files.length).toBe(39);
  });

  it("every file renders into a release, or is refused naming the field: never a crash or an unclassified error", () => {
    const outcomes = files.map((f) => {
      try {
        const out = parse(
          renderForCheck(readFileSync(join(CORPUS, f), "utf8"), `compose/${f}`, "ghcr.io/acme/app"),
        ) as { services: Record<string, { build?: unknown; image?: string }> };
        for (const [name, svc] of Object.entries(out.services)) {
          expect(svc.build, `${f}: services.${name}.build left in the release`).toBeUndefined();
          expect(typeof svc.image, `${f}: services.${name} has no image`).toBe("string");
        }
        return "rendered";
      } catch (e) {
        expect(isPipelineError(e), `${f}: ${String(e)}`).toBe(true);
        expect((e as Error).message, f).toMatch(/services\.[\w.-]+|include:/);
        return "refused";
      }
    });
    expect(outcomes.filter((o) => o === "rendered").length).toBeGreaterThanOrEqual(35);
  });
});

describe("YAML as compose reads it", () => {
  const anchored = [
    "x-app: &app",
    "  build: ./api",
    "  restart: unless-stopped",
    "  environment: &env",
    '    TZ: "UTC"',
    "  x-vps-pipeline:",
    "    http: { port: 8000, health: /health }",
    "services:",
    "  web:",
    "    <<: *app",
    "    image: ghcr.io/acme/app/web",
    '    ports: ["8080:8000"]',
    "  worker:",
    "    <<: *app",
    "    build: ./worker",
    "    image: ghcr.io/acme/app/worker",
    "    x-vps-pipeline: { job: true }",
    ...Array.from({ length: 200 }, (_, i) => [`  cache${i}:`, "    image: redis:7", "    environment: *env"]).flat(),
  ].join("\n");

  it("merge keys give a service its build, image and x-vps-pipeline from an anchor; hundreds of aliases parse", () => {
    const stack = parseComposeStack(anchored, "compose/prod.yml");
    expect(stack.builds.map((b) => [b.service, b.context, b.repository])).toEqual([
      ["web", "compose/api", "ghcr.io/acme/app/web"],
      ["worker", "compose/worker", "ghcr.io/acme/app/worker"],
    ]);
    expect(stack.http.map((h) => [h.service, h.port, h.published])).toEqual([["web", 8000, ["8080:8000"]]]);
    expect(stack.jobs.map((j) => j.service)).toEqual(["worker"]);
    expect(stack.services).toHaveLength(202);
  });

  it("the release has every alias resolved and every merge applied: compose, the swarm and our own readers see the same", () => {
    const out = renderForCheck(anchored, "compose/prod.yml");
    expect(out).not.toMatch(/<<:|\*app|\*env|&app/);
    const shape = releaseShape(out);
    expect(shape.images.web).toMatch(/^ghcr\.io\/acme\/app\/web@sha256:/);
    expect(
      (parse(out) as { services: Record<string, { environment?: unknown; build?: unknown; restart?: string }> })
        .services.cache199,
    ).toEqual({ image: "redis:7", environment: { TZ: "UTC" } });
    expect(
      (parse(out) as { services: Record<string, { build?: unknown; restart?: string }> }).services.web,
    ).toMatchObject({ restart: "unless-stopped" });
    expect(() => renderSwarmRelease(out)).not.toThrow();
  });

  it("a file without aliases keeps its comments", () => {
    expect(renderForCheck("# the app\nservices:\n  api:\n    image: redis:7 # pinned later\n", "c.yml")).toContain(
      "# pinned later",
    );
  });

  it("a file read without resolving its extends and include first is refused, not read without them", () => {
    // the module's inputs resolve them (core/compose/resolve.ts, test/unit/compose-resolve.test.ts)
    const ext = () =>
      parseComposeStack("services:\n  base: { image: redis:7 }\n  web:\n    extends: { service: base }\n", "c.yml");
    expect(ext).toThrow(/services\.web\.extends: not resolved/);
    expect(() => parseComposeStack("include: [other.yml]\nservices:\n  web: { image: redis:7 }\n", "c.yml")).toThrow(
      /include: not resolved/,
    );
  });
});

describe("interpolated replica counts", () => {
  it("are read with the release's .env, as compose reads them", async () => {
    const { interpolate } = await import("../../.dagger/src/core/compose/interpolate.js");
    const vars = new Map([
      ["N", "3"],
      ["EMPTY", ""],
    ]);
    expect(interpolate("${N}-${N:-9}-${MISSING:-2}-${EMPTY:-4}-${EMPTY-5}-$N", vars)).toBe("3-3-2-4--3");
    const text =
      'services:\n  api:\n    image: x\n    deploy: { replicas: "${API_REPLICAS:-2}" }\n  web:\n    image: y\n    scale: "${WEB_SCALE}"\n';
    expect(releaseShape(text).replicas).toEqual({ api: 2 });
    expect(releaseShape(text, "API_REPLICAS=4\nWEB_SCALE=3\n").replicas).toEqual({ api: 4, web: 3 });
  });
});
