/**
 * Notifications to a real HTTP receiver on the test bed host, around real
 * deploys and rollbacks: one message per event with its facts, a receiver that
 * fails once (retried), one that never answers (the deploy ends within the
 * budget, a warning says so), and the URL's token nowhere.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Notification } from "../../.dagger/src/core/day-two/notification.js";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { rollback } from "../../.dagger/src/remote/rollback.js";
import { notifying } from "../../.dagger/src/notify/webhook.js";
import { auditSecrets } from "../testbed/audit.js";
import { deployRequest, freshProject, printed, registryPassword, releaseCompose, sh } from "../testbed/bed.js";

const TOKEN = `T0KEN-${Date.now()}-notify`;
auditSecrets(() => [registryPassword, TOKEN]);
const P = "nt";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A webhook receiver, listening: `answer` decides each request's status (undefined: never answers). */
async function receiver(answer: (n: number) => number | undefined) {
  const got: Notification[] = [];
  let requests = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      const status = answer(requests++);
      if (status === undefined) return; // hold the connection open, never answer
      if (status < 300 && req.url === `/hooks/${TOKEN}`) got.push(JSON.parse(body) as Notification);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    got,
    requests: () => requests,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
    url: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/${TOKEN}`,
  };
}

const warnings: string[] = [];
const what = (action: Notification["action"]) => ({ project: P, action, by: "octocat (run 7)" });

beforeAll(() => freshProject(P));
afterAll(() => freshProject(P));

describe("notifications", () => {
  it("one message per deploy, automatic rollback and manual rollback, with the facts and a text a chat shows", async () => {
    const rx = await receiver(() => 200);
    try {
      const notify = <T extends { release?: string }>(action: Notification["action"], op: () => Promise<T>) =>
        notifying(
          rx.url(),
          what(action),
          (l) => warnings.push(l),
          op as () => Promise<T & { images?: Record<string, string> }>,
        );
      const ok = await notify("deploy", () => deploy(deployRequest(P, 18314)));
      await notify("deploy", () => deploy(deployRequest(P, 18314, { compose: releaseCompose("v2") })));
      const failed = await notify("deploy", () =>
        deploy(deployRequest(P, 18314, { compose: releaseCompose("v3"), healthTimeoutSeconds: 20 })),
      ).catch((e: unknown) => e);
      expect(failed).toMatchObject({ code: "DEPLOY_ROLLED_BACK" });
      const back = await notify("rollback", () => rollback(deployRequest(P, 18314)));
      expect(back.release).toBe(ok.release);
      expect(rx.got.map((n) => [n.action, n.result])).toEqual([
        ["deploy", "ok"],
        ["deploy", "ok"],
        ["deploy", "rolled-back"],
        ["rollback", "ok"],
      ]);
      const [first, , second, last] = rx.got;
      expect(last).toMatchObject({ release: ok.release, text: expect.stringMatching(/^✅ nt: rollback of /) });
      expect(first).toMatchObject({
        project: P,
        release: ok.release,
        by: "octocat (run 7)",
        images: ok.images,
        text: expect.stringMatching(new RegExp(`^✅ ${P}: deploy of ${ok.release} ok .*by octocat \\(run 7\\)$`)),
      });
      expect(Object.values(first!.images!).every((i) => /@sha256:[0-9a-f]{64}$/.test(i))).toBe(true);
      expect(first!.durations?.switch).toBeGreaterThan(0);
      expect(second).toMatchObject({
        code: "DEPLOY_ROLLED_BACK",
        hint: expect.any(String),
        text: expect.stringMatching(/^↩️ nt: deploy rolled back, DEPLOY_ROLLED_BACK: release \S+ failed/),
      });
      expect(warnings).toEqual([]);
    } finally {
      rx.close();
    }
  }, 180_000);

  it("a receiver that answers 500, then 200: retried, delivered once", async () => {
    const rx = await receiver((n) => (n === 0 ? 500 : 200));
    try {
      await notifying(
        rx.url(),
        what("deploy"),
        (l) => warnings.push(l),
        async () => ({ release: "r1", images: {}, durations: {} }),
      );
      expect([rx.requests(), rx.got.length, warnings]).toEqual([2, 1, []]);
    } finally {
      rx.close();
    }
  });

  it("a receiver that never answers: the deploy finishes within the budget, a warning says so, nothing fails", async () => {
    const rx = await receiver(() => undefined);
    const seen: string[] = [];
    try {
      const t0 = performance.now();
      const r = await notifying(
        rx.url(),
        what("deploy"),
        (l) => seen.push(l),
        () => deploy(deployRequest(P, 18314, { compose: releaseCompose("v2") })),
        3000,
      );
      const spentAfterDeploy = (performance.now() - t0) / 1000 - Object.values(r.durations).reduce((a, b) => a + b, 0);
      expect(r.release).toBeTruthy();
      expect(seen).toEqual([
        expect.stringMatching(
          /^notification not delivered \(no answer in time, \d+ attempt\(s\) in [0-9.]+s\); the operation itself is not affected$/,
        ),
      ]);
      expect(spentAfterDeploy).toBeLessThan(3 + 2); // the budget, and the deploy's own connection time not in its steps
      expect(seen.join("")).not.toContain(TOKEN);
    } finally {
      rx.close();
    }
  }, 120_000);

  it("the URL's token is in no printed line and no history", async () => {
    await sleep(10);
    expect(printed.join("\n")).not.toContain(TOKEN);
    expect(sh(`cat /home/deploy/production/${P}/.releases/history.jsonl`)).not.toContain(TOKEN);
  });
});
