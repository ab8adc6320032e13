/**
 * Preview stacks, the pure part: a release made safe to run beside production
 * (on the example app, on stacks with names, binds and ports, on the public
 * corpus), the preview's .env, the list status shows, and what the limits remove.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import {
  composeData,
  parseComposeStack,
  renderForCheck,
  renderRelease,
  releaseShape,
} from "../../.dagger/src/core/compose/compose.js";
import { PUBLISHED_LABEL } from "../../.dagger/src/core/edge/edge.js";
import { isPipelineError } from "../../.dagger/src/core/errors.js";
import {
  dockerSize,
  listPreviews,
  previewsFrom,
  removePreview,
} from "../../.dagger/src/core/preview/preview-commands.js";
import { previewHosts, previewRelease } from "../../.dagger/src/core/preview/preview-release.js";
import {
  previewDir,
  previewEnv,
  previewProject,
  previewsToRemove,
  type PreviewInfo,
} from "../../.dagger/src/core/preview/preview.js";

const settings = { domain: "preview.example.com", memory: "512m", cpus: "1", project: "shop" };
const digest = `sha256:${"a".repeat(64)}`;
type Service = {
  ports?: unknown;
  labels?: Record<string, string> | string[];
  container_name?: string;
  networks?: Record<string, { aliases?: string[] }>;
  deploy?: { resources?: { limits?: Record<string, unknown> } };
  "x-vps-pipeline"?: { http?: { host?: string }; data?: unknown };
};
const services = (text: string) => (parse(text) as { services: Record<string, Service> }).services;

const example = () => {
  const stack = parseComposeStack(
    readFileSync("compose/docker-compose.prod.yml", "utf8"),
    "compose/docker-compose.prod.yml",
    "ghcr.io/acme/gold",
  );
  return renderRelease(stack, { migrate: digest, api: digest, web: digest });
};

describe("a release as a preview", () => {
  it("the example app: no host port, web at pr-<n>.<domain> with no port route, caps on every service, jobs as in production", () => {
    const p = previewRelease(example(), 42, settings);
    const s = services(p.compose);
    expect(p.url).toBe("https://pr-42.preview.example.com");
    expect(p.hosts).toEqual({ web: "pr-42.preview.example.com" });
    expect(s.web?.["x-vps-pipeline"]?.http?.host).toBe("pr-42.preview.example.com");
    expect((s.web?.labels as Record<string, string>)[PUBLISHED_LABEL]).toBe("");
    for (const [name, svc] of Object.entries(s)) {
      expect(svc.ports, name).toBeUndefined();
      expect(svc.deploy?.resources?.limits, name).toEqual({ memory: "512m", cpus: "1" });
    }
    const shape = releaseShape(p.compose);
    expect(shape.jobs.map((j) => j.service)).toEqual(["migrate"]);
    expect(shape.http).toEqual([expect.objectContaining({ service: "web", host: "pr-42.preview.example.com" })]);
  });

  it("a stack with a database publishing its port, a fixed container name, its own caps and data: made the preview's own", () => {
    const release = [
      "services:",
      "  web:",
      "    image: ghcr.io/acme/app/web@" + digest,
      '    labels: ["team=shop"]',
      "    x-vps-pipeline: { http: { port: 80, host: shop.example.com } }",
      "  admin:",
      "    image: ghcr.io/acme/app/admin@" + digest,
      "    x-vps-pipeline: { http: { port: 80 } }",
      "  db:",
      "    image: postgres:16",
      "    container_name: shop-db",
      '    ports: ["5432:5432"]',
      "    networks: [back]",
      '    volumes: ["dbdata:/var/lib/postgresql/data", "./conf/pg.conf:/etc/pg.conf:ro", "/scratch"]',
      "    deploy: { resources: { limits: { memory: 2g } } }",
      "    x-vps-pipeline: { data: { volumes: [dbdata] } }",
      "volumes:",
      "  dbdata: {}",
      "networks:",
      "  back: {}",
    ].join("\n");
    const p = previewRelease(release, 7, settings);
    const s = services(p.compose);
    expect(p.hosts).toEqual({ web: "pr-7.preview.example.com", admin: "pr-7-admin.preview.example.com" });
    // and the preview's mark, on each service and each volume and network (the default one declared for it)
    expect(s.web?.labels).toEqual(["team=shop", `${PUBLISHED_LABEL}=`, "io.vps-pipeline.preview=shop/pr-7"]);
    const top = composeData(p.compose) as {
      volumes: Record<string, { labels: unknown }>;
      networks: Record<string, { labels: unknown }>;
    };
    expect(top.volumes.dbdata!.labels).toEqual({ "io.vps-pipeline.preview": "shop/pr-7" });
    expect(Object.keys(top.networks).sort()).toEqual(["back", "default"]);
    for (const n of Object.values(top.networks)) expect(n.labels).toEqual({ "io.vps-pipeline.preview": "shop/pr-7" });
    expect(s.db?.ports).toBeUndefined();
    expect(s.db?.container_name).toBe("shop-db-pr-7");
    expect(s.db?.networks).toEqual({ back: { aliases: ["shop-db"] } });
    expect(s.db?.deploy?.resources?.limits).toEqual({ memory: "2g", cpus: "1" });
    expect(s.db?.["x-vps-pipeline"]?.data).toBeUndefined();
    expect(releaseShape(p.compose).data).toEqual([]);
    expect(p.notes.join("\n")).toMatch(/ports of db not published/);
  });

  it("what would share something with production is refused, every problem at once, naming the field and the fix", () => {
    const release = [
      "services:",
      "  app:",
      "    image: nginx:1",
      "    network_mode: host",
      '    volumes: ["/srv/shop/uploads:/uploads", { type: bind, source: /srv/shop/media, target: /media }]',
      "volumes:",
      "  data: { name: shop_data }",
      "  old: { external: true }",
      "networks:",
      "  proxy: { external: true }",
    ].join("\n");
    const err = (() => {
      try {
        previewRelease(release, 3, settings);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({ code: "INVALID_INPUT" });
    const msg = (err as Error).message;
    for (const field of [
      "services.app.network_mode",
      "services.app.volumes[0]: the host path `/srv/shop/uploads`",
      "services.app.volumes[1].source: the host path `/srv/shop/media`",
      "volumes.data.name",
      "volumes.old.external",
      "networks.proxy.external",
    ])
      expect(msg).toContain(field);
    expect((err as { hint: string }).hint).toMatch(/nothing was changed/);
  });

  it("every file of the public corpus becomes a preview or is refused naming the field; no preview publishes a port or keeps a fixed container name", () => {
    const corpus = join(process.cwd(), "../shared/compose-corpus/awesome-compose");
    const files = existsSync(corpus) ? readdirSync(corpus).filter((f) => /\.ya?ml$/.test(f)) : [];
    expect(files.length).toBe(39);
    let made = 0;
    for (const f of files) {
      let release: string;
      try {
        release = renderForCheck(readFileSync(join(corpus, f), "utf8"), `compose/${f}`, "ghcr.io/acme/app");
      } catch {
        continue; // refused for production already (real-compose-files.test.ts)
      }
      try {
        const s = services(previewRelease(release, 5, settings).compose);
        for (const [name, svc] of Object.entries(s)) {
          expect(svc.ports, `${f} ${name}`).toBeUndefined();
          if (svc.container_name !== undefined) expect(svc.container_name, f).toMatch(/-pr-5$/);
        }
        made++;
      } catch (e) {
        expect(isPipelineError(e), `${f}: ${String(e)}`).toBe(true);
        expect((e as Error).message, f).toMatch(/(services|volumes|networks)\.[\w.-]+/);
      }
    }
    expect(made).toBeGreaterThanOrEqual(30);
  });

  it("the seed the user names runs as the preview's last job; production never starts it; a wrong name is refused", () => {
    const release = example().replace(
      "services:\n",
      "services:\n  seed:\n    image: ghcr.io/acme/gold/api@" +
        digest +
        "\n    command: [./seed]\n    profiles: [seed]\n",
    );
    expect(releaseShape(release).jobs.map((j) => j.service)).toEqual(["migrate"]);
    expect(releaseShape(release).optional).toContain("seed");
    const p = previewRelease(release, 3, { ...settings, seed: "seed" });
    expect(releaseShape(p.compose).jobs.map((j) => j.service)).toEqual(["migrate", "seed"]);
    expect(() => previewRelease(release, 3, { ...settings, seed: "sede" })).toThrow(
      /previewSeed: `sede` is no service of the release/,
    );
    expect(() => previewRelease(release, 3, { ...settings, seed: "web" })).toThrow(
      /services\.web: the preview seed runs once per deploy/,
    );
  });

  it("hostnames stay one level under the wildcard and valid for any service name", () => {
    expect(previewHosts([{ service: "api" }, { service: "Web_UI.v2" }], 12, "p.example.com")).toEqual({
      api: "pr-12.p.example.com",
      "Web_UI.v2": "pr-12-web-ui-v2.p.example.com",
    });
  });
});

describe("names, .env and the list", () => {
  it("the preview is a project and a folder of its own, beside production's", () => {
    expect(previewProject("gold", 42)).toBe("gold-pr-42");
    expect(previewDir("production/gold/", 42)).toBe("production/gold-pr-42");
  });

  it("the preview .env starts with the preview's variables and has them replaced where the secret names them", () => {
    const env = previewEnv("APP_URL=${VPS_PREVIEW_URL}\nDB_NAME=app_${VPS_PREVIEW_PR}\nOTHER=${HOME}", {
      VPS_PREVIEW_PR: "42",
      VPS_PREVIEW_URL: "https://pr-42.p.example.com",
      VPS_PREVIEW_HOST: "pr-42.p.example.com",
    });
    expect(env).toBe(
      "VPS_PREVIEW_PR=42\nVPS_PREVIEW_URL=https://pr-42.p.example.com\nVPS_PREVIEW_HOST=pr-42.p.example.com\nAPP_URL=https://pr-42.p.example.com\nDB_NAME=app_42\nOTHER=${HOME}\n",
    );
    expect(previewEnv(undefined, { VPS_PREVIEW_PR: "1", VPS_PREVIEW_URL: "", VPS_PREVIEW_HOST: "" })).toBe(
      "VPS_PREVIEW_PR=1\nVPS_PREVIEW_URL=\nVPS_PREVIEW_HOST=\n",
    );
  });

  it("the list reads each preview's release, last push, URL and its own containers' and volumes' sizes", () => {
    const df = JSON.stringify({
      Containers: [
        { Labels: "com.docker.compose.project=gold-pr-4,com.docker.compose.service=web", Size: "1.5kB" },
        { Labels: "com.docker.compose.project=gold-pr-40", Size: "9MB" },
        { Labels: "com.docker.compose.project=gold", Size: "7MB" },
      ],
      Volumes: [{ Labels: "com.docker.compose.project=gold-pr-4,com.docker.compose.volume=data", Size: "104.9MB" }],
    });
    const out = `preview 40 - 1764547200 -\npreview 4 20261201T070000.000Z-abc1234 1764550800 https://pr-4.p.example.com\n=== df\n${df}\n`;
    expect(previewsFrom(out, "gold")).toEqual([
      {
        pr: 4,
        project: "gold-pr-4",
        release: "20261201T070000.000Z-abc1234",
        lastDeploy: "2025-12-01T01:00:00.000Z",
        url: "https://pr-4.p.example.com",
        bytes: 104_901_500,
      },
      { pr: 40, project: "gold-pr-40", release: "", lastDeploy: "2025-12-01T00:00:00.000Z", url: "", bytes: 9_000_000 },
    ]);
    expect(dockerSize("0B")).toBe(0);
    expect(dockerSize("2GB")).toBe(2e9);
  });

  it("the commands take the folder and project as arguments, never spliced into the script", () => {
    expect(listPreviews("production/gold", "gold").slice(-2)).toEqual(["production/gold", "gold"]);
    expect(removePreview("gold-pr-4", "production/gold-pr-4", "production/gold", 4, "gold").slice(-6)).toEqual([
      "gold-pr-4",
      "production/gold-pr-4",
      "production/gold",
      "4",
      "gold",
      "gold/pr-4",
    ]);
    for (const argv of [listPreviews("x", "y"), removePreview("a", "b", "c", 1, "d")])
      expect(argv[2]).not.toMatch(/gold|production/);
  });
});

describe("limits", () => {
  const now = new Date("2026-12-01T12:00:00Z");
  const live = (pr: number, hoursAgo: number): PreviewInfo => ({
    pr,
    project: `gold-pr-${pr}`,
    release: "r",
    url: "",
    bytes: 0,
    lastDeploy: new Date(now.getTime() - hoursAgo * 3_600_000).toISOString(),
  });
  const s = { limit: 2, whenFull: "evict" as const, ttlHours: 48 };

  it("previews idle longer than the TTL go; 0 keeps them", () => {
    expect(previewsToRemove([live(1, 49), live(2, 1)], 3, s, now)).toEqual({ expired: [live(1, 49)], evicted: [] });
    expect(previewsToRemove([live(1, 490)], 3, { ...s, ttlHours: 0 }, now).expired).toEqual([]);
  });

  it("at the limit a new preview evicts the one pushed longest ago, or is refused; a push to a live one never evicts", () => {
    const two = [live(1, 2), live(2, 5)];
    expect(previewsToRemove(two, 3, s, now).evicted.map((p) => p.pr)).toEqual([2]);
    expect(previewsToRemove(two, 3, { ...s, whenFull: "refuse" }, now).refused).toMatch(
      /2 previews are live \(#2, #1\), the limit is 2/,
    );
    expect(previewsToRemove(two, 1, { ...s, limit: 1 }, now)).toEqual({ expired: [], evicted: [] });
    // a limit lowered below what lives: enough go for the new one to fit
    expect(
      previewsToRemove([live(1, 1), live(2, 2), live(3, 3)], 4, { ...s, limit: 1 }, now).evicted.map((p) => p.pr),
    ).toEqual([3, 2, 1]);
  });
});

describe("keys written empty (issue 32, case 6)", () => {
  it("a service whose deploy: (or x-vps-pipeline:) is empty gets its caps, never an uncoded YAML error", () => {
    const p = previewRelease("services:\n  api:\n    image: redis:7\n    deploy:\n    x-vps-pipeline:\n", 5, settings);
    const api = (parse(p.compose) as { services: Record<string, { deploy: unknown }> }).services.api!;
    expect(api.deploy).toEqual({ resources: { limits: { memory: "512m", cpus: "1" } } });
  });
});
