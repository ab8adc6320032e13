import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { readFileSync } from "node:fs";
import {
  jobEnvOverride,
  parseComposeStack,
  planReleaseImages,
  releaseShape,
  renderForCheck,
  renderRelease,
} from "../../.dagger/src/core/compose/compose.js";
import { PipelineError } from "../../.dagger/src/core/errors.js";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const PREFIX = "ghcr.io/acme/gold-tracker";

/** A stack with an api (built, no image), a web (built, named image) and postgres (pulled); override per test. */
function stackText(extra = ""): string {
  return `# production
services:
  api:
    build:
      context: ../apps/api
      dockerfile: Dockerfile.prod
      target: runtime
      args: [ "NODE_ENV=production", "BASE=node:20" ]
    restart: unless-stopped # keep this comment
  web:
    build: ../apps/web
    image: ghcr.io/Acme/Gold-Tracker/web:latest
    pull_policy: build
    ports: ["\${WEB_PORT:-8080}:80"]
  db:
    image: postgres:16
${extra}`;
}

function errorOf(f: () => unknown): PipelineError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PipelineError);
    return e as PipelineError;
  }
  throw new Error("expected an error");
}

describe("parseComposeStack", () => {
  it("finds the built services with contexts resolved from the compose file's folder", () => {
    const s = parseComposeStack(stackText(), "compose/docker-compose.prod.yml", PREFIX);
    expect(s.services).toEqual(["api", "web", "db"]);
    expect(s.builds).toEqual([
      {
        service: "api",
        context: "apps/api",
        dockerfile: "Dockerfile.prod",
        target: "runtime",
        args: { NODE_ENV: "production", BASE: "node:20" },
        repository: `${PREFIX}/api`,
        writtenName: `${PREFIX}/api`,
      },
      {
        service: "web",
        context: "apps/web",
        dockerfile: "Dockerfile",
        args: {},
        repository: `${PREFIX}/web`,
        writtenName: "ghcr.io/Acme/Gold-Tracker/web:latest",
      },
    ]);
  });

  it("builds one image once for the services that share it (an anchor), and pins every one of them to it", () => {
    const text = `x-app: &app
  build: { context: ., args: { MODE: app } }
  image: ghcr.io/acme/app
services:
  web: { <<: *app, command: serve }
  worker: { <<: *app, command: work }
`;
    const stack = parseComposeStack(text, "compose.yaml");
    expect(stack.builds.map((b) => [b.service, b.also])).toEqual([["web", ["worker"]]]);
    const out = parse(renderRelease(stack, { web: D1 })) as {
      services: Record<string, { image: string; build?: unknown }>;
    };
    expect([out.services.web!.image, out.services.worker!.image]).toEqual([
      `ghcr.io/acme/app@${D1}`,
      `ghcr.io/acme/app@${D1}`,
    ]);
    expect([out.services.web!.build, out.services.worker!.build]).toEqual([undefined, undefined]);
  });

  it("reports every undeployable service at once, naming it and the fix", () => {
    const text = `services:
  api: { build: ., image: ghcr.io/acme/same }
  worker: { build: ./worker, image: ghcr.io/acme/same:v2 }
  "bad name": { image: x }
  outside: { build: ../../.., image: ghcr.io/acme/out }
  inline: { build: { dockerfile_inline: "FROM x" }, image: ghcr.io/acme/in }
  nothing: { restart: always }
  noprefix: { build: . }
`;
    const e = errorOf(() => parseComposeStack(text, "compose/prod.yml"));
    expect(e.code).toBe("COMPOSE_INVALID");
    expect(e.message).toMatch(
      /services\.worker: builds the image `ghcr\.io\/acme\/same` as services\.api does, from another build/,
    );
    expect(e.message).toMatch(/services\.bad name: compose refuses this name/);
    expect(e.message).toMatch(/services\.outside\.build\.context: `\.\.\/\.\.\/\.\.` leaves the source directory/);
    expect(e.message).toMatch(/services\.inline\.build\.dockerfile_inline: not supported/);
    expect(e.message).toMatch(/services\.nothing: has neither `image:` nor `build:`/);
    expect(e.message).toMatch(
      /services\.noprefix: has `build:` but no `image:` and no image prefix.*image: ghcr\.io\/<owner>\/<repo>\/noprefix/,
    );
  });

  it("refuses invalid YAML and files without services", () => {
    expect(errorOf(() => parseComposeStack("services: [", "c.yml")).message).toMatch(/c\.yml is not valid YAML/);
    expect(errorOf(() => parseComposeStack("version: '3'\n", "c.yml")).message).toMatch(/no `services:` map/);
    expect(errorOf(() => parseComposeStack("services:\n  a: {image: x}\n  a: {image: y}\n", "c.yml")).code).toBe(
      "COMPOSE_INVALID",
    );
  });

  it("refuses an image name the registry would refuse", () => {
    expect(
      errorOf(() => parseComposeStack("services:\n  api: { build: ., image: 'ghcr.io/acme/a b' }\n", "c.yml")).message,
    ).toMatch(/services\.api\.image/);
  });
});

describe("renderRelease", () => {
  const stack = parseComposeStack(stackText(), "compose/docker-compose.prod.yml", PREFIX);

  it("removes build sections, pins built images by digest and leaves the rest as written", () => {
    const out = renderRelease(stack, { api: D1, web: D2 });
    const doc = parse(out) as { services: Record<string, Record<string, unknown>> };
    expect(doc.services.api).toEqual({ restart: "unless-stopped", image: `${PREFIX}/api@${D1}` });
    expect(doc.services.web).toEqual({ image: `${PREFIX}/web@${D2}`, ports: ["${WEB_PORT:-8080}:80"] });
    expect(doc.services.db).toEqual({ image: "postgres:16" });
    expect(out).toContain("# keep this comment");
    expect(releaseShape(out).images).toEqual({
      api: `${PREFIX}/api@${D1}`,
      web: `${PREFIX}/web@${D2}`,
      db: "postgres:16",
    });
    // the parsed stack is not changed by rendering
    expect(stack.doc.toString()).toContain("build:");
  });

  it("needs a digest for every built service", () => {
    expect(errorOf(() => renderRelease(stack, { api: D1 })).message).toMatch(/no digest for built service\(s\): web/);
    expect(errorOf(() => renderRelease(stack, { api: D1, web: "latest" })).code).toBe("BAD_DIGEST");
  });
});

describe("planReleaseImages", () => {
  const stack = parseComposeStack(stackText(), "compose/docker-compose.prod.yml", PREFIX);
  it("takes publish's pinned output, matched by repository or by service name", () => {
    expect(planReleaseImages(stack, [`${PREFIX}/web@${D2}`, `api=${PREFIX}/api@${D1}`])).toEqual({
      pinned: { api: D1, web: D2 },
      toResolve: [],
    });
  });
  it("leaves tags to resolve: named ones and, for the rest, the tag argument", () => {
    expect(planReleaseImages(stack, [`${PREFIX}/API:v2`], "sha-0123456")).toEqual({
      pinned: {},
      toResolve: [
        { service: "api", repository: `${PREFIX}/api`, reference: "v2" },
        { service: "web", repository: `${PREFIX}/web`, reference: "sha-0123456" },
      ],
    });
  });
  it("names refs that match nothing, are not references, or services left without an image", () => {
    const e = errorOf(() =>
      planReleaseImages(stack, [`${PREFIX}/api`, `ghcr.io/other/x@${D1}`, `${PREFIX}/web@sha256:123`]),
    );
    expect(e.code).toBe("INVALID_INPUT");
    expect(e.message).toMatch(/`ghcr\.io\/acme\/gold-tracker\/api` has neither tag nor digest/);
    expect(e.message).toMatch(/`ghcr\.io\/other\/x@sha256:1+` matches no built service/);
    expect(e.message).toMatch(/`sha256:123` is not a sha256 digest/);
    expect(errorOf(() => planReleaseImages(stack, [`${PREFIX}/api@${D1}`])).message).toMatch(
      /no image given for built service `web`/,
    );
  });
});

describe("the x-vps-pipeline extension and the shape of a release", () => {
  const jobs = `
  migrate:
    image: ghcr.io/acme/gold-tracker/api:tools
    command: ["./migrate"]
    x-vps-pipeline:
      job: { timeout: 90 }
  warm:
    image: busybox
    x-vps-pipeline: { job: true }
  seed:
    image: busybox
    restart: "no"
  worker:
    image: busybox
    depends_on:
      seed: { condition: service_completed_successfully }
  debug:
    image: busybox
    profiles: [debug]
  spare:
    image: busybox
    scale: 0
  standby:
    image: busybox
    deploy: { replicas: 0 }
`;

  it("reads release-phase jobs with their defaults", () => {
    const s = parseComposeStack(stackText(jobs), "compose/docker-compose.prod.yml", PREFIX);
    expect(s.jobs).toEqual([
      { service: "migrate", timeoutSeconds: 90, onRollback: false },
      { service: "warm", timeoutSeconds: 600, onRollback: false },
    ]);
  });

  it("gives jobs their own profile in the release, so `up` never starts them, and keeps the extension for the record", () => {
    const s = parseComposeStack(stackText(jobs), "compose/docker-compose.prod.yml", PREFIX);
    const out = renderRelease(s, { api: D1, web: D2 });
    const doc = parse(out) as { services: Record<string, Record<string, unknown>> };
    expect(doc.services.migrate!.profiles).toEqual(["vps-pipeline-jobs"]);
    expect(doc.services.migrate!["x-vps-pipeline"]).toEqual({ job: { timeout: 90 } });
  });

  it("expects what compose will start: not jobs, not profiles, not scale 0; run-once services apart", () => {
    const s = parseComposeStack(stackText(jobs), "compose/docker-compose.prod.yml", PREFIX);
    const shape = releaseShape(renderRelease(s, { api: D1, web: D2 }));
    expect(shape.long).toEqual(["api", "web", "db", "worker"]);
    expect(shape.once).toEqual(["seed"]);
    expect(shape.optional).toEqual(["debug"]);
    expect(shape.jobs.map((j) => j.service)).toEqual(["migrate", "warm"]);
    expect(Object.keys(shape.images)).toContain("standby");
  });

  it("refuses a misspelt extension key and a service that waits for a job, naming the path and the fix", () => {
    const e = errorOf(() =>
      parseComposeStack(
        stackText(`
  migrate:
    image: busybox
    x-vps-pipeline: { job: { timout: 5 }, edgy: 1 }
  warm:
    image: busybox
    x-vps-pipeline: { job: true }
  app:
    image: busybox
    depends_on: [warm]
`),
        "compose/docker-compose.prod.yml",
        PREFIX,
      ),
    );
    expect(e.code).toBe("COMPOSE_INVALID");
    expect(e.message).toMatch(/services\.migrate\.x-vps-pipeline\.job: .*timout.*known keys/);
    expect(e.message).toMatch(/services\.migrate\.x-vps-pipeline: .*edgy/);
    expect(e.message).toMatch(
      /services\.app\.depends_on: waits for `warm`, a release-phase job.*service_completed_successfully/,
    );
  });
});

describe("services that run a built service's image", () => {
  it("are pinned to the same digest, whatever tag they name", () => {
    const s = parseComposeStack(
      stackText(`
  worker:
    image: ghcr.io/acme/gold-tracker/api:latest
    command: ["worker"]
  other:
    image: ghcr.io/acme/gold-tracker/api-tools:1
`),
      "compose/docker-compose.prod.yml",
      PREFIX,
    );
    const shape = releaseShape(renderRelease(s, { api: D1, web: D2 }));
    expect(shape.images.worker).toBe(`${PREFIX}/api@${D1}`);
    expect(shape.images.other).toBe("ghcr.io/acme/gold-tracker/api-tools:1");
  });
});

describe("jobEnvOverride", () => {
  it("lets a job's `env_file: .env` read the release's own .env, and says nothing when no job needs it", () => {
    const release = `services:
  migrate: { image: a, env_file: [.env], x-vps-pipeline: { job: true } }
  seed: { image: a, env_file: [{ path: ./.env, required: false }], x-vps-pipeline: { job: true } }
  other: { image: a, env_file: ./app.env, x-vps-pipeline: { job: true } }
  web: { image: a, env_file: .env }
`;
    expect(JSON.parse(jobEnvOverride(release, ".releases/r1/.env")!)).toEqual({
      services: { migrate: { env_file: [".releases/r1/.env"] }, seed: { env_file: [".releases/r1/.env"] } },
    });
    expect(jobEnvOverride("services:\n  web: { image: a, env_file: .env }\n", "x")).toBeUndefined();
  });
});

describe("the compose check (`dagger check`, no settings given)", () => {
  it("renders the project's own production file without an image prefix, with a stand-in one", () => {
    const file = "compose/docker-compose.prod.yml";
    const out = parse(renderForCheck(readFileSync(file, "utf8"), file)) as {
      services: Record<string, { image?: string; build?: unknown }>;
    };
    expect(out.services.api!.image).toMatch(/^registry\.invalid\/check\/stack\/api@sha256:0{64}$/);
    expect(out.services.api!.build).toBeUndefined();
  });

  it("still refuses what cannot render, naming the field", () => {
    expect(() =>
      renderForCheck(
        "services:\n  api: { build: ./api, image: ghcr.io/acme/api, container_name: x, x-vps-pipeline: { jobb: true } }\n",
        "c.yml",
      ),
    ).toThrow(/services\.api\.x-vps-pipeline/);
  });
});
