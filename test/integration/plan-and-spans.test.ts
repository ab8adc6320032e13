/**
 * `plan` changes nothing on the server, byte for byte; every step of a deploy
 * is a span, nested under the deploy, failures marked, no secret in any attribute.
 */
import { ROOT_CONTEXT, SpanStatusCode } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";
import { formatPlan } from "../../.dagger/src/core/release/plan.js";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { plan } from "../../.dagger/src/remote/plan.js";
import type { Tracing } from "../../.dagger/src/remote/trace.js";
import { auditSecrets } from "../testbed/audit.js";
import {
  bed,
  deployRequest,
  freshProject,
  privateKey,
  registryPassword,
  releaseCompose,
  sh,
  sshOptions,
} from "../testbed/bed.js";

auditSecrets();

const HOME = "/home/deploy";

/** Everything a deploy could touch: the project's files (content hashes, modes), its containers, the images. */
function serverState(project: string): string {
  return sh(`cd ${HOME}/production 2>/dev/null && find ${project} -exec stat -c '%n %a %s %Y' {} + 2>/dev/null | sort; find ${HOME}/production/${project} -type f -exec sha256sum {} + 2>/dev/null | sort;
    docker ps -a --filter label=com.docker.compose.project=${project} --format '{{.ID}} {{.Image}} {{.Status}}' | sed 's/Up [^(]*/Up/' | sort; ls -a ${HOME}`);
}

describe("plan", () => {
  it("shows what a deploy would change and changes nothing: files, containers and history stay byte for byte", async () => {
    freshProject("planned");
    await deploy(
      deployRequest("planned", 18221, {
        compose: releaseCompose("v1"),
        env: "WEB_PORT=18221\nGOLD_API_KEY=value-one\nOLD=1\n",
      }),
    );
    const before = serverState("planned");
    const p = await plan({
      ssh: sshOptions(),
      dir: "production/planned",
      project: "planned",
      compose: releaseCompose("v2", "v1"),
      env: "WEB_PORT=18221\nGOLD_API_KEY=value-two\nNEW=1\n",
    });
    expect(serverState("planned")).toBe(before);
    expect(p.current).toMatch(/-0123456$/);
    expect(p.services).toEqual([
      {
        service: "api",
        change: "unchanged",
        from: `${bed.registry.prefix}/api@${bed.images["api:v1"]}`,
        to: `${bed.registry.prefix}/api@${bed.images["api:v1"]}`,
      },
      { service: "migrate", change: "unchanged", from: expect.any(String), to: expect.any(String) },
      {
        service: "web",
        change: "changed",
        from: `${bed.registry.prefix}/web@${bed.images["web:v1"]}`,
        to: `${bed.registry.prefix}/web@${bed.images["web:v2"]}`,
      },
    ]);
    expect(p.env).toEqual({ added: ["NEW"], removed: ["OLD"], changed: ["GOLD_API_KEY"] });
    expect(p.jobs).toEqual(["migrate"]);
    expect(p.preflight.compose).toMatch(/^2\./);
    const text = formatPlan(p);
    expect(text).not.toMatch(/value-(one|two)/);
    expect(JSON.stringify(p)).not.toMatch(/value-(one|two)/);
  });

  it("on a server that never had the project: everything is added, and no folder is created", async () => {
    freshProject("unplanned");
    const p = await plan({
      ssh: sshOptions(),
      dir: "production/unplanned",
      project: "unplanned",
      compose: releaseCompose("v1"),
    });
    expect(p.current).toBeNull();
    expect(p.services.every((s) => s.change === "added")).toBe(true);
    expect(p.env).toBeNull();
    expect(sh(`ls ${HOME}/production`)).not.toContain("unplanned");
  });
});

function recorder(): { tracing: Tracing; spans: () => ReadableSpan[] } {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return {
    tracing: { tracer: provider.getTracer("test"), parent: ROOT_CONTEXT },
    spans: () => exporter.getFinishedSpans(),
  };
}

const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

describe("spans", () => {
  it("a deploy is one span with a child per step, in order, carrying the release id", async () => {
    freshProject("traced");
    const r = recorder();
    const done = await deploy(deployRequest("traced", 18222, { compose: releaseCompose("v1"), tracing: r.tracing }));
    const spans = r.spans();
    const root = spans.find((s) => s.name === "deploy")!;
    expect(root.attributes).toMatchObject({ "vps.project": "traced", "release.id": done.release });
    expect(parentOf(root)).toBeUndefined();
    const children = spans
      .filter((s) => parentOf(s) === root.spanContext().spanId)
      .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
    expect(children.map((s) => s.name)).toEqual([
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
    expect(children.every((s) => s.status.code !== SpanStatusCode.ERROR)).toBe(true);
    expect(children.find((s) => s.name === "upload")!.attributes["release.id"]).toBe(done.release);
    expect(children.find((s) => s.name === "pull")!.attributes["registry.host"]).toBe(bed.registry.host);
  });

  it("a failed deploy marks the failing steps and the deploy as errors with the pipeline's code; the rollback is its own span", async () => {
    const r = recorder();
    const err = await deploy(
      deployRequest("traced", 18222, { compose: releaseCompose("v3"), tracing: r.tracing, healthTimeoutSeconds: 20 }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "DEPLOY_ROLLED_BACK" });
    const spans = r.spans();
    const root = spans.find((s) => s.name === "deploy")!;
    expect(root.status.code).toBe(SpanStatusCode.ERROR);
    expect(root.attributes["error.code"]).toBe("DEPLOY_ROLLED_BACK");
    const byName = Object.fromEntries(
      spans.filter((s) => parentOf(s) === root.spanContext().spanId).map((s) => [s.name, s]),
    );
    // compose's own `up` notices the unhealthy api (web waits for it) or the health wait does: either step is marked
    const failedStep = byName.health ?? byName.switch!;
    expect(failedStep.status).toMatchObject({
      code: SpanStatusCode.ERROR,
      message: expect.stringMatching(/unhealthy/),
    });
    expect(byName.rollback!.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(byName.rollback!.attributes["release.id"]).toMatch(/-0123456$/);
  });

  it("no span, attribute or event holds a secret", async () => {
    const r = recorder();
    await deploy(deployRequest("traced", 18222, { compose: releaseCompose("v2"), tracing: r.tracing }));
    await deploy(
      deployRequest("traced", 18222, {
        compose: releaseCompose("v2"),
        tracing: r.tracing,
        registry: { host: bed.registry.host, user: bed.registry.user, token: "wrong-token" },
      }),
    ).catch(() => undefined);
    const dump = JSON.stringify(r.spans().map((s) => ({ n: s.name, a: s.attributes, e: s.events, st: s.status })));
    expect(dump).toContain("REGISTRY_UNAUTHORIZED");
    for (const secret of [registryPassword, "wrong-token", privateKey.split("\n")[1]!, "not-a-real-key"])
      expect(dump).not.toContain(secret);
  });
});
