/**
 * Day two on the test bed: `logs` (a service with several replicas, --since,
 * --tail, the cap; on one VPS and on the swarm) and `run` (output and exit code,
 * a command that hangs, refused while a deploy holds the lock, the history).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { logs } from "../../.dagger/src/remote/day-two/logs.js";
import { runOnce } from "../../.dagger/src/remote/day-two/one-off.js";
import { auditSecrets } from "../testbed/audit.js";
import {
  apiReplicated,
  bed,
  deployRequest,
  freshProject,
  freshStack,
  history,
  onSwarm,
  printed,
  releaseCompose,
  sh,
  sshOptions,
  swarmRequest,
} from "../testbed/bed.js";

auditSecrets();
const P = "d2";
const target = { ssh: sshOptions(), dir: `production/${P}`, project: P, lockTimeoutSeconds: 30 };
const opts = (o: Partial<Parameters<typeof logs>[1]> = {}) => ({ services: [], tail: 200, maxBytes: 1_048_576, ...o });
const apiContainers = () =>
  sh(
    `docker ps --filter label=com.docker.compose.project=${P} --filter label=com.docker.compose.service=api --format '{{.Names}}'`,
  )
    .trim()
    .split("\n")
    .sort();
/** A line in a container's own log (what the app would print). */
const say = (container: string, line: string) => sh(`docker exec ${container} sh -c 'echo "${line}" > /proc/1/fd/1'`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  freshProject(P);
  await deploy(deployRequest(P, 18312, { compose: releaseCompose("v1", "v1", apiReplicated) }));
});
afterAll(async () => {
  freshProject(P);
  await freshStack("swlogs");
});

describe("logs", () => {
  it("every replica's lines in time order, each naming its container; an app's token-looking line as it is; --tail counts all together", async () => {
    const [a, b] = apiContainers();
    say(a!, "first from a");
    await sleep(50);
    say(b!, "then from b");
    await sleep(50);
    say(a!, "app says token=ghp_0123456789abcdefABCDEF0123456789abcd");
    const r = await logs(target, opts({ services: ["api"] }));
    const mine = r.text.split("\n").filter((l) => /first from a|then from b|app says/.test(l));
    expect(mine.map((l) => l.replace(/^\S+ /, ""))).toEqual([
      `${a} | first from a`,
      `${b} | then from b`,
      `${a} | app says token=ghp_0123456789abcdefABCDEF0123456789abcd`,
    ]);
    expect(r.text.split("\n").every((l) => /^\d{4}-\d{2}-\d{2}T\S+Z \S+ \| /.test(l))).toBe(true);
    const times = r.text.split("\n").map((l) => l.split(" ")[0]!);
    expect([...times].sort()).toEqual(times);
    const sources = new Set(r.text.split("\n").map((l) => l.split(" ")[1]!));
    expect([...sources].every((x) => apiContainers().includes(x)) && sources.has(a!) && sources.has(b!)).toBe(true);
    const last2 = await logs(target, opts({ services: ["api"], tail: 2 }));
    expect(last2.text.split("\n")).toHaveLength(2);
    expect(last2.text).toContain("app says token=");
  });

  it("--since leaves out what came before; the cap keeps the newest lines and says how many were cut", async () => {
    const [a] = apiContainers();
    say(a!, "before the mark");
    await sleep(2100);
    const mark = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    await sleep(1100);
    say(a!, "after the mark");
    const since = await logs(target, opts({ services: ["api"], since: mark }));
    expect(since.text).toContain("after the mark");
    expect(since.text).not.toContain("before the mark");
    for (let i = 0; i < 60; i++) say(a!, `filler line ${String(i).padStart(2, "0")} ${"x".repeat(40)}`);
    const capped = await logs(target, opts({ services: ["api"], maxBytes: 2048 }));
    const [head, ...rest] = capped.text.split("\n");
    expect(head).toMatch(/^\(\d+ older line\(s\) not shown: the output is capped at 2048 bytes/);
    expect(Buffer.byteLength(rest.join("\n"))).toBeLessThanOrEqual(2048);
    expect(rest.at(-1)).toContain("filler line 59");
    expect(printed.join("\n")).not.toContain("ghp_0123456789"); // the pipeline's own output never carried it
  });

  it("on a swarm: the task and node name each line, replicas merged in time order", async () => {
    await freshStack("swlogs");
    await deploy(swarmRequest("swlogs", 18313, "v1", { env: "WEB_PORT=18313\n" }, apiReplicated));
    const task = onSwarm("service ps swlogs_api -q --filter desired-state=running").trim().split("\n")[0]!;
    const cid = onSwarm(`inspect ${task} --format '{{.Status.ContainerStatus.ContainerID}}'`).trim();
    const node = onSwarm(`inspect ${task} --format '{{.NodeID}}'`).trim();
    const host = onSwarm(`node inspect ${node} --format '{{.Description.Hostname}}'`).trim();
    sh(`DOCKER_HOST=${bed.swarm.nodes[host]} docker exec ${cid} sh -c 'echo "hello from a task" > /proc/1/fd/1'`);
    const r = await logs(
      {
        ...target,
        ssh: sshOptions({ host: bed.swarm.host }),
        project: "swlogs",
        dir: "production/swlogs",
        orchestrator: "swarm",
      },
      opts({ services: ["api"] }),
    );
    const line = r.text.split("\n").find((l) => l.includes("hello from a task"));
    expect(line).toMatch(
      new RegExp(`^\\d{4}-\\d{2}-\\d{2}T\\S+Z swlogs_api\\.\\d+\\.\\w+@${host} \\| hello from a task$`),
    );
    const times = r.text.split("\n").map((l) => l.split(" ")[0]!);
    expect([...times].sort()).toEqual(times);
  }, 240_000);
});

describe("run", () => {
  const by = "vitest";
  it("prints the command's output and returns its exit code; recorded in the history with the command, never the .env", async () => {
    const r = await runOnce(target, {
      service: "api",
      command: ["echo out; echo err >&2; echo key=$GOLD_API_KEY; exit 3"],
      timeoutSeconds: 60,
      maxBytes: 1048576,
      by,
      log: () => {},
    });
    expect(r.exitCode).toBe(3);
    expect(r.output).toContain("out");
    expect(r.output).toContain("err");
    const h = history(P).at(-1)!;
    expect(h).toMatchObject({
      action: "run",
      result: "failed",
      service: "api",
      exitCode: 3,
      command: ["echo out; echo err >&2; echo key=$GOLD_API_KEY; exit 3"],
      by,
    });
    expect(JSON.stringify(history(P))).not.toContain("not-a-real-key");
    const argv = await runOnce(target, {
      service: "api",
      command: ["sh", "-c", "echo as argv"],
      timeoutSeconds: 60,
      maxBytes: 1048576,
      by,
      log: () => {},
    });
    expect([argv.exitCode, argv.output.trim()]).toEqual([0, "as argv"]);
    // a shell line with a comma and quotes arrives whole; argv words keep theirs
    const comma = await runOnce(target, {
      service: "api",
      command: ["printf '%s|' 'select a, b' x,y"],
      timeoutSeconds: 60,
      maxBytes: 1048576,
      by,
      log: () => {},
    });
    expect(comma.output).toBe("select a, b|x,y|");
    const words = await runOnce(target, {
      service: "api",
      command: ["printf", "%s|", "a, b", "c"],
      shell: false,
      timeoutSeconds: 60,
      maxBytes: 1048576,
      by,
      log: () => {},
    });
    expect(words.output).toBe("a, b|c|");
    expect(
      sh(
        `docker ps -a --filter label=com.docker.compose.project=${P} --filter label=com.docker.compose.oneoff=True -q`,
      ).trim(),
    ).toBe("");
  });

  it("prints its output as it comes and returns the newest --max-bytes, saying what was cut", async () => {
    const live: string[] = [];
    const r = await runOnce(target, {
      service: "api",
      command: ["i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done"],
      timeoutSeconds: 60,
      maxBytes: 4096,
      by,
      log: (l) => live.push(l),
    });
    expect(r.exitCode).toBe(0);
    const lines = r.output.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^\(\d+ older byte\(s\) of output not shown: the output is capped at 4096 bytes/);
    expect(lines.at(-1)).toBe("line-2999");
    expect(Buffer.byteLength(lines.slice(1).join("\n"))).toBeLessThanOrEqual(4096);
    // the steps' own lines (connect, lock) come first; compose's may too, with the prefix
    const output = live.filter((l) => !/^run \w+ +(ok|FAILED) /.test(l));
    expect(output).toContain("api | line-0");
    expect(output.filter((l) => !l.startsWith("api | "))).toEqual([]);
    expect(output.at(-1)).toMatch(/live output stops here: more than 4096 bytes/);
    expect(live.length).toBeLessThan(600);
  });

  it("a command that hangs is killed at its timeout and its container removed", async () => {
    const r = await runOnce(target, {
      service: "api",
      command: ["echo started; sleep 300"],
      timeoutSeconds: 3,
      maxBytes: 1048576,
      by,
      log: () => {},
    });
    expect([r.timedOut, r.exitCode]).toEqual([true, 124]);
    expect(r.output).toContain("started");
    expect(sh(`docker ps -a --filter name=${P}-run-api -q`).trim()).toBe("");
    expect(history(P).at(-1)).toMatchObject({ action: "run", result: "failed", reason: "killed after its 3s timeout" });
  });

  it("refused while a deploy holds the lock, naming the holder; the deploy is not disturbed", async () => {
    let refused: unknown;
    const r = await deploy(
      deployRequest(P, 18312, {
        compose: releaseCompose("v2", "v2", apiReplicated),
        by: "octocat (run 42)",
        onStep: (step) => {
          if (step === "pull")
            refused = runOnce(target, {
              service: "api",
              command: ["true"],
              timeoutSeconds: 10,
              maxBytes: 1048576,
              by,
              log: () => {},
            }).catch((e: unknown) => e);
        },
      }),
    );
    expect(await refused).toMatchObject({ code: "LOCK_BUSY", message: expect.stringContaining("octocat (run 42)") });
    expect(history(P).at(-1)).toMatchObject({ release: r.release, action: "deploy", result: "ok" });
  });
});
