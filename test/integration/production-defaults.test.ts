/**
 * The example app with Docker's default healthcheck timing instead of the test
 * bed's 1 s: no `interval`, so the first check runs 30 s after a start, and the
 * default --health-timeout (120 s). Slow on purpose (minutes): the sibling of
 * every fast test that passes only because the test bed's checks are quick.
 */
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULTS } from "../../.dagger/src/core/defaults.js";
import { checkBackup } from "../../.dagger/src/remote/data/backup-check.js";
import { restoreSnapshot, backup as takeBackup } from "../../.dagger/src/remote/data/data.js";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { rebuild } from "../../.dagger/src/remote/data/rebuild.js";
import { previewRelease } from "../../.dagger/src/core/preview/preview-release.js";
import { previewDir, previewEnv } from "../../.dagger/src/core/preview/preview.js";
import { deployPreview, previewDown } from "../../.dagger/src/remote/preview/preview.js";
import { auditSecrets } from "../testbed/audit.js";
import { dataStack } from "../testbed/data-stack.js";
import { openStreams, ownRollover, streamsCompose } from "../testbed/streams.js";
import {
  bed,
  deployRequest,
  freshProject,
  freshStack,
  history,
  onSwarm,
  registryPassword,
  releaseCompose,
  sh,
  sshOptions,
  swarmRequest,
  testEdge,
  webStatus,
} from "../testbed/bed.js";

// The scenarios run at once (different projects; each mostly waits on 30 s checks): the audit spans the file.
const BACKUP_PASSWORD = `defaults-${Date.now()}`;
auditSecrets(() => [registryPassword, BACKUP_PASSWORD], "file");

/** Docker's defaults: the healthchecks keep their test, lose their 1 s interval. */
const productionTiming = (t: string) => t.replace(/^ {6}interval: 1s\n/gm, "");

afterAll(async () => {
  freshProject("defaults");
  freshProject("defaults-data");
  freshProject("defaults-pv-pr-9");
  freshProject("defaults-live");
  await freshStack("swdefaults");
});

describe("production defaults (slow: Docker's 30 s healthcheck interval)", () => {
  it("the example's compose file really has no interval left", () => {
    expect(releaseCompose("v1", "v1", productionTiming)).not.toMatch(/interval/);
  });

  // alone, before the others, which then run at once: the preview scenario's first hostname replaces the edge
  // container, which closes every stream on the server (docs/edge.md: not yet solved)
  it("behind the edge, the streams app with 30 s checks: its own WebSockets and event streams end only once its new release answers", async () => {
    freshProject("defaults-live");
    const req = (v: "v1" | "v2") =>
      deployRequest("defaults-live", 18242, {
        compose: streamsCompose(v, { interval: "30s" }),
        env: "LIVE_PORT=18242\n",
        healthTimeoutSeconds: DEFAULTS.healthTimeout,
      });
    expect(req("v1").compose).toMatch(/interval: 30s/);
    await deploy(req("v1"));
    const own = await openStreams(bed.vps.hostIp, 18242, 3, 3);
    try {
      const t0 = Date.now();
      const { firstAnswered, closedAt } = await ownRollover(own, bed.vps.hostIp, 18242, "v2", () => deploy(req("v2")));
      // the new container's first check is 30 s after its start: until then the streams stay on v1
      expect(firstAnswered - t0).toBeGreaterThan(25_000);
      expect(closedAt.filter((t) => t === undefined)).toEqual([]);
      expect(Math.min(...(closedAt as number[]))).toBeGreaterThanOrEqual(firstAnswered - 60);
    } finally {
      own.close();
    }
  }, 600_000);

  it.concurrent(
    "one VPS: a first deploy and an upgrade succeed within the default --health-timeout",
    async () => {
      freshProject("defaults");
      const req = (v: "v1" | "v2") =>
        deployRequest("defaults", 18241, {
          compose: releaseCompose(v, v, productionTiming),
          healthTimeoutSeconds: DEFAULTS.healthTimeout,
        });
      await deploy(req("v1"));
      await deploy(req("v2"));
      expect((await webStatus(18241)).body).toContain("Version v2.");
      // only web's replica count changes: rolled over behind the edge, each new container waiting its first 30 s check
      const twice = releaseCompose("v2", "v2", (t) =>
        productionTiming(t).replace(
          "    init: true\n    restart: unless-stopped\n    depends_on:",
          "    init: true\n    deploy: { replicas: 2 }\n    restart: unless-stopped\n    depends_on:",
        ),
      );
      await deploy(deployRequest("defaults", 18241, { compose: twice, healthTimeoutSeconds: DEFAULTS.healthTimeout }));
      expect(
        sh(
          "docker ps -q --filter label=com.docker.compose.project=defaults --filter label=com.docker.compose.service=web",
        )
          .trim()
          .split("\n"),
      ).toHaveLength(2);
      expect(history("defaults").map((h) => h.result)).toEqual(["ok", "ok", "ok"]);
    },
    600_000,
  );

  it.concurrent(
    "one VPS with data: a physical snapshot before the job stops PostgreSQL; the job waits for it healthy again; a rebuild, a backup check and a restore wait for it too (30 s checks)",
    async () => {
      freshProject("defaults-data");
      expect(dataStack("v1", "{ volumes: [dbdata] }", "v1", "")).not.toMatch(/interval/);
      const backup = { password: BACKUP_PASSWORD, image: "vps-testbed/restic:0.14", keep: 3, keepDays: 0 };
      const req = (v: "v1" | "v2") =>
        deployRequest("defaults-data", 0, {
          compose: dataStack(v, "{ volumes: [dbdata] }", "v1", ""),
          env: "X=1\n",
          backup,
          healthTimeoutSeconds: DEFAULTS.healthTimeout,
        });
      await deploy(req("v1"));
      const r = await deploy(req("v2"));
      expect(r.durations.snapshot).toBeGreaterThan(0);
      expect(history("defaults-data").map((h) => h.result)).toEqual(["ok", "ok"]);
      expect(history("defaults-data").at(-1)?.snapshots).toEqual([expect.stringMatching(/^db:/)]);
      expect(
        sh(`docker exec defaults-data-db-1 psql -U postgres -d gold -tAc "select count(*) from prices"`).trim(),
      ).toBe("2");
      // Docker was reinstalled: containers, volumes and releases gone, the repository kept; rebuilt from it, each wait
      // a 30 s check
      const [snap] = await takeBackup(req("v2"));
      sh(
        "ids=$(docker ps -aq --filter label=com.docker.compose.project=defaults-data); docker rm -f $ids > /dev/null; docker volume rm $(docker volume ls -q --filter label=com.docker.compose.project=defaults-data) > /dev/null; rm -rf /home/deploy/production/defaults-data/.releases",
      );
      const back = await rebuild(req("v2"));
      expect(back.restored).toEqual([`db:${snap!.id.slice(0, 12)}`]);
      expect(
        sh(`docker exec defaults-data-db-1 psql -U postgres -d gold -tAc "select count(*) from prices"`).trim(),
      ).toBe("2");
      const [checked] = await checkBackup(req("v2"));
      expect(checked).toMatchObject({ id: snap!.id, result: expect.stringMatching(/no check command declared/) });
      // a restore swaps the data in and keeps what it replaced until the first 30 s check says healthy
      const rows = () =>
        sh(`docker exec defaults-data-db-1 psql -U postgres -d gold -tAc "select count(*) from prices"`).trim();
      sh(
        `docker exec defaults-data-db-1 psql -U postgres -d gold -qc "insert into prices values ('2026-02-01', 1, 1)"`,
      );
      expect(rows()).toBe("3");
      await restoreSnapshot({ ...req("v2"), snapshot: snap!.id.slice(0, 8) });
      expect(sh("docker inspect --format '{{.State.Health.Status}}' defaults-data-db-1").trim()).toBe("healthy");
      expect(rows()).toBe("2");
      expect(
        sh(`docker run --rm --network none -v defaults-data_dbdata:/v --entrypoint ls ${backup.image} -a /v`),
      ).not.toMatch(/vps-pipeline-(replaced|restore)/);
    },
    600_000,
  );

  it.concurrent(
    "a preview: its first deploy and a push wait for 30 s checks, it answers at its hostname, preview-down leaves nothing",
    async () => {
      freshProject("defaults-pv-pr-9");
      const prod = {
        ssh: sshOptions(),
        dir: "production/defaults-pv",
        project: "defaults-pv",
        lockTimeoutSeconds: 120,
        edge: testEdge,
      };
      const settings = {
        domain: "defaults.vps-testbed.internal",
        limit: 5,
        whenFull: "evict" as const,
        ttlHours: 0,
        memory: "512m",
        cpus: "1",
        seed: "",
      };
      const name = "pr-9.defaults.vps-testbed.internal";
      const req = (v: "v1" | "v2") => {
        const p = previewRelease(releaseCompose(v, v, productionTiming), 9, { ...settings, project: prod.project });
        const env = previewEnv("GOLD_API_KEY=not-a-real-key\n", {
          VPS_PREVIEW_PR: "9",
          VPS_PREVIEW_URL: p.url!,
          VPS_PREVIEW_HOST: name,
        });
        return {
          ...deployRequest("defaults-pv-pr-9", 0, {
            dir: previewDir(prod.dir, 9),
            compose: p.compose,
            env,
            healthTimeoutSeconds: DEFAULTS.healthTimeout,
          }),
          confined: p.hostPaths,
        };
      };
      await deployPreview(prod, 9, settings, req("v1"));
      const r = await deployPreview(prod, 9, settings, req("v2"));
      expect(r.durations.switch ?? 0).toBeGreaterThan(25); // the new web waited for its first check, 30 s after its start
      expect(history("defaults-pv-pr-9").map((h) => h.result)).toEqual(["ok", "ok"]);
      const ca = "/tmp/vps-testbed/defaults-edge-root.crt";
      sh(`docker exec vps-pipeline-edge cat /vps-pipeline/data/caddy/pki/authorities/local/root.crt > ${ca}`);
      let body = "";
      for (let i = 0; i < 40 && !body.includes("Version v2."); i++) {
        body = sh(`curl -s -m 3 --cacert ${ca} --resolve ${name}:443:${bed.vps.hostIp} https://${name}/ || true`);
        if (!body.includes("Version v2.")) await new Promise((x) => setTimeout(x, 250));
      }
      expect(body).toContain("Version v2.");
      await previewDown({ ...prod, log: () => {}, by: "vitest" }, { prs: [9] });
      expect(
        sh(
          "docker ps -aq --filter label=com.docker.compose.project=defaults-pv-pr-9; docker volume ls -q --filter label=com.docker.compose.project=defaults-pv-pr-9",
        ).trim(),
      ).toBe("");
    },
    600_000,
  );

  it.concurrent(
    "a swarm: an upgrade that swarm monitors for 120 s after the task is healthy converges instead of being rolled back",
    async () => {
      await freshStack("swdefaults");
      const req = (v: "v1" | "v2") =>
        swarmRequest(
          "swdefaults",
          18242,
          v,
          { healthTimeoutSeconds: DEFAULTS.healthTimeout, env: "WEB_PORT=18242\n" },
          productionTiming,
        );
      await deploy(req("v1"));
      const r = await deploy(req("v2"));
      expect(history("swdefaults").map((h) => h.result)).toEqual(["ok", "ok"]);
      // the wait outlasted the default --health-timeout: swarm's monitor window was in the budget
      expect(r.durations.health ?? 0).toBeGreaterThan(DEFAULTS.healthTimeout / 2);
      expect(onSwarm("service inspect swdefaults_api --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'")).toContain(
        bed.images["api:v2"]!,
      );
    },
    900_000,
  );
});
