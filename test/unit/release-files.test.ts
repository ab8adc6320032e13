/** What a release carries from the repository, and what stays the server's. */
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { parseComposeStack, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import { FILES_DIR, fileRefs, releaseFiles, type Found } from "../../.dagger/src/core/release/release-files.js";

const FILE = "compose/docker-compose.prod.yml";
const text = [
  "services:",
  "  proxy:",
  "    image: nginx:1.27",
  "    volumes:",
  "      - ./nginx/nginx.conf:/etc/nginx/conf.d/default.conf:ro",
  "      - ./site:/usr/share/nginx/html",
  "      - ./pgdata:/var/lib/data",
  "      - cache:/var/cache",
  "      - /srv/shared:/shared",
  "      - type: bind",
  "        source: ./extra.conf",
  "        target: /etc/extra.conf",
  "    env_file: [.env, ./proxy.env]",
  "    secrets: [db_password]",
  "    configs: [prom]",
  "secrets:",
  "  db_password: { file: ./db/password.txt }",
  "configs:",
  "  prom: { file: ../monitoring/prometheus.yml }",
  "volumes:",
  "  cache: {}",
].join("\n");

const found = new Map<string, Found>([
  ["compose/nginx/nginx.conf", { type: "file", content: "server { listen 80; }\n" }],
  [
    "compose/site",
    {
      type: "dir",
      files: [
        { path: "index.html", content: "<h1>hi</h1>\n" },
        { path: "css/app.css", content: "h1{}\n" },
      ],
    },
  ],
  ["compose/extra.conf", { type: "file", content: "x=1\n" }],
  ["compose/proxy.env", { type: "file", content: "A=1\n" }],
  ["compose/db/password.txt", { type: "file", content: "hunter2\n" }],
  ["monitoring/prometheus.yml", { type: "file", content: "scrape_configs: []\n" }],
]);

describe("the files a release carries", () => {
  const stack = parseComposeStack(text, FILE);
  const refs = fileRefs(stack.doc.toJS(), FILE);

  it("finds every relative path the file takes from its folder, never a named volume, an absolute path or the production .env", () => {
    expect(refs.map((r) => [r.field, r.kind, r.sourcePath])).toEqual([
      ["services.proxy.volumes[0]", "bind", "compose/nginx/nginx.conf"],
      ["services.proxy.volumes[1]", "bind", "compose/site"],
      ["services.proxy.volumes[2]", "bind", "compose/pgdata"],
      ["services.proxy.volumes[5].source", "bind", "compose/extra.conf"],
      ["services.proxy.env_file[1]", "env_file", "compose/proxy.env"],
      ["configs.prom.file", "config", "monitoring/prometheus.yml"],
      ["secrets.db_password.file", "secret", "compose/db/password.txt"],
    ]);
  });

  it("ships what is in the repository by content, leaves the rest as the server's data, and points the release at the copies", () => {
    const rf = releaseFiles(refs, found);
    expect(rf.serverData.map((r) => r.written)).toEqual(["./pgdata"]);
    const out = parse(renderRelease(stack, {}, rf.rewrites)) as {
      services: { proxy: { volumes: unknown[]; env_file: string[] } };
      secrets: Record<string, { file: string }>;
      configs: Record<string, { file: string }>;
    };
    const v = out.services.proxy.volumes;
    expect(v[0]).toMatch(
      new RegExp(`^\\./${FILES_DIR}/[0-9a-f]{16}/nginx\\.conf:/etc/nginx/conf\\.d/default\\.conf:ro$`),
    );
    expect(v[1]).toMatch(new RegExp(`^\\./${FILES_DIR}/[0-9a-f]{16}/site:/usr/share/nginx/html$`));
    expect(v.slice(2, 5)).toEqual(["./pgdata:/var/lib/data", "cache:/var/cache", "/srv/shared:/shared"]);
    expect((v[5] as { source: string }).source).toMatch(/extra\.conf$/);
    expect(out.services.proxy.env_file[0]).toBe(".env");
    expect(out.secrets.db_password!.file).toMatch(/password\.txt$/);
    expect(rf.files.map((f) => [f.path.replace(/[0-9a-f]{16}/, "H"), f.mode])).toEqual([
      [`${FILES_DIR}/H/nginx.conf`, "644"],
      [`${FILES_DIR}/H/site/index.html`, "644"],
      [`${FILES_DIR}/H/site/css/app.css`, "644"],
      [`${FILES_DIR}/H/extra.conf`, "644"],
      [`${FILES_DIR}/H/proxy.env`, "644"],
      [`${FILES_DIR}/H/prometheus.yml`, "644"],
      [`${FILES_DIR}/H/password.txt`, "600"],
    ]);
    expect(rf.notes.join()).toMatch(/secrets\.db_password\.file: compose\/db\/password\.txt is a secret kept in Git/);
    expect(JSON.stringify(rf.manifest)).not.toContain("hunter2");
  });

  it("an unchanged file keeps its path (nothing recreated); a changed one gets a new path (exactly what mounts it is recreated)", () => {
    const a = releaseFiles(refs, found);
    const b = releaseFiles(
      refs,
      new Map([
        ...found,
        ["compose/nginx/nginx.conf", { type: "file", content: "server { listen 8080; }\n" } as Found],
      ]),
    );
    expect(b.rewrites.get("services.proxy.volumes[1]")).toBe(a.rewrites.get("services.proxy.volumes[1]"));
    expect(b.rewrites.get("services.proxy.volumes[0]")).not.toBe(a.rewrites.get("services.proxy.volumes[0]"));
  });

  it("refuses, naming the field, a config that is not in the repository and a file over the limit", () => {
    expect(() => releaseFiles(refs, new Map([...found].filter(([k]) => k !== "monitoring/prometheus.yml")))).toThrow(
      /configs\.prom\.file: `\.\.\/monitoring\/prometheus\.yml` is not in the repository/,
    );
    expect(() =>
      releaseFiles(
        refs,
        new Map([...found, ["compose/extra.conf", { type: "file", content: "x".repeat(1024 * 1024 + 1) } as Found]]),
      ),
    ).toThrow(/services\.proxy\.volumes\[5\]\.source: compose\/extra\.conf is 1048577 bytes/);
  });

  it("an env file kept out of Git (.env.production) is the production .env the pipeline writes", () => {
    const stack = parseComposeStack("services:\n  api:\n    image: x\n    env_file: .env.production\n", FILE);
    const rf = releaseFiles(fileRefs(stack.doc.toJS(), FILE), new Map());
    expect(
      (parse(renderRelease(stack, {}, rf.rewrites)) as { services: { api: { env_file: string } } }).services.api
        .env_file,
    ).toBe(".env");
    expect(rf.notes.join()).toMatch(
      /services\.api\.env_file: \.env\.production is not in the repository; the production \.env/,
    );
  });

  it("a path that leaves the source is the server's, as written", () => {
    const r = fileRefs(
      parseComposeStack("services:\n  a:\n    image: x\n    volumes: ['../../outside:/x']\n", "c.yml").doc.toJS(),
      "c.yml",
    );
    expect(r[0]!.sourcePath).toBeUndefined();
    expect(releaseFiles(r, new Map()).serverData).toHaveLength(1);
  });
});

describe("shipped files on a swarm", () => {
  it("configs, secrets and env files are read by stack deploy in the release's folder; a bind mount of a shipped file is refused", async () => {
    const { renderSwarmRelease } = await import("../../.dagger/src/core/swarm/swarm-release.js");
    const release = `services:\n  api:\n    image: x@sha256:${"1".repeat(64)}\n    env_file: [./${FILES_DIR}/0123456789abcdef/api.env]\n    configs: [prom]\nconfigs:\n  prom: { file: ./${FILES_DIR}/fedcba9876543210/prometheus.yml }\n`;
    const sw = parse(renderSwarmRelease(release).stack) as {
      services: { api: { env_file: string[] } };
      configs: { prom: { file: string } };
    };
    expect(sw.services.api.env_file).toEqual(["../files/0123456789abcdef/api.env"]);
    expect(sw.configs.prom.file).toBe("../files/fedcba9876543210/prometheus.yml");
    expect(() =>
      renderSwarmRelease(
        `services:\n  api:\n    image: x\n    volumes: ["./${FILES_DIR}/0123456789abcdef/nginx.conf:/etc/nginx.conf"]\n`,
      ),
    ).toThrow(/services\.api\.volumes\[0\]: a file from the repository bind-mounted on a swarm/);
  });
});

describe("env files as compose reads them (issue 32, case 5)", () => {
  const refsOf = (services: string, vars = new Map<string, string>()) =>
    fileRefs((parse(`services:\n${services}`) as unknown) ?? {}, "compose.yaml", vars);

  it("finds an env file behind a variable where compose will, and ships it when the repository has it", () => {
    const refs = refsOf(
      `  app: { image: x, env_file: "./config/\${APP_ENV:-prod}.env" }\n`,
      new Map([["APP_ENV", "eu"]]),
    );
    expect(refs.map((r) => r.sourcePath)).toEqual(["config/eu.env"]);
    const rf = releaseFiles(refs, new Map([["config/eu.env", { type: "file", content: "REGION=eu\n" }]]));
    expect(rf.files.map((f) => f.content)).toEqual(["REGION=eu\n"]);
  });

  it("refuses two env files kept out of Git, naming both: one production .env cannot be both", () => {
    const refs = refsOf("  app: { image: x, env_file: .env.app }\n  db: { image: y, env_file: [.db.env] }\n");
    expect(() => releaseFiles(refs, new Map())).toThrow(
      /services\.app\.env_file \(\.env\.app\) and services\.db\.env_file\[0\] \(\.db\.env\): these env files are not in the repository, and only one can be the production \.env/,
    );
    // the same file for both is one .env
    expect(() =>
      releaseFiles(
        refsOf("  app: { image: x, env_file: .env.prod }\n  db: { image: y, env_file: .env.prod }\n"),
        new Map(),
      ),
    ).not.toThrow();
  });

  it("skips an optional env file that is not there, as compose does, instead of reading the whole .env there", () => {
    const rf = releaseFiles(
      refsOf("  app: { image: x, env_file: [{ path: ./local.env, required: false }] }\n"),
      new Map(),
    );
    expect(rf.rewrites.size).toBe(0);
    expect(rf.notes).toEqual([
      "services.app.env_file[0]: ./local.env is not in the repository and optional: compose skips it",
    ]);
  });
});
