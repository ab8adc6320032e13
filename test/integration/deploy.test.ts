/**
 * The deploy flow against the test bed: a real sshd in its own network namespace,
 * the real Docker engine and compose v2, a registry with TLS and auth.
 */
import { afterEach, describe, expect, it } from "vitest";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { parseHistory } from "../../.dagger/src/core/release.js";
import { bed, captureLog, containers, deployRequest, filesContaining, registryPassword, privateKey, releaseCompose, sampleProcesses, sh, webStatus } from "./testbed.js";

const HOME = "/home/deploy";
let printed: string[] = [];

/** Every scenario ends with the same audit: no secret in a file under the deploy user's home, in the history, or in what we printed. */
afterEach(() => {
  expect(filesContaining(HOME, registryPassword)).toEqual([]);
  const keyBody = privateKey.split("\n")[1]!;
  expect(filesContaining(HOME, keyBody)).toEqual([]);
  expect(printed.join("\n")).not.toContain(registryPassword);
  expect(sh(`ls -a ${HOME}/production/*/.releases 2>/dev/null || true`)).not.toMatch(/\.auth-/);
  printed = [];
});

function history(project: string) {
  return parseHistory(sh(`cat ${HOME}/production/${project}/.releases/history.jsonl`));
}

describe("deploy", () => {
  it("first deploy on an empty server brings the stack up, pinned by digest, without leaving credentials", async () => {
    sh(`rm -rf ${HOME}/production/first`);
    const out = captureLog();
    printed = out.lines;
    const sampler = sampleProcesses(registryPassword);
    const r = await deploy(deployRequest("first", 18081, { log: out.log }));
    const ps = await sampler.stop();

    expect(ps.samples).toBeGreaterThan(10);
    expect(ps.hits).toEqual([]);
    expect(r.previous).toBeUndefined();
    expect((await webStatus(18081)).body).toContain("Version v1.");
    const running = sh(`docker inspect --format '{{.Config.Image}}' ${Object.values(containers("first")).join(" ")}`);
    expect(running).toContain(`${bed.registry.prefix}/api@${bed.images["api:v1"]}`);
    expect(running).toContain(`${bed.registry.prefix}/web@${bed.images["web:v1"]}`);
    expect(sh(`stat -c %a ${HOME}/production/first/.env`).trim()).toBe("600");
    expect(sh(`cat ${HOME}/production/first/.releases/current`).trim()).toBe(r.release);
    expect(out.lines.map((l) => l.split(/\s+/)[1])).toEqual(["connect", "lock", "preflight", "upload", "pull", "switch", "health", "record", "prune"]);
    const h = history("first");
    expect(h).toHaveLength(1);
    expect(h[0]).toMatchObject({ release: r.release, result: "ok", by: "vitest" });
    // the docker config of the deploy user was never written
    expect(sh(`ls -a ${HOME}/.docker`)).not.toContain("config.json");
  });

  it("upgrades v1 to v2, and the same deploy twice changes nothing that runs", async () => {
    sh(`rm -rf ${HOME}/production/upgrade`);
    await deploy(deployRequest("upgrade", 18082));
    const r2 = await deploy(deployRequest("upgrade", 18082, { compose: releaseCompose("v2") }));
    expect((await webStatus(18082)).body).toContain("Version v2.");
    const before = containers("upgrade");
    const r3 = await deploy(deployRequest("upgrade", 18082, { compose: releaseCompose("v2") }));
    expect(containers("upgrade")).toEqual(before);
    expect(r3.previous).toBe(r2.release);
    expect(history("upgrade").map((h) => h.result)).toEqual(["ok", "ok", "ok"]);
  });

  it("an unhealthy v3 is rolled back automatically: v2 keeps serving, the result is a failure that says so", async () => {
    sh(`rm -rf ${HOME}/production/rollback`);
    await deploy(deployRequest("rollback", 18083, { compose: releaseCompose("v2") }));
    const out = captureLog();
    printed = out.lines;
    const err = await deploy(deployRequest("rollback", 18083, { compose: releaseCompose("v3"), log: out.log, healthTimeoutSeconds: 40 })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "DEPLOY_ROLLED_BACK" });
    expect(String((err as Error).message)).toMatch(/unhealthy.*rolled back to .*healthy and serving/s);
    expect((await webStatus(18083)).body).toContain("Version v2.");
    const h = history("rollback");
    expect(h.at(-1)).toMatchObject({ result: "rolled-back", rolledBackTo: h[0]!.release, rollbackHealthy: true });
    expect(out.lines.some((l) => /rollback\s+ok/.test(l))).toBe(true);
  });
});
