import { describe, expect, it } from "vitest";
import {
  grantedActions,
  parseChallenge,
  registryHttpError,
  repositoryScope,
} from "../../.dagger/src/core/registry/registry-auth.js";
import { configuredRegistries } from "../../.dagger/src/core/registry/registry-commands.js";

describe("registry challenges", () => {
  it("parse GHCR's and distribution's WWW-Authenticate headers (recorded)", () => {
    expect(
      parseChallenge('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/gold/api:pull"'),
    ).toEqual({
      scheme: "bearer",
      realm: "https://ghcr.io/token",
      service: "ghcr.io",
      scope: "repository:acme/gold/api:pull",
    });
    expect(
      parseChallenge(
        'Bearer realm="https://10.200.0.1:5445/token",service="vps-testbed-registry",scope="repository:acme/gold-tracker/api:pull,push",error="insufficient_scope"',
      ),
    ).toMatchObject({ error: "insufficient_scope" });
    expect(parseChallenge('Basic realm="vps-testbed"')).toEqual({ scheme: "basic", realm: "vps-testbed" });
    expect(parseChallenge(null)).toBeUndefined();
    expect(parseChallenge("Negotiate abc")).toBeUndefined();
  });

  it("build scopes push-first, as registries print them", () => {
    expect(repositoryScope("acme/api", ["pull", "push"])).toBe("repository:acme/api:push,pull");
    expect(repositoryScope("acme/api", ["pull"])).toBe("repository:acme/api:pull");
  });

  it("read what a JWT grants, and say nothing of opaque tokens", () => {
    const claims = {
      access: [
        { type: "repository", name: "acme/api", actions: ["pull"] },
        { type: "repository", name: "other", actions: ["push"] },
      ],
    };
    const jwt = `e30.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`;
    expect(grantedActions(jwt, "acme/api")).toEqual(["pull"]);
    expect(grantedActions(jwt, "nothing")).toEqual([]);
    expect(grantedActions("djE6YWNtZS9hcGk6MTcwMDAwMDAwMA==", "acme/api")).toBeUndefined();
  });

  it("turn statuses into distinct errors: 401, 401 insufficient_scope, 403, 404", () => {
    expect(registryHttpError(401, "ghcr.io", "acme/api", "pull").code).toBe("REGISTRY_UNAUTHORIZED");
    expect(registryHttpError(401, "ghcr.io", "acme/api", "push", "insufficient_scope")).toMatchObject({
      code: "REGISTRY_INSUFFICIENT_SCOPE",
      hint: expect.stringMatching(/write:packages/),
    });
    expect(registryHttpError(403, "ghcr.io", "acme/api", "pull")).toMatchObject({
      code: "REGISTRY_DENIED",
      hint: expect.stringMatching(/org\.opencontainers\.image\.source/),
    });
    expect(registryHttpError(404, "ghcr.io", "acme/api", "pull").code).toBe("REGISTRY_NOT_FOUND");
    expect(registryHttpError(500, "ghcr.io", "acme/api", "pull").code).toBe("REGISTRY_FAILED");
  });
});

describe("a server's docker config", () => {
  it("lists the registries it stores logins for, without reading the secrets", () => {
    const conf = JSON.stringify({
      auths: { "ghcr.io": { auth: "b2N0bzpnaHBfeHh4" }, "https://index.docker.io/v1/": {} },
      credHelpers: { "123.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login" },
    });
    expect(configuredRegistries(conf)).toEqual(["ghcr.io", "index.docker.io", "123.dkr.ecr.eu-west-1.amazonaws.com"]);
    expect(configuredRegistries("")).toEqual([]);
    expect(configuredRegistries("{}")).toEqual([]);
  });
});
