/**
 * What `init` writes: a settings file that reads back as what was given (the required ones left out as lines to
 * fill in), and workflows that fit the module, pin it by version and keep their lines short (actionlint reads them
 * in .ci/lint-workflows, through write-init-workflows.ts).
 */
import { describe, expect, it } from "vitest";
import { checkCall, daggerCalls } from "../../.dagger/src/core/ci/workflow.js";
import { pullRequestProblems } from "../../.dagger/src/core/ci/pull-request-safety.js";
import {
  MODULE_VERSION,
  deployWorkflowText,
  previewWorkflowText,
  settingsFileText,
  type InitInput,
} from "../../.dagger/src/core/settings/init-files.js";
import { quoteYaml } from "../../.dagger/src/core/settings/yaml-scalar.js";
import { parseSettingsFile, settle } from "../../.dagger/src/core/settings/settings.js";
import { apiShape, introspect } from "./introspection.js";
import { parse } from "yaml";

const input = (given: InitInput["given"], composeName?: string): InitInput => ({
  composeFile: "docker-compose.prod.yml",
  composeName,
  given,
  moduleAddress: "github.com/acme/vps-pipeline",
  defaultBranch: "main",
});

describe("init", () => {
  it("writes the settings given, which read back as they were, and the required ones left out as lines to fill in", () => {
    const full = input({
      imagePrefix: "ghcr.io/acme/gold-tracker",
      platforms: ["linux/amd64"],
      host: "203.0.113.7",
      hostKey: "203.0.113.7 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
      project: "gold-tracker",
    });
    const f = parseSettingsFile(settingsFileText(full), "vps-pipeline.yml");
    expect(f.module).toEqual({
      composeFile: "docker-compose.prod.yml",
      imagePrefix: "ghcr.io/acme/gold-tracker",
      platforms: ["linux/amd64"],
    });
    expect(settle("vps", {}, f).values).toMatchObject({ host: "203.0.113.7", project: "gold-tracker" });
    const partial = settingsFileText(input({}, "gold"));
    expect(partial).toMatch(/^ {2}# host: …   # required: fill in$/m);
    expect(partial).toMatch(/^ {2}# host-key: …/m);
    expect(partial).toMatch(/^ {2}project: gold$/m); // the compose file's own name
    expect(() => settle("vps", {}, parseSettingsFile(partial, "vps-pipeline.yml"))).toThrow(
      /--host, --host-key are required/,
    );
  });

  it("quotes a value only where YAML would read it as something else", () => {
    for (const s of ["ghcr.io/a/b", "22", "yes", "a: b", "#x", "ssh-ed25519 AAAA", "1.5", "", "caddy:2@sha256:ab"])
      expect(parse(`k: ${quoteYaml(s)}`), s).toEqual({ k: s });
    expect(quoteYaml("ghcr.io/a/b")).toBe("ghcr.io/a/b");
  });

  it("writes a deploy workflow that fits the module, pins it by version, and carries only the secrets, the function and the commit", () => {
    const wf = deployWorkflowText(input({}));
    const calls = daggerCalls("deploy.yml", wf);
    expect(calls).toHaveLength(1);
    expect(checkCall(calls[0]!, apiShape(introspect()))).toEqual([]);
    expect(calls[0]!.module).toBe(`github.com/acme/vps-pipeline@${MODULE_VERSION}`);
    expect(calls[0]!.line.length).toBeLessThan(200);
    expect(calls[0]!.line).not.toMatch(/--host|--project|--image-prefix/);
  });

  it("writes a preview workflow that is safe for pull requests: pinned module, the base branch's settings, the preview's own key", () => {
    const wf = previewWorkflowText(input({}));
    const calls = daggerCalls("preview.yml", wf);
    expect(calls).toHaveLength(3);
    const api = apiShape(introspect());
    for (const c of calls) expect(checkCall(c, api), c.line).toEqual([]);
    expect(pullRequestProblems("preview.yml", wf)).toEqual([]);
    // the pull request's files are the source; the settings are the base branch's, never the pull request's
    expect(calls[0]!.line).toMatch(/^--source=\.\/pull-request --settings=\.\/vps-pipeline\.yml /);
    expect(wf).not.toContain("secrets.VPS_SSH_KEY");
    expect(calls[0]!.line).toContain("--preview-env=env:PREVIEW_ENV");
    expect(settingsFileText({ ...input({}), preview: true })).toMatch(/^ {2}# preview-domain: …   # required/m);
  });
});
