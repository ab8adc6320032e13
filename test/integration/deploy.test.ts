/**
 * The deploy flow against the test bed: a real sshd in its own network namespace,
 * the real Docker engine and compose v2, a registry with TLS and auth.
 */
import { describe, expect, it } from "vitest";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { rollback } from "../../.dagger/src/remote/rollback.js";
import { status, verify } from "../../.dagger/src/remote/verify.js";
import { parseHostKeyPin } from "../../.dagger/src/core/config.js";
import { readFileSync } from "node:fs";
import { auditSecrets } from "../testbed/audit.js";
import {
  bed,
  captureLog,
  containers,
  deployRequest,
  filesContaining,
  history,
  releaseCompose,
  sampleProcesses,
  sh,
  sshOptions,
  webStatus,
  testEdge,
} from "../testbed/bed.js";

const HOME = "/home/deploy";
auditSecrets();

describe("the secret audit itself", () => {
  it("sees a needle on a process command line and in a file, so its silence means something", async () => {
    const needle = `audit-${Date.now()}`;
    const probe = sampleProcesses(needle);
    sh(`sh -c 'sleep 0.3' ${needle}`);
    expect((await probe.stop()).hits.join()).toContain(needle);
    sh(`mkdir -p /tmp/audit-check && echo ${needle} > /tmp/audit-check/f`);
    expect(filesContaining("/tmp/audit-check", needle)).toEqual(["/tmp/audit-check/f"]);
    sh("rm -rf /tmp/audit-check");
  });
});

describe("deploy", () => {
  it("first deploy on an empty server brings the stack up, pinned by digest, without leaving credentials", async () => {
    sh(`rm -rf ${HOME}/production/first`);
    const out = captureLog();
    const r = await deploy(deployRequest("first", 18081, { log: out.log }));
    expect(r.previous).toBeUndefined();
    expect((await webStatus(18081)).body).toContain("Version v1.");
    const running = sh(`docker inspect --format '{{.Config.Image}}' ${Object.values(containers("first")).join(" ")}`);
    expect(running).toContain(`${bed.registry.prefix}/api@${bed.images["api:v1"]}`);
    expect(running).toContain(`${bed.registry.prefix}/web@${bed.images["web:v1"]}`);
    expect(sh(`stat -c %a ${HOME}/production/first/.env`).trim()).toBe("600");
    expect(sh(`cat ${HOME}/production/first/.releases/current`).trim()).toBe(r.release);
    // the job's own output comes live between the steps' lines
    expect(out.lines).toContain("job migrate | applying migrations");
    const steps = out.lines.filter((l) => !l.startsWith("job "));
    expect(steps.map((l) => l.split(/\s+/)[1])).toEqual([
      "connect",
      "preflight",
      "lock",
      "upload",
      "edge",
      "pull",
      "jobs",
      "switch",
      "health",
      "record",
      "prune",
    ]);
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

  it("prunes old releases down to keepReleases, keeping the current and the previous one", async () => {
    const releases = () =>
      sh(`ls ${HOME}/production/upgrade/.releases`)
        .split("\n")
        .filter((x) => /^\d{8}T/.test(x));
    expect(releases().length).toBeGreaterThanOrEqual(3);
    const r = await deploy(deployRequest("upgrade", 18082, { compose: releaseCompose("v2"), keepReleases: 2 }));
    expect(releases()).toEqual([r.previous, r.release]);
    expect(history("upgrade").length).toBeGreaterThanOrEqual(4); // the history keeps every line
  });

  it("without a .env secret the server's own .env is left untouched, and kept with the release", async () => {
    const envPath = `${HOME}/production/upgrade/.env`;
    const before = sh(`cat ${envPath}`);
    const r = await deploy(deployRequest("upgrade", 18082, { compose: releaseCompose("v1"), env: undefined }));
    expect(sh(`cat ${envPath}`)).toBe(before);
    expect(sh(`stat -c %a ${envPath}`).trim()).toBe("600");
    expect(sh(`cat ${HOME}/production/upgrade/.releases/${r.release}/.env`)).toBe(before);
    expect((await webStatus(18082)).body).toContain("Version v1.");
  });

  it("an unhealthy v3 is rolled back automatically: v2 keeps serving, the result is a failure that says so", async () => {
    sh(`rm -rf ${HOME}/production/rollback`);
    await deploy(deployRequest("rollback", 18083, { compose: releaseCompose("v2") }));
    const out = captureLog();
    const err = await deploy(
      deployRequest("rollback", 18083, { compose: releaseCompose("v3"), log: out.log, healthTimeoutSeconds: 40 }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "DEPLOY_ROLLED_BACK" });
    expect(String((err as Error).message)).toMatch(/unhealthy.*rolled back to .*healthy and serving/s);
    expect((await webStatus(18083)).body).toContain("Version v2.");
    const h = history("rollback");
    expect(h.at(-1)).toMatchObject({ result: "rolled-back", rolledBackTo: h[0]!.release, rollbackHealthy: true });
    expect(out.lines.some((l) => /rollback\s+ok/.test(l))).toBe(true);
  });

  it("a wrong registry password fails at login with a clear error, and nothing running changes", async () => {
    sh(`rm -rf ${HOME}/production/badauth`);
    const first = await deploy(deployRequest("badauth", 18084));
    const before = containers("badauth");
    const err = await deploy(
      deployRequest("badauth", 18084, {
        compose: releaseCompose("v2"),
        registry: { host: bed.registry.host, user: bed.registry.user, token: "wrong-password" },
      }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "REGISTRY_UNAUTHORIZED" });
    expect((err as { hint: string }).hint).toMatch(/read:packages/);
    expect(String(err)).not.toContain("wrong-password");
    expect(containers("badauth")).toEqual(before);
    expect(sh(`cat ${HOME}/production/badauth/.releases/current`).trim()).toBe(first.release);
    expect((await webStatus(18084)).body).toContain("Version v1.");
    expect(history("badauth").map((h) => h.result)).toEqual(["ok", "failed"]);
  });

  it("a changed host key is refused before authentication: no command runs", async () => {
    // counted by grep: the log of a whole test run outgrows what a child's output may hold
    const accepted = () => Number(sh(`grep -c "Accepted publickey" ${bed.vps.sshdLog} || true`).trim());
    const n = accepted();
    const offered = sh(`ssh-keygen -lf ${bed.vps.hostKeyFile}`).split(" ")[1]!;
    const wrongPin = parseHostKeyPin(readFileSync(bed.vps.otherHostKeyFile, "utf8"))!;
    const err = await deploy(deployRequest("hostkey", 18085, { ssh: sshOptions({ hostKey: wrongPin }) })).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "HOST_KEY_MISMATCH" });
    expect(String((err as Error).message)).toContain(offered);
    // the pin is shown as a fingerprint too (the first characters of every ed25519 key are the same)
    expect(String((err as Error).message)).toContain(sh(`ssh-keygen -lf ${bed.vps.otherHostKeyFile}`).split(" ")[1]!);
    expect(accepted()).toBe(n);
    expect(sh(`ls ${HOME}/production 2>/dev/null || true`)).not.toContain("hostkey");
  });

  it("a server with only compose v1 is refused in preflight, naming `docker compose` v2 and the v1 found, and nothing is created", async () => {
    const err = await deploy(
      deployRequest("nocompose", 18086, { ssh: sshOptions({ user: bed.vps.userWithoutCompose }) }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "COMPOSE_V2_MISSING", hint: expect.stringMatching(/docker-compose-plugin/) });
    expect(String((err as Error).message)).toMatch(
      /`docker compose` \(v2\) is not available .*only docker-compose 1\.29\.\d+ \(v1/,
    );
    expect(sh("ls -a /home/nocompose")).not.toContain("production");
  });

  it("two deploys at once are serialized; a third that may not wait fails naming the holder", async () => {
    sh(`rm -rf ${HOME}/production/together`);
    let third: Promise<unknown> | undefined;
    const a = deploy(
      deployRequest("together", 18087, {
        by: "deployer-A",
        onStep: (step) => {
          if (step === "pull")
            third = deploy(deployRequest("together", 18087, { by: "deployer-C", lockTimeoutSeconds: 0 })).catch(
              (e: unknown) => e,
            );
        },
      }),
    );
    const b = deploy(deployRequest("together", 18087, { by: "deployer-B", compose: releaseCompose("v2") }));
    const [ra, rb] = await Promise.all([a, b]);
    const c = await third;
    expect(c).toMatchObject({ code: "LOCK_BUSY" });
    expect(String((c as Error).message)).toMatch(/deployer-[AB]/);
    // the one that could not wait is in the history too, as a failure that changed nothing
    const all = history("together");
    expect(all.filter((x) => x.by === "deployer-C")).toEqual([
      expect.objectContaining({
        result: "failed",
        code: "LOCK_BUSY",
        reason: expect.stringContaining("nothing running was changed"),
      }),
    ]);
    const h = all.filter((x) => x.by !== "deployer-C");
    expect(h.map((x) => x.result)).toEqual(["ok", "ok"]);
    // the second one saw the first as its previous release: they did not interleave
    expect([ra.previous, rb.previous]).toContain(h[0]!.release);
    expect(Object.keys(containers("together")).sort()).toEqual(["api", "web"]);
  });

  it("when the server side of the connection dies mid-deploy, a rerun converges to a healthy release", async () => {
    sh(`rm -rf ${HOME}/production/killed`);
    await deploy(deployRequest("killed", 18088));
    const err = await deploy(
      deployRequest("killed", 18088, {
        compose: releaseCompose("v2"),
        onStep: (step) => {
          if (step === "switch") setTimeout(() => sh("pkill -KILL -f '^sshd: deploy' || true"), 300);
        },
      }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "SSH_CONNECTION_LOST" });
    const r = await deploy(deployRequest("killed", 18088, { compose: releaseCompose("v2") }));
    expect(r.release).toBeTruthy();
    expect((await webStatus(18088)).body).toContain("Version v2.");
    const report = await verify({ ssh: sshOptions(), dir: "production/killed", project: "killed" }, []);
    expect(report.problems).toEqual([]);
  });
});

describe("verify, rollback and status", () => {
  const target = { ssh: sshOptions(), dir: "production/checked", project: "checked" };

  it("verify on a server where nothing was deployed fails with that reason", async () => {
    const r = await verify({ ssh: sshOptions(), dir: "production/never-deployed", project: "never-deployed" }, []);
    expect(r).toMatchObject({ ok: false, release: null, problems: ["no current release on the server"] });
  });

  it("verify passes on a healthy release and reports running digests and probes", async () => {
    sh(`rm -rf ${HOME}/production/checked`);
    await deploy(deployRequest("checked", 18089));
    const r = await verify(target, [{ url: `http://${bed.vps.hostIp}:18089/`, expectStatus: 200, retries: 2 }]);
    expect(r.ok).toBe(true);
    expect(r.services.map((s) => [s.service, s.ok])).toEqual([
      ["api", true],
      ["web", true],
    ]);
    expect(r.services[0]!.repoDigests).toContain(`${bed.registry.prefix}/api@${bed.images["api:v1"]}`);
    expect(r.probes[0]).toMatchObject({ status: 200, ok: true });
  });

  it("verify fails when a probe gets the wrong status or a service runs another image than the release", async () => {
    const probe = await verify(target, [
      { url: `http://${bed.vps.hostIp}:18089/missing`, expectStatus: 200, retries: 0 },
    ]);
    expect(probe.ok).toBe(false);
    expect(probe.problems.join()).toMatch(/missing: got 404, expected 200/);
    // someone swaps web for v2 by hand on the server
    sh(
      `sed 's|web@${bed.images["web:v1"]}|web@${bed.images["web:v2"]}|' ${HOME}/production/checked/docker-compose.yml > /tmp/drift.yml && chmod 644 /tmp/drift.yml && su - deploy -c 'cd production/checked && docker compose -p checked -f /tmp/drift.yml up -d --pull never web' 2>&1`,
    );
    const drift = await verify(target, []);
    expect(drift.ok).toBe(false);
    expect(drift.problems.join()).toMatch(/web: .*runs .*web@sha256.*release pins/);
  });

  it("rollback returns to the previous good release and status shows it with the history", async () => {
    await deploy(deployRequest("checked", 18089, { compose: releaseCompose("v2") }));
    const h = history("checked");
    const back = await rollback({
      ssh: sshOptions(),
      dir: "production/checked",
      project: "checked",
      lockTimeoutSeconds: 10,
      healthTimeoutSeconds: 30,
      edge: testEdge,
      by: "vitest",
      log: () => {},
    });
    expect(back.release).toBe(h[0]!.release);
    expect((await webStatus(18089)).body).toContain("Version v1.");
    const st = await status(target);
    expect(st.release).toBe(h[0]!.release);
    expect(st.history.at(-1)).toMatchObject({ action: "rollback", result: "ok", release: h[0]!.release });
    expect(
      st.services
        .filter((c) => c.state === "running")
        .map((c) => c.service)
        .sort(),
    ).toEqual(["api", "web"]);
    const err = await rollback({
      ssh: sshOptions(),
      dir: "production/checked",
      project: "checked",
      lockTimeoutSeconds: 10,
      healthTimeoutSeconds: 30,
      edge: testEdge,
      by: "vitest",
      log: () => {},
      to: "20200101T000000.000Z-deadbee",
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "RELEASE_NOT_FOUND" });
  });
});
