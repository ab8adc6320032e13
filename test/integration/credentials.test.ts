/**
 * Credentials that cannot stick: a real credential helper (pass, with a gpg key)
 * on the deploy user, tokens sent only to their own registry and only over
 * https, registries with ports, untrusted certificates named as such.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Secret } from "@dagger.io/dagger";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseComposeStack, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import { failed } from "../../.dagger/src/core/findings.js";
import { checkRegistry, registryLogin, vpsInputs } from "../../.dagger/src/inputs/inputs.js";
import { RegistryClient } from "../../.dagger/src/registry/client.js";
import { doctor } from "../../.dagger/src/registry/doctor.js";
import { resolveReleaseDigests } from "../../.dagger/src/registry/resolve.js";
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { rollback } from "../../.dagger/src/remote/rollback.js";
import { auditSecrets } from "../testbed/audit.js";
import {
  bed,
  deployRequest,
  freshProject,
  hostKeyLine,
  privateKey,
  registryPassword,
  releaseCompose,
  sh,
  sshOptions,
  webStatus,
  testEdge,
} from "../testbed/bed.js";

auditSecrets();

const HOME = "/home/deploy";
/**
 * What the deploy user's pass store holds (docker-credential-pass keeps its entries under docker-credential-helpers/).
 */
const storeEntries = () => sh(`find ${HOME}/.password-store -name '*.gpg' 2>/dev/null || true`).trim();
/** A Dagger Secret as the module's inputs read it. */
const secret = (value: string) => ({ plaintext: async () => value }) as unknown as Secret;

describe("a credential helper on the server", () => {
  it("is really there: docker's CLI stores a plain `docker login` in it (so its silence below means something)", () => {
    execFileSync(
      "su",
      [
        "-",
        "deploy",
        "-c",
        `d=$(mktemp -d); DOCKER_CONFIG=$d docker login -u ${bed.registry.user} --password-stdin ${bed.registry.host} > /dev/null 2>&1; rm -rf $d`,
      ],
      { input: registryPassword },
    );
    expect(storeEntries()).toMatch(/docker-credential-helpers/);
    sh(`rm -rf ${HOME}/.password-store/docker-credential-helpers`);
    expect(storeEntries()).toBe("");
  });

  it("never receives the token: deploy, rollback and doctor succeed and leave the store empty", async () => {
    freshProject("helper");
    await deploy(deployRequest("helper", 18211, { compose: releaseCompose("v1") }));
    await deploy(deployRequest("helper", 18211, { compose: releaseCompose("v2") }));
    expect(storeEntries()).toBe("");
    await rollback({
      ssh: sshOptions(),
      dir: "production/helper",
      project: "helper",
      lockTimeoutSeconds: 30,
      healthTimeoutSeconds: 40,
      edge: testEdge,
      by: "vitest",
      log: () => {},
      registry: { host: bed.registry.host, user: bed.registry.user, token: registryPassword },
    });
    expect((await webStatus(18211)).body).toContain("Version v1.");
    const stack = parseComposeStack(
      readFileSync("compose/docker-compose.prod.yml", "utf8"),
      "compose/docker-compose.prod.yml",
      bed.registry.prefix,
    );
    const findings = await doctor({
      registry: bed.registry.host,
      repositories: stack.builds.map((b) => b.repository),
      writtenNames: stack.builds.map((b) => b.writtenName),
      tag: "v1",
      pull: { user: bed.registry.user, token: registryPassword },
      vps: sshOptions(),
    });
    expect(failed(findings)).toBe(false);
    expect(findings.find((f) => f.check.endsWith("(from the VPS)"))).toMatchObject({ status: "ok" });
    expect(storeEntries()).toBe("");
  });

  it("a throwaway config left by a killed run is swept by the next one", async () => {
    // pid 2^22-1 is above Linux's pid_max default: no live shell owns it
    sh(
      `install -d -m 700 -o deploy -g deploy ${HOME}/.vps-pipeline-auth.4194303.killed && echo '{"auths":{}}' > ${HOME}/.vps-pipeline-auth.4194303.killed/config.json`,
    );
    await deploy(deployRequest("helper", 18211, { compose: releaseCompose("v2") }));
    expect(sh(`ls -a ${HOME}`)).not.toContain("vps-pipeline-auth");
  });
});

/**
 * An HTTPS server on the test bed's host address, with the test bed's certificate (or another), that records what it
 * got.
 */
interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

async function recordingRegistry(
  port: number,
  cert: { key: string; cert: string },
  answer: (path: string, authorization: string | undefined) => Answer,
) {
  const seen: { path: string; authorization: string | undefined }[] = [];
  const server: Server = createServer(cert, (req, res) => {
    seen.push({ path: req.url ?? "", authorization: req.headers.authorization });
    const a = answer(req.url ?? "", req.headers.authorization);
    res.writeHead(a.status, a.headers ?? {});
    res.end(a.body ?? "");
  });
  await new Promise<void>((r) => server.listen(port, bed.vps.hostIp, r));
  return { seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const bedCert = {
  key: readFileSync(`${bed.stateDir}/registry.key`, "utf8"),
  cert: readFileSync(`${bed.stateDir}/registry.crt`, "utf8"),
};
const DIGEST = `sha256:${"d".repeat(64)}`;

describe("tokens go only to the registry they are for, and only over https", () => {
  let other: Awaited<ReturnType<typeof recordingRegistry>>;
  beforeAll(async () => {
    // Like Docker Hub: a bearer challenge, and a token service that hands anonymous pullers a token.
    other = await recordingRegistry(5446, bedCert, (path, authorization): Answer => {
      if (path.startsWith("/token"))
        return { status: 200, headers: { "Content-Type": "application/json" }, body: '{"token":"anonymous"}' };
      if (authorization !== "Bearer anonymous")
        return {
          status: 401,
          headers: { "WWW-Authenticate": `Bearer realm="https://${bed.vps.hostIp}:5446/token",service="elsewhere"` },
        };
      return { status: 200, headers: { "Docker-Content-Digest": DIGEST } };
    });
  });
  afterAll(() => other.close());

  it("resolving a tag on another registry sends it no credentials", async () => {
    const compose = readFileSync("compose/docker-compose.prod.yml", "utf8").replace(
      "  api:\n",
      `  api:\n    image: ${bed.vps.hostIp}:5446/elsewhere/api\n`,
    );
    const stack = parseComposeStack(compose, "compose/docker-compose.prod.yml", bed.registry.prefix);
    const digests = await resolveReleaseDigests(stack, [], "v1", {
      host: bed.registry.host,
      user: bed.registry.user,
      token: registryPassword,
    });
    expect(digests.api).toBe(DIGEST);
    expect(digests.web).toBe(bed.images["web:v1"]);
    // the token service was asked, without the credentials of --registry
    expect(other.seen.filter((x) => x.path.startsWith("/token")).map((x) => x.authorization)).toEqual([undefined]);
    expect(other.seen.some((x) => /^Basic /.test(x.authorization ?? ""))).toBe(false);
  });

  it("a registry whose token service is plain http gets no credentials, and says why", async () => {
    const plain = await recordingRegistry(5447, bedCert, () => ({
      status: 401,
      headers: { "WWW-Authenticate": `Bearer realm="http://${bed.vps.hostIp}:5448/token",service="x"` },
    }));
    const tokenRequests: string[] = [];
    const http = (await import("node:http")).createServer((req, res) => {
      tokenRequests.push(String(req.headers.authorization));
      res.end("{}");
    });
    await new Promise<void>((r) => http.listen(5448, bed.vps.hostIp, r));
    try {
      const err = await new RegistryClient({ host: `${bed.vps.hostIp}:5447`, user: "u", token: "never-sent" })
        .manifestDigest("a/b", "v1")
        .catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: "REGISTRY_INSECURE",
        message: expect.stringMatching(/http:\/\/10\.200\.0\.1:5448.*not sent/),
      });
      expect(tokenRequests).toEqual([]);
    } finally {
      http.close();
      await plain.close();
    }
  });
});

describe("registries with a port, and certificates", () => {
  it("a registry on host:port works end to end through the module's inputs", async () => {
    expect(checkRegistry(bed.registry.host)).toBe(bed.registry.host); // 10.200.0.1:5443
    const login = await registryLogin(bed.registry.host, bed.registry.user, secret(registryPassword), "pullUser");
    const v = await vpsInputs({
      host: bed.vps.host,
      hostKey: hostKeyLine,
      sshKey: secret(privateKey),
      user: "deploy",
      port: 22,
      project: "withport",
      dir: "",
      lockTimeout: 30,
      healthTimeout: 40,
      keepReleases: 3,
      by: "",
      edgeImage: testEdge.image,
      edgeTls: testEdge.tls,
      orchestrator: "compose",
      resticImage: "vps-testbed/restic:0.14",
      keepSnapshots: 10,
      keepSnapshotDays: 0,
      keepOffsiteSnapshots: 30,
      keepOffsiteSnapshotDays: 0,
      backupOffsite: "",
      backupOffsiteHostKey: "",
    });
    expect(v.by).toMatch(/^unnamed deployer with key SHA256:[A-Za-z0-9+/]{43} \(pass --by\)$/);
    const stack = parseComposeStack(
      readFileSync("compose/docker-compose.prod.yml", "utf8"),
      "compose/docker-compose.prod.yml",
      bed.registry.prefix,
    );
    const digests = await resolveReleaseDigests(stack, [], "v2", login);
    freshProject("withport");
    await deploy({
      ...v,
      sha: "e".repeat(40),
      compose: renderRelease(stack, digests),
      env: "WEB_PORT=18212\n",
      registry: login!,
      log: () => {},
    });
    expect((await webStatus(18212)).body).toContain("Version v2.");
    expect(sh(`tail -n 1 ${HOME}/production/withport/.releases/history.jsonl`)).toContain(
      "unnamed deployer with key SHA256:",
    );
  });

  it("tokens read with file: or cmd: (a newline at the end, or CR LF) deploy; a rollback whose images are all here logs in nowhere", async () => {
    const v = await vpsInputs({
      host: bed.vps.host,
      hostKey: hostKeyLine,
      sshKey: secret(privateKey),
      user: "deploy",
      port: 22,
      project: "newline",
      dir: "",
      lockTimeout: 30,
      healthTimeout: 40,
      keepReleases: 3,
      by: "newline test",
      edgeImage: testEdge.image,
      edgeTls: testEdge.tls,
      orchestrator: "compose",
      resticImage: "vps-testbed/restic:0.14",
      keepSnapshots: 10,
      keepSnapshotDays: 0,
      keepOffsiteSnapshots: 30,
      keepOffsiteSnapshotDays: 0,
      backupOffsite: "",
      backupOffsiteHostKey: "",
    });
    const stack = parseComposeStack(
      readFileSync("compose/docker-compose.prod.yml", "utf8"),
      "compose/docker-compose.prod.yml",
      bed.registry.prefix,
    );
    freshProject("newline");
    for (const [version, ending] of [
      ["v1", "\n"],
      ["v2", "\r\n"],
    ] as const) {
      const login = await registryLogin(
        bed.registry.host,
        bed.registry.user,
        secret(`${registryPassword}${ending}`),
        "pullUser",
      );
      expect(login!.token).toBe(registryPassword);
      const digests = await resolveReleaseDigests(stack, [], version, login);
      await deploy({
        ...v,
        sha: (version === "v1" ? "1" : "2").repeat(40),
        compose: renderRelease(stack, digests),
        env: "WEB_PORT=18214\n",
        registry: login!,
        log: () => {},
      });
      expect((await webStatus(18214)).body).toContain(`Version ${version}.`);
    }
    // --registry not given to a rollback: the login would go to the release's own registry, but every image is here, so
    // there is none (a wrong token cannot fail it)
    const r = await rollback({
      ...v,
      registry: { host: "", user: bed.registry.user, token: "not-the-token" },
      log: () => {},
    });
    expect(r.release).toMatch(/-1111111$/);
    expect((await webStatus(18214)).body).toContain("Version v1.");
    const err = await registryLogin(bed.registry.host, bed.registry.user, secret(" \n"), "pullUser").catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: "INVALID_INPUT",
      message: expect.stringMatching(/^pullToken: the secret is empty/),
    });
    freshProject("newline"); // its containers and its edge route go: the port is free for the next test
  });

  it("an untrusted certificate is named as such, from here and from the VPS", async () => {
    const dir = mkdtempSync(join(tmpdir(), "selfsigned-"));
    sh(
      `openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=${bed.vps.hostIp} -addext subjectAltName=IP:${bed.vps.hostIp} -keyout ${dir}/k -out ${dir}/c 2>/dev/null`,
    );
    const untrusted = await recordingRegistry(
      5449,
      { key: readFileSync(`${dir}/k`, "utf8"), cert: readFileSync(`${dir}/c`, "utf8") },
      () => ({ status: 404 }),
    );
    try {
      const err = await new RegistryClient({ host: `${bed.vps.hostIp}:5449` })
        .manifestDigest("a/b", "v1")
        .catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: "REGISTRY_CERT_UNTRUSTED",
        hint: expect.stringMatching(/certs\.d\/10\.200\.0\.1:5449\/ca\.crt/),
      });
      const compose = releaseCompose("v1").replace(/image: \S+\/api@/, `image: ${bed.vps.hostIp}:5449/acme/api@`);
      freshProject("untrusted");
      const denied = await deploy(deployRequest("untrusted", 18213, { compose })).catch((e: unknown) => e);
      expect(denied).toMatchObject({
        code: "REGISTRY_CERT_UNTRUSTED",
        message: expect.stringMatching(/10\.200\.0\.1:5449 is not trusted on the VPS/),
      });
    } finally {
      await untrusted.close();
      sh(`rm -rf ${dir}`);
    }
  });
});
