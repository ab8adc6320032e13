/**
 * The module through the real Dagger CLI and engine (../shared/dagger-engine, started by bundle.sh), the
 * way a user runs it: `dagger -m <this checkout> call …` against the test bed's registry and VPS, secrets
 * as `file:` (ending in a newline) and `env:`. Each call is judged by what a user would check: its exit
 * code, the release it names, the server's state. This file: the example app, from its publish to its
 * preview, the calls building on each other in order (engine-repos.test.ts runs beside it: other
 * repositories, init, data). TEST_ENGINE=0 skips the file (locally only: .ci/run sets TEST_ENGINE=1).
 */
import { describe, expect, it } from "vitest";
import { introspect } from "../module/introspection.js";
import { bed, registryPassword, sh } from "../testbed/bed.js";
import { stepSeconds, type CallResult } from "./cli.js";
import {
  auditEngineSecrets,
  BASE,
  current,
  engineSuite,
  PREFIX,
  PREVIEW_DOMAIN,
  released,
  said,
  skip,
} from "./suite.js";

const P = "engapp";
const PORT = 18990;
const SHA = ["1", "2", "3"].map((c) => c.repeat(40));
const COMMIT_TIME = "2026-12-01T08:00:00Z";

/** An image's config, read from the test bed's registry (index or manifest). */
async function imageConfig(ref: string): Promise<{ config: { Labels: Record<string, string> }; created: string }> {
  const [, host, repo, digest] = /^([^/]+)\/(.+)@(sha256:[0-9a-f]{64})$/.exec(ref)!;
  const auth = { Authorization: `Basic ${Buffer.from(`pusher:${registryPassword}`).toString("base64")}` };
  const get = async (path: string, accept: string) => {
    const r = await fetch(`https://${host}/v2/${repo}/${path}`, { headers: { ...auth, Accept: accept } });
    expect(r.status, path).toBe(200);
    return r.json() as Promise<Record<string, unknown>>;
  };
  const types = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
  ].join(", ");
  let m = await get(`manifests/${digest}`, types);
  if (Array.isArray(m.manifests)) m = await get(`manifests/${(m.manifests as { digest: string }[])[0]!.digest}`, types);
  return get(`blobs/${(m.config as { digest: string }).digest}`, "*/*") as never;
}

describe.skipIf(skip)("the module through the real Dagger CLI and engine: the example app", () => {
  const eng = engineSuite("the example app", [P, `${P}-pr-7`], PORT);
  let published: string[] = [];
  let broken: string[] = [];
  const releases: string[] = [];

  it("lists every function, and every function's --help works", async () => {
    const first = await eng.call("functions", ["functions"]);
    eng.measured["dagger -m . functions (first: loads the module)"] = first.seconds;
    expect(first.code, said(first)).toBe(0);
    const api = introspect();
    const top = Object.keys(api.objects.VpsPipeline!.methods);
    const onVps = Object.keys(api.objects.Vps!.methods);
    const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    for (const f of top) expect(first.stdout).toContain(kebab(f));
    const helps = [
      ...top.map((f) => ["call", kebab(f), "--help"]),
      ...onVps.map((f) => ["call", "vps", kebab(f), "--help"]),
    ];
    const results: CallResult[] = [];
    // four at a time: each is a CLI process and one engine query
    for (let i = 0; i < helps.length; i += 4)
      results.push(...(await Promise.all(helps.slice(i, i + 4).map((h) => eng.call(h.join(" "), h)))));
    results.forEach((r, i) => {
      expect(r.code, `${helps[i]!.join(" ")}\n${said(r)}`).toBe(0);
      expect(r.stdout, helps[i]!.join(" ")).toMatch(/USAGE/);
    });
    eng.measured["call … --help (median)"] = results.map((r) => r.seconds).sort((a, b) => a - b)[results.length >> 1]!;
    // a default the engine once read as 1
    const logsHelp = results[helps.findIndex((h) => h[2] === "logs")]!;
    expect(logsHelp.stdout).toMatch(/--max-bytes int\s[^-]*\(default 1048576\)/);
    // closed choices are enums: --help lists their values (the CLI shows them upper case, takes them as written)
    const statusHelp = results[helps.findIndex((h) => h[1] === "vps" && h[2] === "status")]!.stdout;
    expect(statusHelp).toMatch(/--format JSON,MARKDOWN,TEXT\s/);
    // vps --help lists its arguments, and no setting among its functions (least of all a secret)
    const vpsHelp = results[helps.findIndex((h) => h[1] === "vps" && h[2] === "--help")]!.stdout;
    const functions = vpsHelp.slice(vpsHelp.indexOf("FUNCTIONS"), vpsHelp.indexOf("ARGUMENTS"));
    expect(functions, vpsHelp).toMatch(/\bship\b/);
    expect(functions).not.toMatch(/ssh-key|keep-releases|host-key|env-file/);
    expect(vpsHelp.slice(vpsHelp.indexOf("ARGUMENTS"))).toMatch(/--keep-releases int\s[^-]*Default: 5\./);
  }, 900_000);

  it("dagger check passes", async () => {
    const r = await eng.call("check", ["check"]);
    expect(r.code, said(r)).toBe(0);
  }, 600_000);

  it("publishes the example app (token from a file ending in a newline): one digest per service, the commit's time in the label", async () => {
    const r = await eng.call("publish", [
      ...eng.module(),
      "publish",
      `--git-sha=${SHA[0]}`,
      `--commit-time=${COMMIT_TIME}`,
      `--build-args=${BASE}`,
    ]);
    expect(r.code, said(r)).toBe(0);
    published = r.stdout.trim().split("\n");
    expect(published).toEqual([
      expect.stringMatching(new RegExp(`^${PREFIX}/migrate@sha256:[0-9a-f]{64}$`)),
      expect.stringMatching(new RegExp(`^${PREFIX}/api@sha256:[0-9a-f]{64}$`)),
      expect.stringMatching(new RegExp(`^${PREFIX}/web@sha256:[0-9a-f]{64}$`)),
    ]);
    const labels = (await imageConfig(published[1]!)).config.Labels;
    expect(labels).toMatchObject({
      "org.opencontainers.image.created": new Date(COMMIT_TIME).toISOString(),
      "org.opencontainers.image.revision": SHA[0],
    });
    // published again: the same commit is found and reused, nothing rebuilt
    const again = await eng.call("publish again", [
      ...eng.module(),
      "publish",
      `--git-sha=${SHA[0]}`,
      `--build-args=${BASE}`,
    ]);
    expect(again.code, said(again)).toBe(0);
    expect(again.stdout.trim().split("\n")).toEqual(published);
  }, 900_000);

  it("publishes a broken release (its api never gets healthy) for the rollback below", async () => {
    const r = await eng.call("publish (broken)", [
      ...eng.module(),
      "publish",
      `--git-sha=${SHA[2]}`,
      `--build-args=${BASE}`,
      "--build-args=HEALTHY=false",
    ]);
    expect(r.code, said(r)).toBe(0);
    broken = r.stdout.trim().split("\n");
    expect(broken[1]).not.toBe(published[1]);
  }, 900_000);

  it("plans the first deploy (nothing changes), with the port the .env gives", async () => {
    const r = await eng.call("plan", [...eng.module(), ...eng.vps(P), "plan", `--images=${published.join(",")}`]);
    expect(r.code, said(r)).toBe(0);
    expect(r.stdout).toContain(`${PORT}:8000`);
    expect(r.stdout).not.toContain("${WEB_PORT");
    expect(current(P)).toBe("");
  }, 600_000);

  it("deploys (first, then an upgrade), and a broken release is rolled back", async () => {
    const first = await eng.call("deploy (first)", [
      ...eng.module(),
      ...eng.vps(P),
      "deploy",
      `--git-sha=${SHA[0]}`,
      `--images=${published.join(",")}`,
    ]);
    expect(first.code, said(first)).toBe(0);
    releases.push(released(first));
    expect(current(P)).toBe(releases[0]);
    expect(first.stdout).toMatch(/^job migrate \| applying migrations$/m);

    const upgrade = await eng.call("deploy (upgrade)", [
      ...eng.module(),
      ...eng.vps(P),
      "deploy",
      `--git-sha=${SHA[1]}`,
      `--images=${published.join(",")}`,
    ]);
    expect(upgrade.code, said(upgrade)).toBe(0);
    releases.push(released(upgrade));
    expect(current(P)).toBe(releases[1]);
    eng.measured["deploy through dagger call (upgrade)"] = upgrade.seconds;
    eng.measured["· of which the module's own steps"] = stepSeconds(upgrade.stdout);

    const r = await eng.call("deploy (broken)", [
      ...eng.module(),
      ...eng.vps(P),
      "--health-timeout=15",
      "deploy",
      `--git-sha=${SHA[2]}`,
      `--images=${broken.join(",")}`,
      "--format=json",
    ]);
    // the class's exit code, and the failure as one JSON object with the history line it wrote
    expect(r.code, said(r)).toBe(8);
    const line = /^Error: (\{.*\})(?: \[traceparent:\S+\])?$/m.exec(r.stderr)?.[1];
    expect(line, said(r)).toBeDefined();
    const failure = JSON.parse(line!) as {
      error: { code: string; exitCode: number; history?: { rolledBackTo?: string } };
    };
    expect(failure.error).toMatchObject({
      code: "DEPLOY_ROLLED_BACK",
      exitCode: 8,
      history: { rolledBackTo: releases[1] },
    });
    expect(current(P)).toBe(releases[1]);
    expect(sh(`curl -s -o /dev/null -w '%{http_code}' http://${bed.vps.hostIp}:${PORT}/`)).toBe("200");
  }, 900_000);

  it("verifies, and says the status as JSON", async () => {
    const v = await eng.call("verify", [...eng.module(), ...eng.vps(P), "verify"]);
    expect(v.code, said(v)).toBe(0);
    const s = await eng.call("status", [...eng.module(), ...eng.vps(P), "status", "--format=json"]);
    expect(s.code, said(s)).toBe(0);
    const status = JSON.parse(s.stdout) as { current?: { release?: string }; history: { result: string }[] };
    expect(JSON.stringify(status)).toContain(releases[1]!);
    expect(status.history.map((h) => h.result)).toContain("rolled-back");
  }, 600_000);

  it("rolls back to the release before, and to a named one", async () => {
    const r = await eng.call("rollback", [...eng.module(), ...eng.vps(P), "rollback"]);
    expect(r.code, said(r)).toBe(0);
    expect(current(P)).toBe(releases[0]);
    const to = await eng.call("rollback --to", [...eng.module(), ...eng.vps(P), "rollback", `--to=${releases[1]}`]);
    expect(to.code, said(to)).toBe(0);
    expect(current(P)).toBe(releases[1]);
  }, 600_000);

  it("logs with its defaults; run keeps a comma inside its command, and --argv its words", async () => {
    const l = await eng.call("logs", [...eng.module(), ...eng.vps(P), "logs"]);
    expect(l.code, said(l)).toBe(0);
    // the example's services log nothing: what the user sees is this line, not an INVALID_INPUT on maxBytes
    expect(l.stdout.trim()).toBe(`(no log lines from project ${P})`);
    const r = await eng.call("run", [
      ...eng.module(),
      ...eng.vps(P),
      "run",
      "--service=api",
      `--cmd=printf '%s|' 'select a, b' x,y`,
    ]);
    expect(r.code, said(r)).toBe(0);
    expect(r.stdout).toMatch(/^select a, b\|x,y\|/);
    const a = await eng.call("run --argv", [
      ...eng.module(),
      ...eng.vps(P),
      "run",
      "--service=api",
      `--argv=["printf","%s|","a, b","c"]`,
    ]);
    expect(a.code, said(a)).toBe(0);
    expect(a.stdout).toMatch(/^a, b\|c\|/);
    const failed = await eng.call("run (exit 3)", [
      ...eng.module(),
      ...eng.vps(P),
      "run",
      "--service=api",
      "--cmd=exit 3",
    ]);
    expect(failed.code, said(failed)).toBe(10);
    expect(failed.stderr).toMatch(/RUN_FAILED: api: the command exited with 3/);
  }, 600_000);

  it("a preview of a pull request comes up beside production and goes without a trace", async () => {
    const extra = [`--preview-domain=${PREVIEW_DOMAIN}`];
    const r = await eng.call("preview", [
      ...eng.module(),
      ...eng.vps(P, extra),
      "preview",
      "--pr=7",
      `--git-sha=${SHA[1]}`,
      `--images=${published.join(",")}`,
    ]);
    expect(r.code, said(r)).toBe(0);
    expect(r.stdout).toMatch(/preview #7 release \S+ is live/);
    expect(sh(`docker ps --filter label=com.docker.compose.project=${P}-pr-7 -q | wc -l`).trim()).not.toBe("0");
    const down = await eng.call("preview-down", [...eng.module(), ...eng.vps(P, extra), "preview-down", "--pr=7"]);
    expect(down.code, said(down)).toBe(0);
    expect(sh(`docker ps -a --filter label=com.docker.compose.project=${P}-pr-7 -q | wc -l`).trim()).toBe("0");
    expect(current(P)).toBe(releases[1]);
  }, 600_000);

  it("measures a call that only settles its settings (config), and a cached one", async () => {
    const fresh = await eng.call("config only", [...eng.module(), ...eng.vps(P), "config"]);
    expect(fresh.code, said(fresh)).toBe(0);
    expect(fresh.stdout).toMatch(new RegExp(`^image-prefix +${PREFIX.replace(/[.]/g, "\\.")} +\\(flag\\)$`, "m"));
    const cached = await eng.call("config only (cached)", [...eng.module(), ...eng.vps(P), "config"]);
    expect(cached.code, said(cached)).toBe(0);
    eng.measured["a call that only settles its settings (config)"] = fresh.seconds;
    eng.measured["the same call again (cached)"] = cached.seconds;
  }, 600_000);

  it("leaves no secret in the engine's state, the CLI's home, or anything it printed", () => {
    auditEngineSecrets(eng);
  }, 600_000);
});
