/**
 * The GitHub wrapper cannot drift from the module: every `dagger call` line in
 * the workflows chains functions that exist, passes only arguments they have and
 * every argument they require. The checker is the module's own (core/ci/workflow.ts,
 * also behind its `dagger check`); here it reads the API from the introspector.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  chainOf,
  checkCall,
  daggerCalls,
  moduleRefProblem,
  words,
  type ApiShape,
  type WorkflowCall,
} from "../../.dagger/src/core/ci/workflow.js";
import { pullRequestProblems } from "../../.dagger/src/core/ci/pull-request-safety.js";
import { apiShape, introspect } from "./introspection.js";

function calls(): WorkflowCall[] {
  const dir = ".github/workflows";
  return readdirSync(dir).flatMap((file) => daggerCalls(file, readFileSync(`${dir}/${file}`, "utf8")));
}

let api: ApiShape;
beforeAll(() => {
  api = apiShape(introspect());
});

describe("the workflows' dagger calls", () => {
  it("are there: ship on push, rollback on dispatch, status after a failure, previews up and down, all through vps(...)", () => {
    expect(
      calls()
        .map((c) => `${c.file}:${chainOf(c.line).join(" ")}`)
        .sort(),
    ).toEqual([
      "deploy.yml:vps rollback",
      "deploy.yml:vps ship",
      "deploy.yml:vps status",
      "preview.yml:vps preview",
      "preview.yml:vps preview-down",
      "preview.yml:vps preview-down",
    ]);
  });

  it("previews: never for a fork's pull request (it has no secrets), one run per pull request never cut off, least privilege, the URL shown", () => {
    const wf = parse(readFileSync(".github/workflows/preview.yml", "utf8")) as {
      on: { pull_request_target: { types: string[] } };
      permissions: Record<string, string>;
      concurrency: { group: string; "cancel-in-progress": boolean };
      jobs: Record<
        string,
        {
          if: string;
          environment: string | { name: string; url: string };
          steps: { with?: { args?: string; ref?: string } }[];
        }
      >;
    };
    expect(wf.on.pull_request_target.types.sort()).toEqual(["closed", "opened", "reopened", "synchronize"]);
    expect(wf.permissions).toEqual({ contents: "read", packages: "write", deployments: "write" });
    expect(wf.concurrency).toEqual({
      group: "preview-${{ github.event.pull_request.number || 'expire' }}",
      "cancel-in-progress": false,
    });
    for (const job of ["preview", "preview-down"])
      expect(wf.jobs[job]!.if).toContain("github.event.pull_request.head.repo.full_name == github.repository");
    expect(wf.jobs.preview!.environment).toEqual({ name: "preview", url: "${{ steps.url.outputs.url }}" });
    // the preview never gets production's .env
    const args = wf.jobs.preview!.steps.map((s) => s.with?.args ?? "").join(" ");
    expect(args).toContain("--preview-env=env:PREVIEW_ENV");
    expect(args).not.toContain("--env-file");
    expect(wf.jobs["preview-down"]!.steps[0]!.with?.ref).toBe("${{ github.event.pull_request.base.ref }}");
  });

  it("a pull request's code never holds a deploy key: the checker refuses the preview workflow as it was, and passes ours", () => {
    const before = pullRequestProblems(
      "preview.yml",
      readFileSync("test/fixtures/workflows/preview-before-issue-33.yml", "utf8"),
    ).join("\n");
    expect(before).toMatch(/jobs\.preview reads secrets\..* on `pull_request`/);
    expect(before).toMatch(/jobs\.preview checks out the pull request's head where it loads the module/);
    expect(before).toMatch(/jobs\.preview uses production's SSH key/);
    expect(before).toMatch(/jobs\.preview holds secrets but runs for forks or Dependabot/);
    for (const file of readdirSync(".github/workflows"))
      expect(pullRequestProblems(file, readFileSync(`.github/workflows/${file}`, "utf8")), file).toEqual([]);
    // ours: the base branch's module at the root, the pull request's files beside it, the preview's own key
    const wf = parse(readFileSync(".github/workflows/preview.yml", "utf8")) as {
      jobs: { preview: { env: Record<string, string>; steps: { uses?: string; with?: Record<string, string> }[] } };
    };
    const checkouts = wf.jobs.preview.steps.filter((s) => /checkout/.test(s.uses ?? ""));
    expect(checkouts.map((s) => [s.with?.ref, s.with?.path])).toEqual([
      ["${{ github.event.pull_request.base.sha }}", undefined],
      ["${{ github.event.pull_request.head.sha }}", "pull-request"],
    ]);
    expect(wf.jobs.preview.env.SSH_KEY).toBe("${{ secrets.VPS_PREVIEW_SSH_KEY }}");
  });

  it("name only functions and arguments the module has, and every argument a function requires", () => {
    for (const call of calls()) expect(checkCall(call, api), call.line).toEqual([]);
  });

  it("fit the module however the engine names its objects (the engine says VpsPipelineVps where the introspector says Vps)", () => {
    const engine = apiShape(introspect(), (n) => (n === "VpsPipeline" ? n : `VpsPipeline${n}`));
    expect(Object.keys(engine.objects).sort()).toEqual(Object.keys(api.objects).sort());
    expect(engine.objects.VpsPipeline?.vps?.returns).toBe("Vps");
    for (const call of calls()) expect(checkCall(call, engine), call.line).toEqual([]);
    expect(
      checkCall({ file: "x.yml", line: "vps --host=h --host-key=k --ssh-key=env:K --project=p shipit" }, engine).join(
        "",
      ),
    ).toMatch(/Vps has no function `shipit`/);
  });

  it("the checker itself finds a missing function, an unknown flag and a missing required argument", () => {
    const bad = (line: string) => checkCall({ file: "x.yml", line }, api).join("\n");
    expect(bad("vps --host=h --host-key=k --ssh-key=env:K --project=p shipit")).toMatch(/Vps has no function `shipit`/);
    expect(bad("--colour=red vps --host=h --host-key=k --ssh-key=env:K --project=p status")).toMatch(
      /\(constructor\) has no argument --colour/,
    );
    expect(bad("vps --host=h --host-key=k --project=p status")).toMatch(/vps needs --ssh-key/);
    // the rest may come from vps-pipeline.yml
    expect(bad("vps --ssh-key=env:K status")).toBe("");
    expect(bad("vps --host=h --host-key=k --ssh-key=env:K --project=p deploy --tag=x")).toMatch(
      /deploy needs --git-sha/,
    );
    expect(bad("--progress=plain vps --host=h --host-key=k --ssh-key=env:K --project=p status --json")).toBe("");
    // a step that loads the module implicitly: Dagger 1.0 refuses it
    expect(
      checkCall(
        { file: "x.yml", line: "vps --host=h --host-key=k --ssh-key=env:K --project=p status", module: "" },
        api,
      ).join(""),
    ).toMatch(/no `module:`; Dagger 1\.0 loads no module implicitly/);
    expect(calls().every((c) => c.module === ".")).toBe(true);
  });

  it("load the module from this checkout or by version: a remote module pinned to a release or a commit, with --source=.", () => {
    const line = "--source=. vps --ssh-key=env:K ship --git-sha=$GITHUB_SHA";
    const problems = (module: string, l = line) => checkCall({ file: "x.yml", line: l, module }, api).join("\n");
    for (const ok of [
      ".",
      "./ci",
      "github.com/acme/vps-pipeline@v0.1.0",
      `github.com/acme/vps-pipeline@${"a".repeat(40)}`,
    ])
      expect(problems(ok), ok).toBe("");
    for (const unpinned of [
      "github.com/acme/vps-pipeline@main",
      "github.com/acme/vps-pipeline",
      "github.com/acme/vps-pipeline@v1",
    ])
      expect(problems(unpinned), unpinned).toMatch(/is not pinned: name a release/);
    expect(problems("github.com/acme/vps-pipeline@v0.1.0", "vps --ssh-key=env:K ship --git-sha=x")).toMatch(
      /reads --source=\. \(your checkout\)/,
    );
    expect(moduleRefProblem(".")).toBeUndefined();
  });

  it("ship to production only from the default branch: a manual run from another branch is refused before anything is built", () => {
    const wf = parse(readFileSync(".github/workflows/deploy.yml", "utf8")) as {
      jobs: Record<string, { steps: { name?: string; if?: string; run?: string; id?: string }[] }>;
    };
    const steps = wf.jobs.deploy!.steps;
    const guard = steps.findIndex(
      (s) => /workflow_dispatch/.test(s.if ?? "") && /default_branch/.test(s.if ?? "") && /exit 1/.test(s.run ?? ""),
    );
    expect(guard).toBeGreaterThanOrEqual(0);
    expect(guard).toBeLessThan(steps.findIndex((s) => s.id === "ship"));
  });

  it("pass secrets by reference (env:NAME), never by value, and no expression is pasted into the line", () => {
    for (const call of calls()) {
      expect(call.line, call.file).not.toContain("${{");
      for (const w of words(call.line)) {
        const [flag, value = ""] = w.split(/=(.*)/s);
        if (/token|ssh-key|env-file|preview-env|notify-url|passphrase/.test(flag!))
          expect(value, `${call.file}: ${flag}`).toMatch(/^env:[A-Z_]+$/);
        expect(value, `${call.file}: ${flag}`).not.toMatch(/secrets\./);
      }
    }
  });

  it("a failed run's summary ends with the line to run on a laptop: the failed step's own, with this run's values and the secrets by reference", () => {
    const wf = parse(readFileSync(".github/workflows/deploy.yml", "utf8")) as {
      jobs: {
        deploy: { steps: { name?: string; with?: { args?: string }; env?: Record<string, string>; run?: string }[] };
      };
    };
    const steps = wf.jobs.deploy.steps;
    const summary = steps.find((s) => s.name === "Job summary")!;
    expect(summary.env!.SHIP_LINE).toBe(steps.find((s) => s.name === "Ship")!.with!.args);
    expect(summary.env!.ROLLBACK_LINE).toBe(steps.find((s) => s.name === "Roll back")!.with!.args);
    for (const line of [summary.env!.SHIP_LINE!, summary.env!.ROLLBACK_LINE!])
      expect(checkCall({ file: "deploy.yml", line, module: "." }, api)).toEqual([]);
    // the script as the runner runs it, after a failed ship
    const dir = mkdtempSync(join(tmpdir(), "summary-"));
    try {
      const out = join(dir, "summary.md");
      execFileSync("bash", ["-e", "-c", summary.run!], {
        env: {
          PATH: process.env.PATH!,
          SHIP_LINE: summary.env!.SHIP_LINE!,
          ROLLBACK_LINE: summary.env!.ROLLBACK_LINE!,
          SHIP_OUTCOME: "failure",
          GITHUB_SHA: "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
          VPS_HOST_KEY: "203.0.113.7 ssh-ed25519 AAAA",
          GHCR_TOKEN: "never-printed",
          GITHUB_STEP_SUMMARY: out,
        },
      });
      const text = readFileSync(out, "utf8");
      expect(text).toContain("git checkout 1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b");
      expect(text).toContain(`dagger -m . call ${summary.env!.SHIP_LINE}\n`);
      expect(text).toMatch(/^export VPS_HOST_KEY=203\.0\.113\.7\\ ssh-ed25519\\ AAAA$/m);
      expect(text).not.toContain("never-printed");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
