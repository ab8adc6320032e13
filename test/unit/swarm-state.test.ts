import { describe, expect, it } from "vitest";
import { envExports, envValues } from "../../.dagger/src/core/compose/env-file.js";
import { parseSwarmProbe } from "../../.dagger/src/core/swarm/swarm-commands.js";
import {
  assessConvergence,
  parseStackState,
  runsImage,
  serviceTasks,
  stackDrift,
  type StackState,
} from "../../.dagger/src/core/swarm/swarm-state.js";

const A1 = `reg.example/acme/api@sha256:${"1".repeat(64)}`;
const A2 = `reg.example/acme/api@sha256:${"2".repeat(64)}`;

/** The manager's JSON as stackState prints it, for one service `api` with `replicas` and the given tasks. */
function state(
  image: string,
  replicas: number,
  tasks: { node: string; state: string; desired?: string; image?: string; err?: string }[],
  update?: { State: string; Message: string },
): string {
  const nodes = ["n1", "n2", "n3"].map((id, i) => ({
    ID: id,
    Description: { Hostname: `swarm-${i + 1}` },
    Status: { State: id === "n3" && tasks.some((t) => t.node === "down") ? "down" : "ready" },
    Spec: { Availability: "active" },
    ...(i === 0 ? { ManagerStatus: {} } : {}),
  }));
  const services = [
    {
      ID: "s1",
      Spec: {
        Name: "gold_api",
        TaskTemplate: { ContainerSpec: { Image: image } },
        Mode: { Replicated: { Replicas: replicas } },
      },
      ...(update ? { UpdateStatus: update } : {}),
    },
  ];
  const raw = tasks.map((t, i) => ({
    ID: `t${i}`,
    ServiceID: "s1",
    NodeID: t.node === "down" ? "n3" : t.node,
    Slot: i + 1,
    Spec: { ContainerSpec: { Image: t.image ?? image } },
    Status: { State: t.state, Err: t.err ?? "", Timestamp: `2026-11-27T00:00:0${i}Z` },
    DesiredState: t.desired ?? "running",
  }));
  return `=== services\n${JSON.stringify(services)}\n=== tasks\n${JSON.stringify(raw)}\n=== nodes\n${JSON.stringify(nodes)}\n`;
}
const st = (...a: Parameters<typeof state>): StackState => parseStackState(state(...a), "gold");

describe("the swarm's state", () => {
  it("reads services under their compose names, tasks with their node's hostname", () => {
    const s = st(A1, 2, [
      { node: "n1", state: "running" },
      { node: "n2", state: "running" },
    ]);
    expect(s.services).toEqual([{ service: "api", id: "s1", image: A1, mode: "replicated", replicas: 2 }]);
    expect(s.tasks.map((t) => `${t.service}@${t.node}:${t.state}`)).toEqual([
      "api@swarm-1:running",
      "api@swarm-2:running",
    ]);
    expect(s.nodes.filter((n) => n.manager).map((n) => n.hostname)).toEqual(["swarm-1"]);
  });

  it("compares images by digest, whatever tag swarm added", () => {
    expect(runsImage(A1, A1)).toBe(true);
    expect(runsImage(A1, A1.replace("@", ":v1@"))).toBe(true);
    expect(runsImage(A1, A2)).toBe(false);
    expect(runsImage("postgres:16", `postgres:16@sha256:${"3".repeat(64)}`)).toBe(true);
    expect(runsImage("postgres:16", "postgres:17")).toBe(false);
  });

  it("is converged only when the wanted number of tasks run the release and none of the old one is left", () => {
    const want = [{ service: "api", image: A2 }];
    expect(
      assessConvergence(
        want,
        st(A2, 2, [
          { node: "n1", state: "running" },
          { node: "n2", state: "running" },
        ]),
      ).done,
    ).toBe(true);
    // start-first: the new task runs, the old one still serves
    const mid = assessConvergence(
      want,
      st(
        A2,
        2,
        [
          { node: "n1", state: "running" },
          { node: "n2", state: "running", image: A1 },
          { node: "n3", state: "starting" },
        ],
        { State: "updating", Message: "" },
      ),
    );
    expect(mid.done).toBe(false);
    expect(mid.waiting[0]).toMatch(/^api: 1\/2 running, 1 of the previous version still running \(updating\)/);
    // a task on a node that is down does not count
    expect(
      assessConvergence(
        want,
        st(A2, 2, [
          { node: "n1", state: "running" },
          { node: "down", state: "running" },
        ]),
      ).done,
    ).toBe(false);
    // an update waiting for a task on a node that went down is stuck: swarm never gives up on it
    const stuck = assessConvergence(
      want,
      st(
        A2,
        2,
        [
          { node: "n1", state: "running" },
          { node: "down", state: "preparing" },
          { node: "n2", state: "running", image: A1 },
        ],
        { State: "updating", Message: "" },
      ),
    );
    expect(stuck.stuck).toEqual({ api: ["swarm-3"] });
    expect(mid.stuck).toEqual({});
    // the definition not yet changed
    expect(assessConvergence(want, st(A1, 2, [{ node: "n1", state: "running" }])).waiting[0]).toMatch(/still has/);
  });

  it("fails at once when swarm rolled the update back, naming the task's error", () => {
    const c = assessConvergence(
      [{ service: "api", image: A2 }],
      st(
        A1,
        1,
        [
          { node: "n1", state: "running" },
          { node: "n2", state: "failed", desired: "shutdown", image: A2, err: "dockerexec: unhealthy container" },
        ],
        { State: "rollback_completed", Message: "update rolled back" },
      ),
    );
    expect(c.done).toBe(false);
    expect(c.failed).toEqual([
      "api: swarm rolled its update back (update rolled back); last task on swarm-2: failed (dockerexec: unhealthy container)",
    ]);
    // the same state is success for a rollback to that image
    expect(
      assessConvergence(
        [{ service: "api", image: A1 }],
        st(A1, 1, [{ node: "n1", state: "running" }], { State: "rollback_completed", Message: "" }),
      ).done,
    ).toBe(true);
  });

  it("calls a service that keeps failing with none running failed, without waiting for the timeout", () => {
    const crash = (n: number) =>
      st(
        A2,
        1,
        Array.from({ length: n }, () => ({
          node: "n1",
          state: "rejected",
          desired: "shutdown",
          err: "No such image: reg.example/acme/api",
        })),
      );
    expect(assessConvergence([{ service: "api", image: A2 }], crash(2)).failed).toEqual([]);
    expect(assessConvergence([{ service: "api", image: A2 }], crash(3)).failed[0]).toMatch(
      /^api: 3 tasks failed and none runs; last task on swarm-1: rejected \(No such image/,
    );
    // failures from before the definition last changed belong to an earlier deploy of the same image
    const earlier = crash(3);
    earlier.services[0]!.updatedAt = "2026-11-27T00:00:05Z";
    expect(assessConvergence([{ service: "api", image: A2 }], earlier).failed).toEqual([]);
  });

  it("judges one-off jobs by their task: complete, or failed with the exit code", () => {
    const job = (s: string, exit?: number) =>
      parseStackState(
        state(A1, 1, [])
          .replace('"Mode":{"Replicated":{"Replicas":1}}', '"Mode":{"ReplicatedJob":{}}')
          .replace(
            "=== tasks\n[]",
            `=== tasks\n${JSON.stringify([{ ID: "t", ServiceID: "s1", NodeID: "n1", Spec: { ContainerSpec: { Image: A1 } }, Status: { State: s, ContainerStatus: exit === undefined ? {} : { ExitCode: exit } }, DesiredState: "complete" }])}`,
          ),
        "gold",
      );
    expect(assessConvergence([{ service: "api", image: A1 }], job("complete", 0)).done).toBe(true);
    expect(assessConvergence([{ service: "api", image: A1 }], job("failed", 3)).failed[0]).toMatch(
      /^api: the one-off task failed with exit code 3/,
    );
    expect(assessConvergence([{ service: "api", image: A1 }], job("running")).waiting[0]).toMatch(/has not completed/);
  });

  it("verify names a task on another digest, missing replicas, an unknown service", () => {
    const s = st(A2, 3, [
      { node: "n1", state: "running" },
      { node: "n2", state: "running", image: A1 },
    ]);
    s.services.push({ service: "debug", id: "s9", image: "busybox", mode: "replicated", replicas: 1 });
    const drift = stackDrift("R1", [{ service: "api", image: A2 }], s);
    expect(drift).toContain(`api: a task on swarm-2 runs ${A1}, release R1 pins ${A2}`);
    expect(drift.some((d) => d.startsWith("api: 2/3 running"))).toBe(true);
    expect(drift).toContain("service debug runs in the stack but release R1 does not have it (started by hand?)");
    expect(stackDrift("R1", [{ service: "api", image: A2 }], st(A2, 1, [{ node: "n1", state: "running" }]))).toEqual(
      [],
    );
    expect(stackDrift("R1", [{ service: "api", image: A2 }], st(A1, 1, [{ node: "n1", state: "running" }]))[0]).toMatch(
      /defined with .*changed by hand/,
    );
    expect(serviceTasks(s)[0]).toMatchObject({ service: "api", desired: 3, running: 2 });
  });

  it("reads the manager probe: a worker, a node outside any swarm", () => {
    expect(parseSwarmProbe("docker 27.1.0\nswarm active true\ndf_kb 900000\n")).toEqual({
      docker: "27.1.0",
      swarm: "active",
      manager: true,
      freeKb: 900000,
    });
    expect(parseSwarmProbe("docker 27.1.0\nswarm active false\n").manager).toBe(false);
    expect(parseSwarmProbe("docker 27.1.0\nswarm inactive false\n").swarm).toBe("inactive");
  });
});

describe(".env values for docker stack deploy", () => {
  it("reads quotes, escapes and comments as compose does", () => {
    const v = envValues(`A=plain value # a comment\nB="two\\nlines \\"q\\""\nC='it\\'s $HOME'\nexport D=x=y\n# E=no\n`);
    expect([...v]).toEqual([
      ["A", "plain value"],
      ["B", 'two\nlines "q"'],
      ["C", "it's $HOME"],
      ["D", "x=y"],
    ]);
  });

  it("exports each shell-named key quoted once, so no value is ever read as shell", () => {
    const out = envExports(`GOLD_API_KEY=a'b $(rm -rf /) \`x\`\nweird.key=1\n`);
    expect(out).toBe(`export GOLD_API_KEY='a'\\''b $(rm -rf /) \`x\`'\n`);
  });
});
