/**
 * The registry client, tag resolution and doctor against the test bed's
 * registries: htpasswd (basic auth) and token auth with our token server
 * (rw: push,pull; ro: pull only; blocked: 403 from the token server).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { parseComposeStack, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import { failed } from "../../.dagger/src/core/findings.js";
import { RegistryClient } from "../../.dagger/src/registry/client.js";
import { doctor, type DoctorInput } from "../../.dagger/src/registry/doctor.js";
import { lookupScopes } from "../../.dagger/src/registry/github.js";
import { resolveReleaseDigests } from "../../.dagger/src/registry/resolve.js";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { bed, deployRequest, registryPassword, sh, sshOptions, tokenPasswords, webStatus } from "../testbed/bed.js";
import { readFileSync } from "node:fs";

const TOKEN_HOST = bed.tokenRegistry.host;
const API = "acme/gold-tracker/api";
const token = (user: "rw" | "ro" | "blocked", password = tokenPasswords[user]) =>
  new RegistryClient({ host: TOKEN_HOST, user, token: password, timeoutMs: 5000 });

describe("registry client", () => {
  it("resolves a tag to the manifest digest with basic auth (htpasswd) and with the bearer flow", async () => {
    const basic = new RegistryClient({ host: bed.registry.host, user: bed.registry.user, token: registryPassword });
    expect(await basic.manifestDigest(API, "v1")).toBe(bed.images["api:v1"]);
    expect(await token("ro").manifestDigest(API, "v2")).toBe(bed.images["api:v2"]);
  });

  it("tells 401 (wrong password), 401 insufficient_scope (read-only pushing), 403 (refused) and 404 apart", async () => {
    await expect(
      new RegistryClient({ host: bed.registry.host, user: "pusher", token: "wrong" }).manifestDigest(API, "v1"),
    ).rejects.toMatchObject({ code: "REGISTRY_UNAUTHORIZED", hint: expect.stringMatching(/read:packages/) });
    // publish's first look (does sha-<7> exist?) is a read with the push token: its refusal is explained as a push
    // token's
    await expect(
      new RegistryClient({ host: bed.registry.host, user: "pusher", token: "wrong", pushing: true }).digestOf(
        API,
        "sha-1234567",
      ),
    ).rejects.toMatchObject({ code: "REGISTRY_UNAUTHORIZED", hint: expect.stringMatching(/write:packages/) });
    await expect(token("rw", "wrong").manifestDigest(API, "v1")).rejects.toMatchObject({
      code: "REGISTRY_UNAUTHORIZED",
    });
    await expect(token("ro").checkPush(API)).rejects.toMatchObject({ code: "REGISTRY_INSUFFICIENT_SCOPE" });
    await expect(token("blocked").manifestDigest(API, "v1")).rejects.toMatchObject({
      code: "REGISTRY_DENIED",
      hint: expect.stringMatching(/read:packages/),
    });
    await expect(token("ro").manifestDigest(API, "no-such-tag")).rejects.toMatchObject({ code: "REGISTRY_NOT_FOUND" });
    await expect(
      new RegistryClient({ host: `${bed.vps.hostIp}:5999`, timeoutMs: 2000 }).manifestDigest(API, "v1"),
    ).rejects.toMatchObject({ code: "REGISTRY_UNREACHABLE" });
  });

  it("checks push access without writing a blob, manifest or tag: from the token's grant, or an upload it cancels", async () => {
    // distribution keeps a hash-state file of a cancelled upload under _uploads: registry-internal, not content
    const files = () => sh(`find ${bed.stateDir}/registry-data -type f -not -path '*/_uploads/*' | sort`);
    const before = files();
    expect(await token("rw").checkPush(API)).toBe("the registry's token grants push,pull");
    const basic = new RegistryClient({ host: bed.registry.host, user: bed.registry.user, token: registryPassword });
    expect(await basic.checkPush(API)).toBe("an upload was accepted (and cancelled)");
    expect(files()).toBe(before);
  });
});

describe("tags for a commit already published", () => {
  it("points another tag at an existing digest through the registry API, and tells a missing tag from an error", async () => {
    const rw = token("rw");
    expect(await rw.digestOf(API, "no-such-tag")).toBeUndefined();
    const tag = `retag-${Date.now()}`;
    await rw.tag(API, bed.images["api:v1"]!, tag);
    expect(await rw.digestOf(API, tag)).toBe(bed.images["api:v1"]);
    await expect(token("ro").tag(API, bed.images["api:v1"]!, `${tag}-ro`)).rejects.toMatchObject({
      code: "REGISTRY_INSUFFICIENT_SCOPE",
    });
  });
});

describe("deploy with a tag", () => {
  it("resolves every built service's tag to a digest first, then runs exactly those digests", async () => {
    const stack = parseComposeStack(
      readFileSync("compose/docker-compose.prod.yml", "utf8"),
      "compose/docker-compose.prod.yml",
      `${TOKEN_HOST}/acme/gold-tracker`,
    );
    const digests = await resolveReleaseDigests(stack, [`web=${TOKEN_HOST}/acme/gold-tracker/web:v1`], "v2", {
      host: TOKEN_HOST,
      user: "ro",
      token: tokenPasswords.ro,
    });
    expect(digests).toEqual({
      migrate: bed.images["migrate:v2"],
      api: bed.images["api:v2"],
      web: bed.images["web:v1"],
    });
    sh("rm -rf /home/deploy/production/bytag");
    await deploy(
      deployRequest("bytag", 18091, {
        compose: renderRelease(stack, digests),
        registry: { host: TOKEN_HOST, user: "ro", token: tokenPasswords.ro },
      }),
    );
    expect((await webStatus(18091)).body).toContain("Version v1.");
    expect(sh(`docker inspect --format '{{.Config.Image}}' bytag-api-1`).trim()).toBe(
      `${TOKEN_HOST}/acme/gold-tracker/api@${bed.images["api:v2"]}`,
    );
  });

  it("a pull refused by the token server fails the deploy with the same diagnosis, changing nothing", async () => {
    const stack = parseComposeStack(
      readFileSync("compose/docker-compose.prod.yml", "utf8"),
      "compose/docker-compose.prod.yml",
      `${TOKEN_HOST}/acme/gold-tracker`,
    );
    const release = renderRelease(stack, {
      migrate: bed.images["migrate:v1"]!,
      api: bed.images["api:v1"]!,
      web: bed.images["web:v1"]!,
    });
    const err = await deploy(
      deployRequest("bytag", 18091, {
        compose: release,
        registry: { host: TOKEN_HOST, user: "blocked", token: tokenPasswords.blocked },
      }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: expect.stringMatching(/^REGISTRY_(DENIED|UNAUTHORIZED)$/) });
    expect((await webStatus(18091)).body).toContain("Version v1.");
  });
});

describe("doctor", () => {
  const stack = parseComposeStack(
    readFileSync("compose/docker-compose.prod.yml", "utf8"),
    "compose/docker-compose.prod.yml",
    `${TOKEN_HOST}/Acme/Gold-Tracker`,
  );
  const input = (over: Partial<DoctorInput>): DoctorInput => ({
    registry: TOKEN_HOST,
    repositories: stack.builds.map((b) => b.repository),
    writtenNames: stack.builds.map((b) => b.writtenName),
    tag: "v1",
    push: { user: "rw", token: tokenPasswords.rw },
    pull: { user: "ro", token: tokenPasswords.ro },
    vps: sshOptions(),
    ...over,
  });
  afterAll(() => sh("rm -f /home/deploy/.docker/config.json"));

  it("passes when the push token may push, the pull token may pull from here and from the VPS", async () => {
    const f = await doctor(input({}));
    expect(failed(f)).toBe(false);
    const byCheck = Object.fromEntries(f.map((x) => [x.check, x.status]));
    expect(byCheck[`push ${API}`]).toBe("ok");
    expect(byCheck[`pull ${API} (from here)`]).toBe("ok");
    expect(byCheck[`pull ${TOKEN_HOST}/${API}:v1 (from the VPS)`]).toBe("ok");
    expect(byCheck["VPS docker config"]).toBe("ok");
    expect(byCheck["image name"]).toBe("warn"); // Acme/Gold-Tracker is published lowercase
    expect(sh("ls -a /home/deploy")).not.toMatch(/vps-pipeline-auth/);
  });

  it("fails with the fix when the push token is read-only and the pull token is refused, from here and from the VPS", async () => {
    const f = await doctor(
      input({
        push: { user: "ro", token: tokenPasswords.ro },
        pull: { user: "blocked", token: tokenPasswords.blocked },
      }),
    );
    expect(failed(f)).toBe(true);
    const get = (check: string) => f.find((x) => x.check === check);
    expect(get(`push ${API}`)).toMatchObject({
      status: "fail",
      detail: expect.stringMatching(/REGISTRY_INSUFFICIENT_SCOPE/),
      fix: expect.stringMatching(/write:packages/),
    });
    expect(get(`pull ${API} (from here)`)).toMatchObject({
      status: "fail",
      detail: expect.stringMatching(/REGISTRY_DENIED/),
    });
    expect(
      f
        .filter((x) => x.check.endsWith("(from the VPS)") || x.check === "pull from the VPS")
        .every((x) => x.status === "fail"),
    ).toBe(true);
    expect(JSON.stringify(f)).not.toContain(tokenPasswords.blocked);
  });

  it("flags a stale registry login left in the deploy user's docker config", async () => {
    sh(
      `install -o deploy -g deploy -m 600 /dev/null /home/deploy/.docker/config.json && printf '{"auths":{"https://${TOKEN_HOST}":{"auth":"c3RhbGU6c3RhbGU="}}}' > /home/deploy/.docker/config.json`,
    );
    const f = await doctor(input({}));
    expect(f.find((x) => x.check === "VPS docker config")).toMatchObject({
      status: "warn",
      fix: expect.stringMatching(/docker logout/),
    });
  });

  it("reads a GitHub token's scopes from X-OAuth-Scopes (a local stand-in answering as api.github.com does)", async () => {
    const server = createServer((req, res) => {
      const ok = req.headers.authorization === "token ghp_recorded";
      res.writeHead(
        ok ? 200 : 401,
        ok ? { "X-OAuth-Scopes": "read:packages, repo", "Content-Type": "application/json" } : {},
      );
      res.end("{}");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect(await lookupScopes("ghp_recorded", api)).toEqual({
        reachable: true,
        status: 200,
        scopes: ["read:packages", "repo"],
      });
      expect(await lookupScopes("ghp_other", api)).toMatchObject({ reachable: true, status: 401 });
      expect(await lookupScopes("x", "http://127.0.0.1:1", 1000)).toMatchObject({ reachable: false });
    } finally {
      server.close();
    }
  });
});
