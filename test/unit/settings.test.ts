/**
 * Settings in one file: the compose-file search, vps-pipeline.yml read with every problem named, and the
 * precedence flag > file > default with the origin of each setting.
 */
import { describe, expect, it } from "vitest";
import { COMPOSE_FILE_CANDIDATES, findComposeFile } from "../../.dagger/src/core/settings/compose-file-search.js";
import {
  SECRET_SETTINGS,
  SETTINGS,
  formatOrigins,
  kebab,
  parseSettingsFile,
  settle,
} from "../../.dagger/src/core/settings/settings.js";
import { DEFAULTS } from "../../.dagger/src/core/defaults.js";
import { PipelineError } from "../../.dagger/src/core/errors.js";

const failure = (f: () => unknown): PipelineError => {
  try {
    f();
  } catch (e) {
    if (e instanceof PipelineError) return e;
    throw e;
  }
  throw new Error("did not throw");
};

describe("the compose file, when none is named", () => {
  it("is the production file at the root before the root's only file, and this repository's layout last", () => {
    const has = (files: string[]) => (p: string) => files.includes(p);
    expect(findComposeFile(has(["docker-compose.yml", "docker-compose.prod.yml"]))).toBe("docker-compose.prod.yml");
    expect(findComposeFile(has(["compose.yaml", "compose.prod.yaml"]))).toBe("compose.prod.yaml");
    expect(findComposeFile(has(["docker-compose.yml"]))).toBe("docker-compose.yml");
    expect(findComposeFile(has(["compose/docker-compose.prod.yml"]))).toBe("compose/docker-compose.prod.yml");
    expect(findComposeFile(has(["compose/docker-compose.prod.yml", "compose.yaml"]))).toBe("compose.yaml");
    expect(COMPOSE_FILE_CANDIDATES.at(-1)).toBe("compose/docker-compose.prod.yml");
  });

  it("is COMPOSE_NOT_FOUND listing every name looked for, and the two ways to name one", () => {
    const e = failure(() => findComposeFile(() => false));
    expect(e.code).toBe("COMPOSE_NOT_FOUND");
    for (const c of COMPOSE_FILE_CANDIDATES) expect(e.message).toContain(c);
    expect(e.hint).toMatch(/--compose-file=/);
    expect(e.hint).toMatch(/compose-file in vps-pipeline\.yml/);
  });
});

describe("vps-pipeline.yml", () => {
  const file = `# the team's settings
compose-file: deploy/compose.prod.yaml
image-prefix: ghcr.io/acme/gold-tracker
platforms: [linux/amd64]
vps:
  host: 203.0.113.7
  host-key: "203.0.113.7 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
  project: gold-tracker
  keep-releases: 8
  preview-cpus: 0.5
  edge-tls:
`;

  it("reads every setting by its flag's name, the server's under vps:", () => {
    const f = parseSettingsFile(file, "vps-pipeline.yml");
    expect(f.module).toEqual({
      composeFile: "deploy/compose.prod.yaml",
      imagePrefix: "ghcr.io/acme/gold-tracker",
      platforms: ["linux/amd64"],
    });
    expect(f.vps).toMatchObject({ host: "203.0.113.7", project: "gold-tracker", keepReleases: 8, previewCpus: "0.5" });
    // `edge-tls:` with nothing: as if not written
    expect(f.vps).not.toHaveProperty("edgeTls");
    expect(parseSettingsFile("", "vps-pipeline.yml")).toEqual({ path: "vps-pipeline.yml", module: {}, vps: {} });
  });

  it("refuses, all at once and by name: a secret, a misspelt key, a key in the wrong place, a value of the wrong kind", () => {
    const e = failure(() =>
      parseSettingsFile(
        `registry-token: ghp_x
image-prefx: ghcr.io/a/b
host: 203.0.113.7
vps:
  ssh-key: "-----BEGIN OPENSSH PRIVATE KEY-----"
  keep-releases: five
  platforms: [linux/amd64]
  port: 22.5
`,
        "ops/settings.yml",
      ),
    );
    expect(e.code).toBe("SETTINGS_INVALID");
    expect(e.message).toContain("ops/settings.yml");
    expect(e.message).toMatch(/registry-token: is a secret .* --registry-token=env:NAME/);
    expect(e.message).toMatch(/image-prefx: is not a setting \(did you mean image-prefix\?\)/);
    expect(e.message).toMatch(/^ {2}host: is a setting of the server: put it under `vps:`/m);
    expect(e.message).toMatch(/vps\.ssh-key: is a secret/);
    expect(e.message).toMatch(/vps\.keep-releases: must be a whole number/);
    expect(e.message).toMatch(/vps\.platforms: is a setting of the module/);
    expect(e.message).toMatch(/vps\.port: must be a whole number/);
    // the secret's value is never repeated
    expect(e.message).not.toContain("ghp_x");
    expect(e.message).not.toContain("BEGIN OPENSSH");
    expect(failure(() => parseSettingsFile("vps: [a]", "f.yml")).message).toMatch(/vps: must be a mapping/);
    expect(failure(() => parseSettingsFile("- a", "f.yml")).code).toBe("SETTINGS_INVALID");
    expect(failure(() => parseSettingsFile("a: [", "f.yml")).message).toMatch(/f\.yml: is not YAML/);
  });

  it("knows every secret as one, and every other setting of the module as a setting", () => {
    for (const name of Object.keys(SECRET_SETTINGS)) expect(SETTINGS.map((s) => s.name)).not.toContain(name);
    const keys = new Set(SETTINGS.map((s) => kebab(s.name)));
    expect(keys.size).toBe(SETTINGS.length);
    expect(keys).toContain("keep-offsite-snapshot-days");
  });
});

describe("precedence: a flag given > the file > the default", () => {
  const file = parseSettingsFile(
    "image-prefix: ghcr.io/acme/app\nvps:\n  host: 203.0.113.7\n  host-key: SHA256:x\n  project: app\n  keep-releases: 8\n  user: ops\n",
    "vps-pipeline.yml",
  );

  it("takes each setting from where it is given, and says where that was", () => {
    // what the CLI hands over: null for a flag left out
    const v = settle("vps", { host: null, project: "other", keepReleases: 3, user: null, port: null }, file);
    expect(v.values).toMatchObject({
      host: "203.0.113.7",
      project: "other",
      keepReleases: 3,
      user: "ops",
      port: DEFAULTS.port,
      lockTimeout: DEFAULTS.lockTimeout,
    });
    expect(v.from).toMatchObject({
      host: "file",
      project: "flag",
      keepReleases: "flag",
      user: "file",
      port: "default",
    });
    const m = settle("module", { imagePrefix: null, registry: "ghcr.io" }, file);
    expect(m.values).toMatchObject({ imagePrefix: "ghcr.io/acme/app", registry: "ghcr.io", platforms: [] });
    expect(m.from).toMatchObject({ imagePrefix: "file", registry: "flag", platforms: "default" });
    const text = formatOrigins({ ...m.from, ...v.from }, "vps-pipeline.yml");
    expect(text).toMatch(/from flags: registry, project, keep-releases/);
    expect(text).toMatch(/from vps-pipeline\.yml: image-prefix, host, host-key, user/);
  });

  it("a flag given as its default's value still wins over the file (it was given)", () => {
    expect(settle("vps", { keepReleases: DEFAULTS.keepReleases }, file).values.keepReleases).toBe(
      DEFAULTS.keepReleases,
    );
  });

  it("a required setting found nowhere is INVALID_INPUT naming the flag and the key, every one at once", () => {
    const e = failure(() => settle("vps", {}, undefined));
    expect(e.code).toBe("INVALID_INPUT");
    expect(e.message).toMatch(/--host, --host-key, --project are required/);
    expect(e.hint).toMatch(/vps\.host, vps\.host-key, vps\.project in vps-pipeline\.yml/);
  });
});
