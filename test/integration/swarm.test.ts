/**
 * The swarm target on the test bed's real three-node swarm (three Docker engines
 * in their own network namespaces, the manager reached over SSH like the VPS).
 * This kernel has no IPVS, so the routing mesh cannot carry requests here: the
 * tests watch the tasks themselves (what swarm would route to).
 */
import { afterAll, describe, expect, it } from "vitest";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { plan } from "../../.dagger/src/remote/plan.js";
import { rollback } from "../../.dagger/src/remote/rollback.js";
import { status, verify } from "../../.dagger/src/remote/verify.js";
import { doctor } from "../../.dagger/src/registry/doctor.js";
import { vpsAccessFindings } from "../../.dagger/src/remote/doctor.js";
import { auditSecrets } from "../testbed/audit.js";
import {
  apiReplicated,
  bed,
  captureLog,
  freshStack,
  history,
  onSwarm,
  overlayProbe,
  registryPassword,
  sh,
  sshOptions,
  swarmRequest,
  tokenPasswords,
  viaDnsrr,
} from "../testbed/bed.js";

auditSecrets();

const KEY = 'two words and "quotes"';
/** api with three replicas and a variable from the .env; the rest of the example as it is. */
const replicated = (t: string) =>
  apiReplicated(t).replace(
    "    init: true            #",
    '    environment: { GOLD_API_KEY: "${GOLD_API_KEY}" }\n    init: true            #',
  );
const env = (port: number) => `WEB_PORT=${port}\nGOLD_API_KEY="${KEY.replace(/"/g, '\\"')}"\n`;
const req = (project: string, port: number, version: "v1" | "v2" | "v3", over = {}) =>
  swarmRequest(project, port, version, { env: env(port), ...over }, replicated);

/** Running tasks of a service, as `node image` lines. */
function running(service: string): string[] {
  return onSwarm(
    `service ps ${service} --filter desired-state=running --format '{{.Node}} {{.Image}} {{.CurrentState}}'`,
  )
    .trim()
    .split("\n")
    .filter((l) => / Running /.test(l));
}

afterAll(async () => {
  for (const p of ["swa", "swb", "swc", "swd", "swe", "swf", "swg", "swh", "swenv"]) await freshStack(p);
});

describe("deploy to a swarm", () => {
  it("spreads the replicas over the three nodes, interpolates the .env, runs the job first; verify and status read every node", async () => {
    await freshStack("swa");
    const log = captureLog();
    const r = await deploy(req("swa", 18301, "v1", { log: log.log }));
    expect(Object.keys(r.durations)).toEqual(
      expect.arrayContaining(["preflight", "lock", "upload", "jobs", "switch", "record"]),
    );
    expect(log.lines.join("\n")).toMatch(/deploy jobs +ok .*migrate done/);

    const api = running("swa_api");
    expect(api).toHaveLength(3);
    expect(new Set(api.map((l) => l.split(" ")[0]))).toEqual(new Set(["swarm-1", "swarm-2", "swarm-3"]));
    expect(api.every((l) => l.includes(bed.images["api:v1"]!))).toBe(true);
    // the .env reached stack deploy's interpolation: the value exactly, the port from WEB_PORT
    expect(onSwarm("service inspect swa_api --format '{{json .Spec.TaskTemplate.ContainerSpec.Env}}'")).toContain(
      JSON.stringify(`GOLD_API_KEY=${KEY}`).slice(1, -1),
    );
    expect(
      onSwarm("service inspect swa_web --format '{{range .Endpoint.Spec.Ports}}{{.PublishedPort}}{{end}}'").trim(),
    ).toBe("18301");
    // the job ran and is gone from the stack
    expect(
      onSwarm("service ls --format '{{.Name}}' --filter label=com.docker.stack.namespace=swa")
        .trim()
        .split("\n")
        .sort(),
    ).toEqual(["swa_api", "swa_web"]);

    const v = await verify({ ...req("swa", 18301, "v1") }, []);
    expect(v.problems).toEqual([]);
    expect(v.services.find((s) => s.service === "api")).toMatchObject({ ok: true, state: "3/3 running" });
    const st = await status(req("swa", 18301, "v1"), 5);
    expect(st.swarm?.nodes.map((n) => `${n.hostname} ${n.state}`).sort()).toEqual([
      "swarm-1 ready",
      "swarm-2 ready",
      "swarm-3 ready",
    ]);
    expect(st.swarm?.services.find((s) => s.service === "api")).toMatchObject({ desired: 3, running: 3 });
    expect(history("swa").at(-1)).toMatchObject({ action: "deploy", result: "ok" });

    // plan on a swarm: the manager's preflight, what would change, nothing written
    const before = sh("ls /home/deploy/production/swa/.releases");
    const p = await plan(req("swa", 18301, "v2"));
    expect(p.preflight.compose).toMatch(/not needed/);
    expect(
      p.services
        .filter((x) => x.change === "changed")
        .map((x) => x.service)
        .sort(),
    ).toEqual(["api", "migrate", "web"]);
    expect(sh("ls /home/deploy/production/swa/.releases")).toBe(before);
  });

  it("upgrades start-first under load: no failed request through swarm's service discovery, never fewer than three replicas running", async () => {
    await freshStack("swb");
    // DNS round robin (no IPVS here) on an overlay a client container may join
    const dnsrr = (t: string) => viaDnsrr(replicated(t));
    await deploy(swarmRequest("swb", 18302, "v1", { env: env(18302) }, dnsrr));
    const probe = overlayProbe("swb_default", "http://api:8000/health");
    for (let i = 0; i < 50 && probe.counts().ok < 20; i++) await new Promise((r) => setTimeout(r, 200));
    const before = probe.counts();
    let min = Infinity;
    let samples = 0;
    let done = false;
    const watch = (async () => {
      while (!done) {
        min = Math.min(min, running("swb_api").length);
        samples++;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await deploy(swarmRequest("swb", 18302, "v2", { env: env(18302) }, dnsrr));
    done = true;
    await watch;
    const after = probe.stop();
    expect(before.ok).toBeGreaterThanOrEqual(20);
    expect(after.ok - before.ok).toBeGreaterThan(100); // requests went on during the whole upgrade
    expect(after.failed).toBe(0);
    expect(samples).toBeGreaterThan(5);
    expect(min).toBeGreaterThanOrEqual(3);
    const api = running("swb_api");
    expect(api.length).toBe(3);
    expect(api.every((l) => l.includes(bed.images["api:v2"]!))).toBe(true);
  });

  it("an unhealthy release: swarm rolls the service back, the pipeline returns to the previous release and says so; rollback goes one further", async () => {
    await freshStack("swc");
    await deploy(req("swc", 18303, "v1"));
    await deploy(req("swc", 18303, "v2"));
    const err = (await deploy(req("swc", 18303, "v3")).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error & { code?: string };
    expect(err).toMatchObject({ code: "DEPLOY_ROLLED_BACK" });
    expect(err.message).toMatch(/api: swarm rolled its update back.*unhealthy/);
    expect(history("swc").at(-1)).toMatchObject({ result: "rolled-back", rollbackHealthy: true });
    const v = await verify(req("swc", 18303, "v2"), []);
    expect(v.problems).toEqual([]);
    expect(running("swc_api").every((l) => l.includes(bed.images["api:v2"]!))).toBe(true);

    const back = await rollback({ ...req("swc", 18303, "v2"), log: captureLog().log });
    expect(back.images.api).toContain(bed.images["api:v1"]!);
    expect(running("swc_api").every((l) => l.includes(bed.images["api:v1"]!))).toBe(true);
    expect((await verify(req("swc", 18303, "v1"), [])).ok).toBe(true);
  });

  it("verify catches a task on another digest and a definition changed by hand", async () => {
    await freshStack("swd");
    await deploy(req("swd", 18304, "v2"));
    // by hand, slowly: one task moves to v1 and the update waits before the next
    onSwarm(
      `service update --detach --no-resolve-image --update-parallelism 1 --update-delay 60s --update-order start-first --image ${bed.registry.prefix}/api@${bed.images["api:v1"]} swd_api >/dev/null`,
    );
    let v = await verify(req("swd", 18304, "v2"), []);
    for (let i = 0; i < 30 && !v.problems.some((p) => p.includes("a task on")); i++) {
      await new Promise((r) => setTimeout(r, 500));
      v = await verify(req("swd", 18304, "v2"), []);
    }
    expect(v.ok).toBe(false);
    expect(v.problems.join("\n")).toMatch(
      new RegExp(
        `api: .*a task on swarm-\\d runs \\S+api@${bed.images["api:v1"]}, release \\S+ pins \\S+api@${bed.images["api:v2"]}`,
      ),
    );
    expect(v.problems.join("\n")).toMatch(/api: the service is defined with .*changed by hand/);
  });

  it("a failing release-phase job stops the deploy before the stack changes, with the job's output", async () => {
    await freshStack("swg");
    await deploy(req("swg", 18307, "v1"));
    const failing = (t: string) =>
      replicated(t).replace('echo migrations applied"]', 'echo cannot reach the database; exit 3"]');
    const err = (await deploy(swarmRequest("swg", 18307, "v2", { env: env(18307) }, failing)).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error & { code?: string };
    expect(err).toMatchObject({ code: "JOB_FAILED" });
    expect(err.message).toMatch(
      /`migrate`: the one-off task failed with exit code 3[\s\S]*nothing that runs was changed[\s\S]*cannot reach the database/,
    );
    expect(running("swg_api").every((l) => l.includes(bed.images["api:v1"]!))).toBe(true);
    expect(
      onSwarm("service ls --format '{{.Name}}' --filter label=com.docker.stack.namespace=swg")
        .trim()
        .split("\n")
        .sort(),
    ).toEqual(["swg_api", "swg_web"]);
    expect(history("swg").at(-1)).toMatchObject({ result: "failed", code: "JOB_FAILED" });

    // a wrong pull token is caught from the manager before the stack changes too
    const denied = (await deploy(
      req("swg", 18307, "v2", {
        registry: { host: bed.registry.host, user: bed.registry.user, token: "not-the-password" },
      }),
    ).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error & { code?: string };
    expect(denied).toMatchObject({ code: "REGISTRY_UNAUTHORIZED" });
    expect(running("swg_api").every((l) => l.includes(bed.images["api:v1"]!))).toBe(true);
  });

  it("a first release that never runs fails without waiting for the timeout, naming the tasks' error", async () => {
    await freshStack("swh");
    const err = (await deploy(req("swh", 18308, "v3")).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error & { code?: string };
    expect(err).toMatchObject({ code: "DEPLOY_FAILED" });
    expect(err.message).toMatch(/api: \d+ tasks failed and none runs; last task on swarm-\d: failed .*unhealthy/);
  });

  it("a host that is no swarm manager is refused before anything is written", async () => {
    await freshStack("swf");
    const err = (await deploy(req("swf", 18306, "v1", { ssh: sshOptions() })).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error & { code?: string; hint?: string };
    expect(err).toMatchObject({ code: "SWARM_NOT_MANAGER" });
    expect(err.hint).toMatch(/docker swarm init/);
    expect(sh("ls /home/deploy/production/swf 2>&1 || true")).toMatch(/No such file/);
  });

  it("a node stopped in the middle of a deploy, while a new task starts on it: the update goes on with the nodes left", async () => {
    await freshStack("swe");
    await deploy(req("swe", 18305, "v1"));
    const log = captureLog();
    // the moment swarm starts a new api task on a worker, that worker's engine stops
    let stopped = "";
    let watching = false;
    const watch = async () => {
      for (let i = 0; i < 300 && !stopped; i++) {
        const line = onSwarm("service ps swe_api --format '{{.Node}} {{.Image}} {{.CurrentState}}'")
          .split("\n")
          .find(
            (l) =>
              /^swarm-[23] /.test(l) &&
              l.includes(bed.images["api:v2"]!) &&
              /(Assigned|Preparing|Starting|Ready)/.test(l),
          );
        if (line) {
          stopped = line.split(" ")[0]!;
          sh(`kill $(cat ${bed.swarm.nodePids[stopped]})`);
        } else await new Promise((r) => setTimeout(r, 100));
      }
    };
    let watcher: Promise<void> = Promise.resolve();
    try {
      const r = await deploy(
        req("swe", 18305, "v2", {
          log: log.log,
          onStep: (s: string) => {
            if (s === "switch" && !watching) {
              watching = true;
              watcher = watch();
            }
          },
        }),
      );
      await watcher;
      expect(stopped).not.toBe("");
      expect(r.images.api).toContain(bed.images["api:v2"]!);
      // swarm alone waits for the lost task forever: the pipeline started the update again on the others
      expect(log.lines.join("\n")).toContain(`${stopped} went down during the update of api`);
      const api = running("swe_api").filter((l) => !l.startsWith(stopped));
      expect(api.length).toBeGreaterThanOrEqual(3);
      expect(api.every((l) => l.includes(bed.images["api:v2"]!))).toBe(true);
      const st = await status(req("swe", 18305, "v2"), 5);
      expect(st.swarm?.nodes.find((n) => n.hostname === stopped)?.state).toBe("down");
      expect((await verify(req("swe", 18305, "v2"), [])).problems).toEqual([]);
    } finally {
      await watcher;
      sh("bash test/testbed/swarm.sh 2>/dev/null");
    }
  });
});

describe("doctor on a swarm", () => {
  it("warns when the pull token, stored in the swarm, could push; a read-only one is fine", async () => {
    const input = {
      registry: bed.tokenRegistry.host,
      repositories: [`${bed.tokenRegistry.host}/acme/gold-tracker/api`],
      writtenNames: [],
      tag: "v1",
      swarm: true,
    };
    const rw = await doctor({ ...input, pull: { user: "rw", token: tokenPasswords.rw } });
    expect(rw.find((f) => f.check === "pull token on the swarm")).toMatchObject({
      status: "warn",
      fix: expect.stringMatching(/read-only/),
    });
    const ro = await doctor({ ...input, pull: { user: "ro", token: tokenPasswords.ro } });
    expect(ro.find((f) => f.check === "pull token on the swarm")).toMatchObject({ status: "ok" });
  });

  it("says whether the host manages the swarm and how many nodes are ready", async () => {
    const refs = [`${bed.registry.prefix}/api:v1`];
    const pull = { user: bed.registry.user, token: registryPassword };
    const manager = await vpsAccessFindings({
      ssh: sshOptions({ host: bed.swarm.host }),
      registry: bed.registry.host,
      pull,
      refs,
      swarm: true,
    });
    expect(manager.find((f) => f.check === "swarm")).toMatchObject({
      status: "ok",
      detail: "this host manages the swarm: 3 node(s), 1 manager(s), all ready",
    });
    expect(manager.find((f) => f.check.startsWith("pull "))).toMatchObject({ status: "ok" });
    // every node's platform, for multi-platform images
    expect(manager.find((f) => f.check === "platform")?.detail).toMatch(
      /^node swarm-\d: linux\/amd64, node swarm-\d: linux\/amd64, node swarm-\d: linux\/amd64: the images must be built for it/,
    );
    const plain = await vpsAccessFindings({ ssh: sshOptions(), registry: bed.registry.host, pull, refs, swarm: true });
    expect(plain.find((f) => f.check === "swarm")).toMatchObject({
      status: "fail",
      fix: expect.stringMatching(/docker swarm init/),
    });
  });
});

describe("the release's .env on a swarm", () => {
  it("a .env with cfg=… and DOCKER_HOST=… changes nothing about where the stack goes or what is removed", async () => {
    await freshStack("swenv");
    sh("mkdir -p /home/deploy/bait && echo kept > /home/deploy/bait/keep && chown -R deploy /home/deploy/bait");
    const r = await deploy(
      swarmRequest("swenv", 18309, "v1", {
        env: "WEB_PORT=18309\ncfg=/home/deploy/bait\nDOCKER_HOST=tcp://127.0.0.1:9\nDOCKER_CONFIG=/tmp/elsewhere\n",
      }),
    );
    expect(r.release).toBeTruthy();
    expect(
      onSwarm("service ls --format '{{.Name}}' --filter label=com.docker.stack.namespace=swenv")
        .trim()
        .split("\n")
        .sort(),
    ).toEqual(["swenv_api", "swenv_web"]);
    expect(sh("cat /home/deploy/bait/keep").trim()).toBe("kept");
    sh("rm -rf /home/deploy/bait");
  });
});
