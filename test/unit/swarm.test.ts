import { parseDocument } from "yaml";
import { describe, expect, it } from "vitest";
import {
  durationSeconds,
  renderSwarmRelease,
  updateWindowSeconds,
  withJobs,
} from "../../.dagger/src/core/swarm/swarm-release.js";

const D = `sha256:${"b".repeat(64)}`;
const services = (r: { stack: string }) =>
  (parseDocument(r.stack).toJS() as { services: Record<string, Record<string, unknown>> }).services;

describe("the release for docker stack deploy", () => {
  const release = `services:
  migrate:
    image: ghcr.io/acme/gold/api@${D}
    command: ["./migrate"]
    depends_on: [db]
    x-vps-pipeline: { job: { timeout: 60 } }
  db:
    image: postgres:16
    restart: unless-stopped
    volumes: ["pgdata:/var/lib/postgresql/data"]
  api:
    image: ghcr.io/acme/gold/api@${D}
    restart: on-failure
    scale: 2
    depends_on:
      db: { condition: service_healthy }
    healthcheck: { test: ["CMD", "true"], interval: 5s, retries: 2, start_period: 10s }
  web:
    image: ghcr.io/acme/gold/web@${D}
    ports: ["8080:8000"]
    deploy: { update_config: { order: stop-first } }
    x-vps-pipeline: { http: { port: 8000 } }
volumes:
  pgdata: {}
`;

  it("translates what stack deploy ignores: restart, scale, depends_on; start-first without volumes, stop-first with", () => {
    const r = renderSwarmRelease(release);
    const s = services(r);
    expect(Object.keys(s)).toEqual(["db", "api", "web"]);
    expect(s.db).toMatchObject({
      deploy: {
        restart_policy: { condition: "any" },
        update_config: { order: "stop-first", failure_action: "rollback" },
        rollback_config: { order: "stop-first" },
      },
    });
    expect(s.db!.restart).toBeUndefined();
    expect(s.api).toMatchObject({
      deploy: {
        replicas: 2,
        restart_policy: { condition: "on-failure" },
        update_config: { order: "start-first", failure_action: "rollback", monitor: "25s" },
      },
    });
    expect(s.api!.depends_on).toBeUndefined();
    expect(s.api!.scale).toBeUndefined();
    // what the user wrote wins
    expect(s.web).toMatchObject({ deploy: { update_config: { order: "stop-first" } }, ports: ["8080:8000"] });
    expect(s.web!["x-vps-pipeline"]).toBeUndefined();
    expect(r.notes).toEqual([
      "api: waits for db (service_healthy) under compose; a swarm starts services in any order, so api must retry db until it answers",
      "web: no edge on a swarm; the routing mesh and start-first updates keep it answering",
    ]);
    expect(parseDocument(r.stack).get("version")).toBe("3.9");
  });

  it("takes release-phase jobs out of the stack as one-off replicated jobs", () => {
    const { jobs } = renderSwarmRelease(release);
    expect(jobs).toEqual([
      {
        service: "migrate",
        timeoutSeconds: 60,
        definition: {
          image: `ghcr.io/acme/gold/api@${D}`,
          command: ["./migrate"],
          deploy: { mode: "replicated-job", restart_policy: { condition: "none" } },
        },
      },
    ]);
  });

  it("gives the jobs a stack file of their own, with the release's volumes and networks and no profile", () => {
    const r = renderSwarmRelease(
      release.replace(
        "    x-vps-pipeline: { job: { timeout: 60 } }",
        "    profiles: [vps-pipeline-job]\n    x-vps-pipeline: { job: { timeout: 60 } }",
      ),
    );
    const jobs = parseDocument(r.jobsStack).toJS() as {
      version: string;
      services: Record<string, Record<string, unknown>>;
      volumes: object;
    };
    expect(Object.keys(jobs.services)).toEqual(["migrate"]);
    expect(jobs.services.migrate!.profiles).toBeUndefined();
    expect(jobs).toMatchObject({ version: "3.9", volumes: { pgdata: {} } });
    expect(renderSwarmRelease("services:\n  a: { image: x }\n").jobsStack).toBe("");
  });

  it("keeps only the named jobs (a rollback runs those declared on-rollback)", () => {
    const two = renderSwarmRelease(
      `services:\n  a: { image: x, x-vps-pipeline: { job: true } }\n  b: { image: y, x-vps-pipeline: { job: { on-rollback: true } } }\n  c: { image: z }\n`,
    );
    const only = withJobs(two, ["b"]);
    expect(only.jobs.map((j) => j.service)).toEqual(["b"]);
    expect(Object.keys((parseDocument(only.jobsStack).toJS() as { services: object }).services)).toEqual(["b"]);
    expect(withJobs(two, [])).toMatchObject({ jobs: [], jobsStack: "" });
  });

  it("publishes again the ports the release moved to the edge's label", () => {
    const r = renderSwarmRelease(`services:
  web:
    image: w
    labels: { vps-pipeline.edge.published: "\${WEB_PORT:-8080}:8000" }
    x-vps-pipeline: { http: { port: 8000 } }
  admin:
    image: a
    labels: ["team=ops", "vps-pipeline.edge.published=7000:7000"]
    x-vps-pipeline: { http: { port: 7000 } }
`);
    expect(services(r).web).toMatchObject({ ports: ["${WEB_PORT:-8080}:8000"] });
    expect(services(r).web!.labels).toBeUndefined();
    expect(services(r).admin).toMatchObject({ ports: ["7000:7000"], labels: ["team=ops"] });
  });

  it("updates a service with a host-mode port stop-first, and says why", () => {
    const r = renderSwarmRelease(`services:\n  lb: { image: x, ports: [{ target: 80, published: 80, mode: host }] }\n`);
    expect(services(r).lb).toMatchObject({
      deploy: { update_config: { order: "stop-first" }, rollback_config: { order: "stop-first" } },
    });
    expect(r.notes.join("\n")).toMatch(/lb: publishes a port in host mode/);
  });

  it("refuses a port bound to one address: the routing mesh publishes on every address of every node", () => {
    expect(() =>
      renderSwarmRelease(
        `services:\n  a: { image: x, ports: ["127.0.0.1:9090:8000"] }\n  b: { image: y, ports: [{ target: 80, published: 8081, host_ip: 10.0.0.5 }] }\n`,
      ),
    ).toThrow(
      /services\.a\.ports: `127\.0\.0\.1:9090:8000` binds to 127\.0\.0\.1[\s\S]*services\.b\.ports: .* binds to 10\.0\.0\.5/,
    );
  });

  it("turns a service others wait for to complete into a one-off job", () => {
    const r = renderSwarmRelease(`services:
  seed:
    image: x
    restart: "no"
  app:
    image: y
    depends_on: { seed: { condition: service_completed_successfully } }
`);
    expect(services(r).seed).toEqual({
      image: "x",
      deploy: { mode: "replicated-job", restart_policy: { condition: "none" } },
    });
    expect(r.notes.join("\n")).toMatch(/seed: runs once for others/);
  });

  it("refuses what a swarm cannot do, naming each field, all at once", () => {
    const bad = `services:
  a:
    image: x
    container_name: a
    profiles: [debug]
  b:
    image: y
    network_mode: host
    restart: sometimes
`;
    expect(() => renderSwarmRelease(bad)).toThrow(
      /services\.a\.container_name: not supported on a swarm[\s\S]*services\.a\.profiles[\s\S]*services\.b\.network_mode[\s\S]*services\.b\.restart: `sometimes` is not a restart policy/,
    );
  });

  it("reads compose durations", () => {
    expect(durationSeconds("1m30s")).toBe(90);
    expect(durationSeconds("500ms")).toBe(0.5);
    expect(durationSeconds("5")).toBeUndefined();
    expect(durationSeconds(7)).toBe(7);
  });
});

describe("the convergence budget on a swarm, with production defaults", () => {
  const stackOf = (svc: string) =>
    renderSwarmRelease(`services:\n  api:\n    image: ghcr.io/a/api@sha256:${"1".repeat(64)}\n${svc}`).stack;

  it("Docker's default healthcheck (30 s interval, 3 retries) gives swarm a 120 s monitor window, which the wait adds to --health-timeout", () => {
    const stack = stackOf("    healthcheck: { test: [CMD, true] }\n");
    expect(stack).toMatch(/monitor: 120s/);
    expect(updateWindowSeconds(stack)).toBe(240);
  });

  it("grows with replicas updated one at a time, and stays small with the test bed's 1 s healthchecks", () => {
    expect(
      updateWindowSeconds(
        stackOf(
          "    deploy: { replicas: 3 }\n    healthcheck: { test: [CMD, true], interval: 30s, start_period: 20s }\n",
        ),
      ),
    ).toBe(3 * 2 * 140);
    expect(updateWindowSeconds(stackOf("    healthcheck: { test: [CMD, true], interval: 1s, retries: 3 }\n"))).toBe(20);
    expect(
      updateWindowSeconds(
        stackOf("    deploy: { replicas: 4, update_config: { parallelism: 2, monitor: 5s, delay: 10s } }\n"),
      ),
    ).toBe(2 * (10 + 10));
  });
});
