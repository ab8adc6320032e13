/**
 * Stacks shaped like real ones, on a server that lives for months: release-phase
 * jobs, run-once services, profiles, pruned images, repeated rollbacks, hand edits.
 */
import { describe, expect, it } from "vitest";
import { parseComposeStack, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { rollback } from "../../.dagger/src/remote/rollback.js";
import { status, verify } from "../../.dagger/src/remote/verify.js";
import { auditSecrets } from "../testbed/audit.js";
import {
  bed,
  captureLog,
  containers,
  deployRequest,
  freshProject,
  history,
  registryPassword,
  releaseCompose,
  sh,
  sshOptions,
  webStatus,
  testEdge,
} from "../testbed/bed.js";

auditSecrets();

const HOME = "/home/deploy";
const target = (project: string) => ({ ssh: sshOptions(), dir: `production/${project}`, project });
const registry = { host: bed.registry.host, user: bed.registry.user, token: registryPassword };
const rollbackRequest = (project: string, over: Partial<Parameters<typeof rollback>[0]> = {}) => ({
  ...target(project),
  lockTimeoutSeconds: 30,
  healthTimeoutSeconds: 40,
  edge: testEdge,
  by: "vitest",
  log: () => {},
  registry,
  ...over,
});

/** The example stack with extra services (and any job command) appended, rendered for `version`. */
function stack(version: "v1" | "v2" | "v3", extra: string, jobCommand = "echo migrating; echo done"): string {
  const prod = sh("cat compose/docker-compose.prod.yml").replace(
    /command: \["sh", "-c", "[^"]*"\]/,
    `command: ["sh", "-c", ${JSON.stringify(jobCommand)}]`,
  );
  const s = parseComposeStack(`${prod}\n${extra}`, "compose/docker-compose.prod.yml", bed.registry.prefix);
  return renderRelease(s, {
    migrate: bed.images[`migrate:${version}`]!,
    api: bed.images[`api:${version}`]!,
    web: bed.images[`web:${version}`]!,
  });
}

const base = (version: "v1" | "v2") => `
  seed:
    image: ${bed.registry.prefix}/api@${bed.images[`api:${version}`]}
    command: ["sh", "-c", "echo seeded"]
    restart: "no"
  worker:
    image: ${bed.registry.prefix}/api@${bed.images[`api:${version}`]}
    init: true
    depends_on:
      seed: { condition: service_completed_successfully }
  debug:
    image: ${bed.registry.prefix}/api@${bed.images[`api:${version}`]}
    profiles: [debug]
  spare:
    image: ${bed.registry.prefix}/api@${bed.images[`api:${version}`]}
    scale: 0
`;

describe("release-phase jobs", () => {
  it("a job that succeeds runs before the switch, with the new release's .env and volumes, and leaves no container", async () => {
    freshProject("jobs");
    const api = `${bed.registry.prefix}/api@${bed.images["api:v1"]}`;
    const record = `
  record:
    image: ${api}
    environment: { MARKER: "\${MARKER}" }
    volumes: ["jobdata:/data"]
    command: ["sh", "-c", "echo marker=$$MARKER > /data/ran"]
    x-vps-pipeline: { job: true }
`;
    const out = captureLog();
    await deploy(
      deployRequest("jobs", 18201, {
        compose: stack("v1", `${base("v1")}${record}volumes:\n  jobdata: {}\n`),
        env: "WEB_PORT=18201\nMARKER=first\n",
        log: out.log,
      }),
    );
    const steps = out.lines.map((l) => l.split(/\s+/)[1]);
    expect(steps.indexOf("jobs")).toBeGreaterThan(steps.indexOf("pull"));
    expect(steps.indexOf("jobs")).toBeLessThan(steps.indexOf("switch"));
    expect(out.lines.find((l) => / jobs /.test(l))).toMatch(/migrate, record done/);
    expect(sh(`docker run --rm -v jobs_jobdata:/d ${api} cat /d/ran`).trim()).toBe("marker=first");
    expect(
      sh("docker ps -a --filter name=jobs-migrate-job --filter name=jobs-record-job --format '{{.Names}}'").trim(),
    ).toBe("");
    expect(history("jobs").at(-1)).toMatchObject({ result: "ok" });
  });

  it("a job that fails stops the deploy before the switch: nothing that runs changes, the error has its exit code and log tail", async () => {
    freshProject("jobfail");
    const first = await deploy(deployRequest("jobfail", 18202, { compose: stack("v1", base("v1")) }));
    const before = containers("jobfail");
    const err = await deploy(
      deployRequest("jobfail", 18202, {
        compose: stack("v2", base("v2"), "echo 'migration 0042: column gold.price already exists' >&2; exit 3"),
      }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "JOB_FAILED" });
    expect(String((err as Error).message)).toMatch(/`migrate` exited with code 3; nothing that runs was changed/);
    expect(String((err as Error).message)).toContain("migration 0042: column gold.price already exists");
    expect(containers("jobfail")).toEqual(before);
    expect(sh(`cat ${HOME}/production/jobfail/.releases/current`).trim()).toBe(first.release);
    expect((await webStatus(18202)).body).toContain("Version v1.");
    expect(history("jobfail").at(-1)).toMatchObject({ result: "failed", code: "JOB_FAILED" });
  });

  it("a job sees the project's own files as the stack does (relative bind mounts, env_file), and the new release's .env", async () => {
    freshProject("jobfiles");
    await deploy(deployRequest("jobfiles", 18208, { compose: releaseCompose("v1") }));
    sh(
      `mkdir -p ${HOME}/production/jobfiles/config && echo 'setting=from-the-project' > ${HOME}/production/jobfiles/config/app.conf && chown -R deploy:deploy ${HOME}/production/jobfiles/config`,
    );
    const api = `${bed.registry.prefix}/api@${bed.images["api:v1"]}`;
    const inspect = `
  inspect:
    image: ${api}
    env_file: [.env]
    volumes: ["./config:/config:ro"]
    command: ["sh", "-c", "cat /config/app.conf; echo marker=$$MARKER; exit 4"]
    x-vps-pipeline: { job: true }
`;
    const err = await deploy(
      deployRequest("jobfiles", 18208, {
        compose: stack("v1", `${base("v1")}${inspect}`),
        env: "WEB_PORT=18208\nMARKER=new-release\n",
      }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "JOB_FAILED", message: expect.stringMatching(/`inspect` exited with code 4/) });
    expect(String((err as Error).message)).toContain("setting=from-the-project");
    expect(String((err as Error).message)).toContain("marker=new-release");
  });

  it("a job that outlives its timeout is stopped and removed, and counts as failed", async () => {
    const slow = stack("v2", base("v2"), "sleep 60").replace("job: { timeout: 120 }", "job: { timeout: 2 }");
    const err = await deploy(deployRequest("jobfail", 18202, { compose: slow })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "JOB_FAILED", message: expect.stringMatching(/did not finish within 2s/) });
    expect(sh("docker ps -a --filter name=jobfail-migrate-job --format '{{.Names}}'").trim()).toBe("");
    expect((await webStatus(18202)).body).toContain("Version v1.");
  });
});

describe("the services a release expects", () => {
  it("a run-once service (exit 0, consumed by service_completed_successfully) counts as done; a profile service and scale 0 are not waited for", async () => {
    freshProject("shapes");
    const r = await deploy(
      deployRequest("shapes", 18203, { compose: stack("v1", base("v1")), healthTimeoutSeconds: 30 }),
    );
    expect(r.release).toBeTruthy();
    const report = await verify(target("shapes"), []);
    expect(report.problems).toEqual([]);
    expect(report.services.find((s) => s.service === "seed")).toMatchObject({ state: "exited", ok: true });
    expect(report.services.map((s) => s.service)).not.toContain("debug");
    expect(Object.keys(containers("shapes")).sort()).toEqual(["api", "web", "worker"]);
    // `docker container prune` takes the exited run-once container: it ran, verify does not call that a problem
    sh("docker rm shapes-seed-1 > /dev/null");
    expect((await verify(target("shapes"), [])).problems).toEqual([]);
  });
});

describe("rollback always has what it needs", () => {
  it("`rollback` after `docker image prune -a` pulls the old release's images back and returns to it", async () => {
    freshProject("pruned");
    const a = await deploy(deployRequest("pruned", 18204, { compose: releaseCompose("v1") }));
    await deploy(deployRequest("pruned", 18204, { compose: releaseCompose("v2") }));
    sh("docker image prune -a -f > /dev/null");
    expect(
      sh(
        `docker image inspect ${bed.registry.prefix}/api@${bed.images["api:v1"]} > /dev/null 2>&1 && echo present || echo gone`,
      ).trim(),
    ).toBe("gone");
    const st = await status(target("pruned"));
    expect(st.releases.find((x) => x.id === a.release)?.missing.length).toBeGreaterThan(0);
    const back = await rollback(rollbackRequest("pruned"));
    expect(back.release).toBe(a.release);
    expect((await webStatus(18204)).body).toContain("Version v1.");
    expect((await status(target("pruned"))).releases.find((x) => x.id === a.release)?.missing).toEqual([]);
  });

  it("the automatic rollback of a failed deploy works after the previous release's images were removed", async () => {
    freshProject("pruned2");
    const v2 = await deploy(deployRequest("pruned2", 18205, { compose: releaseCompose("v2") }));
    // the server lost the running release's containers and images (a clean-up gone too far)
    sh(
      "ids=$(docker ps -aq --filter label=com.docker.compose.project=pruned2); docker rm -f $ids > /dev/null; docker image prune -a -f > /dev/null",
    );
    const out = captureLog();
    const err = await deploy(
      deployRequest("pruned2", 18205, { compose: releaseCompose("v3"), healthTimeoutSeconds: 20, log: out.log }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "DEPLOY_ROLLED_BACK", message: expect.stringMatching(/healthy and serving/) });
    expect(out.lines.find((l) => / pull /.test(l))).toMatch(/images present for a rollback/);
    expect((await webStatus(18205)).body).toContain("Version v2.");
    expect(sh(`cat ${HOME}/production/pruned2/.releases/current`).trim()).toBe(v2.release);
  });

  it("A → B → C, then rollback twice: C → B → A, never back and forth", async () => {
    freshProject("abc");
    const a = await deploy(deployRequest("abc", 18206, { compose: releaseCompose("v1"), sha: "a".repeat(40) }));
    const b = await deploy(deployRequest("abc", 18206, { compose: releaseCompose("v2"), sha: "b".repeat(40) }));
    await deploy(deployRequest("abc", 18206, { compose: releaseCompose("v1"), sha: "c".repeat(40) }));
    expect((await rollback(rollbackRequest("abc"))).release).toBe(b.release);
    expect((await webStatus(18206)).body).toContain("Version v2.");
    expect((await rollback(rollbackRequest("abc"))).release).toBe(a.release);
    expect((await webStatus(18206)).body).toContain("Version v1.");
    const h = history("abc");
    expect(h.at(-1)).toMatchObject({ action: "rollback", release: a.release, sha: "a".repeat(40) });
    expect(await rollback(rollbackRequest("abc")).catch((e: unknown) => e)).toMatchObject({
      code: "RELEASE_NOT_FOUND",
    });
  });
});

describe("verify trusts the release record", () => {
  it("catches a hand edit of the live compose file and a container started from it", async () => {
    freshProject("drift");
    await deploy(deployRequest("drift", 18207, { compose: releaseCompose("v1") }));
    expect((await verify(target("drift"), [])).ok).toBe(true);
    sh(
      `cd ${HOME}/production/drift && sed -i 's|web@${bed.images["web:v1"]}|web@${bed.images["web:v2"]}|' docker-compose.yml && su deploy -c 'docker compose -p drift up -d --pull missing web' > /dev/null 2>&1`,
    );
    const r = await verify(target("drift"), []);
    expect(r.ok).toBe(false);
    expect(r.problems.join("\n")).toMatch(
      /live production\/drift\/docker-compose\.yml differs from the record of release/,
    );
    expect(r.problems.join("\n")).toMatch(/web: .*runs .*web@sha256.*release pins .*web@/);
  });

  it("catches a container of a service the release does not have", async () => {
    sh(
      `cd ${HOME}/production/drift && printf 'services:\\n  extra:\\n    image: ${bed.registry.prefix}/api@${bed.images["api:v1"]}\\n' > /tmp/extra.yml && chmod 644 /tmp/extra.yml && su deploy -c 'docker compose -p drift -f /tmp/extra.yml up -d' > /dev/null 2>&1`,
    );
    const r = await verify(target("drift"), []);
    expect(r.problems.join("\n")).toMatch(
      /container drift-extra-1 runs service `extra`, which release .* does not have/,
    );
  });
});
