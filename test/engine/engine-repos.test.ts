/**
 * The module through the real Dagger CLI and engine, as engine.test.ts (beside which it runs): a repository of
 * another team laid out its own way, `init` in a repository, the module's own repository refused as a source, and a
 * data stack's backup and restore. TEST_ENGINE=0 skips the file.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bed, hostKeyLine, sh } from "../testbed/bed.js";
import { dataStack } from "../testbed/data-stack.js";
import { dagger, ROOT } from "./cli.js";
import { auditEngineSecrets, BASE, current, engineSuite, freshSha, said, skip } from "./suite.js";

const OTHER = "engother";
/** The other app's commit: new each run, so that its publish builds (a published commit is reused, never rebuilt). */
const OTHER_SHA = freshSha();
const COMMIT_TIME = "2026-12-01T08:00:00Z";
const DATA = "engdata";
const BACKUP_PASSWORD = `restic-${randomBytes(12).toString("hex")}`;

describe.skipIf(skip)("the module through the real Dagger CLI and engine: other repositories, init, data", () => {
  const eng = engineSuite("other repositories", [OTHER, DATA], 18991);

  it("ships a repository laid out as users lay theirs out: compose files at the root, settings in vps-pipeline.yml, a short line", async () => {
    const app = mkdtempSync(join(tmpdir(), "engine-other-app-"));
    cpSync(join(ROOT, "test/fixtures/app/api"), join(app, "backend"), { recursive: true });
    mkdirSync(join(app, "conf"));
    writeFileSync(join(app, "conf/app.conf"), "greeting = from another repository\n");
    writeFileSync(join(app, "backend/www/static.txt"), "copied, never changed by a RUN step\n");
    const service = (greeting: string) => `services:
  api:
    build: { context: ./backend, args: { BASE_IMAGE: busybox:1.36 } }
    init: true
    environment: { GREETING: ${greeting} }
    volumes: ["./conf/app.conf:/etc/app.conf:ro"]
    healthcheck: { test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/health"], interval: 1s, retries: 3 }
`;
    // production's file is found before the development one beside it; its optional env file is kept out of Git
    writeFileSync(
      join(app, "docker-compose.prod.yml"),
      `${service("production")}    env_file: [{ path: .env.production, required: false }]\n`,
    );
    writeFileSync(join(app, ".env.production"), "LEAK=only-on-the-laptop\n");
    writeFileSync(join(app, "docker-compose.yml"), `${service("development")}    ports: ["8000:8000"]\n`);
    // the team's development .env: many variables, none of them the module's business
    writeFileSync(
      join(app, ".env"),
      Array.from({ length: 40 }, (_, i) => `DEV_VAR_${i}=dev-${i}`).join("\n") +
        "\nPROJECT=wrong\nHOST=wrong\nKEEP_RELEASES=1\n",
    );
    writeFileSync(
      join(app, "vps-pipeline.yml"),
      `# settings of the whole team, committed; secrets stay on the command line
image-prefix: ${bed.registry.host}/acme/engine-other
registry: ${bed.registry.host}
registry-user: pusher
vps:
  host: ${bed.vps.host}
  user: ${bed.vps.user}
  host-key: "${hostKeyLine}"
  project: ${OTHER}
  pull-user: pusher
  keep-releases: 3
  health-timeout: 60
  edge-image: vps-testbed/caddy:2
  edge-tls: internal
`,
    );
    writeFileSync(join(app, ".gitignore"), ".env\n.env.production\n");
    chmodSync(app, 0o755);
    const git = (...a: string[]) =>
      execFileSync("git", ["-C", app, "-c", "user.name=dev", "-c", "user.email=dev@example.com", ...a], {
        encoding: "utf8",
      }).trim();
    git("init", "-q");
    git("add", "-A");
    git("commit", "-q", "-m", "the app");
    const sha = git("rev-parse", "HEAD");
    // a change on the laptop, never committed: it must reach neither the image nor the server
    writeFileSync(join(app, "conf/app.conf"), "greeting = uncommitted\n");
    try {
      // the CI line: secrets, the function and the commit
      const line = [
        "call",
        `--source=${app}`,
        `--registry-token=file:${eng.dir}/registry-token`,
        "vps",
        `--ssh-key=file:${eng.dir}/ssh-key`,
        "--pull-token=env:ENGINE_PULL_TOKEN",
        "ship",
        `--git-sha=${sha}`,
        `--commit-time=${COMMIT_TIME}`,
        `--build-args=${BASE}`,
      ];
      const r = await eng.call("ship (another repository)", line);
      expect(r.code, said(r)).toBe(0);
      expect(`${r.stdout}\n${r.stderr}`).toMatch(
        /uncommitted changes are not used \(only commit [0-9a-f]{7} is\): conf\/app\.conf/,
      );
      expect(current(OTHER)).not.toBe("");
      // run from the repository's folder as a user would (--source=.): the same settings
      const short = ["call", "--source=.", "vps", `--ssh-key=file:${eng.dir}/ssh-key`];
      const cat = await dagger(
        eng.env,
        [
          "-m",
          ROOT,
          ...short,
          "run",
          "--service=api",
          "--cmd=cat /etc/app.conf; echo $GREETING; echo leak=$LEAK; stat -c 'static %Y' /www/static.txt",
        ],
        { cwd: app },
      );
      eng.calls.push({ what: "run (another repository)", r: cat });
      expect(cat.code, said(cat)).toBe(0);
      expect(cat.stdout).toContain("greeting = from another repository");
      expect(cat.stdout).not.toContain("uncommitted");
      // Git does not track it: it is not in the repository, whatever the laptop has
      expect(cat.stdout).toContain("leak=\n");
      expect(`${r.stdout}\n${r.stderr}`).toMatch(/\.env\.production is not in the repository and optional/);
      expect(cat.stdout).toContain("production");
      // a file COPY brings from the build context carries the commit's time, not the checkout's or the build's
      expect(cat.stdout).toContain(`static ${Date.parse(COMMIT_TIME) / 1000}`);
      const s = await dagger(eng.env, ["-m", ROOT, ...short, "status"], { cwd: app });
      expect(s.code, said(s)).toBe(0);
      expect(s.stdout).toMatch(
        /from vps-pipeline\.yml: image-prefix, registry, registry-user, host, host-key, project/,
      );
      expect(s.stdout).toMatch(/compose +docker-compose\.prod\.yml/);
      // a flag wins over the file; the development .env changed nothing (keep-releases is the file's 3)
      const c = await dagger(eng.env, ["-m", ROOT, ...short, "--keep-releases=4", "config", "--format=json"], {
        cwd: app,
      });
      expect(c.code, said(c)).toBe(0);
      const settings = (JSON.parse(c.stdout) as { settings: { name: string; value: unknown; from: string }[] })
        .settings;
      const of = (n: string) => settings.find((x) => x.name === n);
      expect(of("keepReleases")).toEqual({ name: "keepReleases", value: 4, from: "flag" });
      expect(of("project")).toEqual({ name: "project", value: OTHER, from: "file" });
      expect(of("composeFile")).toEqual({ name: "composeFile", value: "docker-compose.prod.yml", from: "found" });
      // the line as a user's CI has it: secrets by env:, no test-bed base image or pull token of its own
      const ci = line
        .filter((w) => !/^--(build-args|pull-token|commit-time)=/.test(w))
        .map((w) => w.replace(`file:${eng.dir}/`, "env:").replace(app, "."))
        .join(" ");
      expect(ci.length, ci).toBeLessThan(150);
      // a sha the repository does not have is refused before anything is built or sent
      const unknown = await dagger(eng.env, ["-m", ROOT, ...short, "deploy", `--git-sha=${OTHER_SHA}`], { cwd: app });
      eng.calls.push({ what: "deploy (unknown commit)", r: unknown });
      expect(unknown.code, said(unknown)).toBe(2);
      expect(unknown.stderr).toMatch(/gitSha: [0-9a-f]{40} is not a commit of the source's repository/);
      // a preview's source is a pull request: its own vps-pipeline.yml never decides where the preview goes
      const pr = await dagger(eng.env, ["-m", ROOT, ...short, "preview", "--pr=1", `--git-sha=${sha}`], { cwd: app });
      eng.calls.push({ what: "preview (settings from the pull request)", r: pr });
      expect(pr.code, said(pr)).toBe(2);
      expect(pr.stderr).toMatch(
        /SETTINGS_INVALID: preview: the settings would be read from vps-pipeline\.yml in --source/,
      );
      const given = await dagger(
        eng.env,
        [
          "-m",
          ROOT,
          "call",
          "--source=.",
          "--settings=./vps-pipeline.yml",
          "vps",
          `--ssh-key=file:${eng.dir}/ssh-key`,
          "--keep-releases=4",
          "config",
        ],
        { cwd: app },
      );
      expect(given.code, said(given)).toBe(0);
      expect(given.stdout).toMatch(/^settings file: --settings \(vps-pipeline\.yml\)$/m);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  }, 900_000);

  it("init writes the settings file and the workflows into a repository, keeping a workflow it already has", async () => {
    const app = mkdtempSync(join(tmpdir(), "engine-init-"));
    const out = mkdtempSync(join(tmpdir(), "engine-init-out-"));
    try {
      writeFileSync(join(app, "docker-compose.yml"), "name: shop\nservices:\n  web:\n    image: busybox:1\n");
      mkdirSync(join(app, ".github/workflows"), { recursive: true });
      writeFileSync(join(app, ".github/workflows/deploy.yml"), "name: ours\n");
      chmodSync(app, 0o755);
      const r = await eng.call("init", [
        "call",
        `--source=${app}`,
        "--image-prefix=ghcr.io/acme/shop",
        "init",
        "--host=203.0.113.7",
        "--preview",
        "--preview-domain=preview.example.com",
        "export",
        `--path=${out}`,
      ]);
      expect(r.code, said(r)).toBe(0);
      expect(`${r.stdout}\n${r.stderr}`).toContain("init: kept .github/workflows/deploy.yml: it exists");
      const settings = readFileSync(join(out, "vps-pipeline.yml"), "utf8");
      expect(settings).toMatch(/^compose-file: docker-compose\.yml$/m);
      expect(settings).toMatch(/^image-prefix: ghcr\.io\/acme\/shop$/m);
      expect(settings).toMatch(/^ {2}project: shop$/m); // the compose file's own name
      expect(settings).toMatch(/^ {2}preview-domain: preview\.example\.com$/m);
      expect(settings).toMatch(/^ {2}# host-key: …   # required: fill in$/m);
      expect(readFileSync(join(out, ".github/workflows/preview.yml"), "utf8")).toMatch(
        /--settings=\.\/vps-pipeline\.yml/,
      );
      expect(existsSync(join(out, ".github/workflows/deploy.yml"))).toBe(false);
    } finally {
      rmSync(app, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    }
  }, 600_000);

  it("refuses its own repository as the source unless asked (a module loaded by version, no --source): SOURCE_IS_MODULE, exit 2", async () => {
    const r = await eng.call("no --source", ["call", "vps", `--ssh-key=file:${eng.dir}/ssh-key`, "config"]);
    expect(r.code, said(r)).toBe(2);
    expect(r.stderr).toMatch(/SOURCE_IS_MODULE: source: is vps-pipeline's own repository/);
    expect(r.stderr).toMatch(/--source=\./);
  }, 600_000);

  it("backs up the data stack and restores a snapshot: the row written after it is gone", async () => {
    const app = mkdtempSync(join(tmpdir(), "engine-data-app-"));
    writeFileSync(join(app, "compose.yaml"), dataStack("v1", "{ volumes: [dbdata] }"));
    chmodSync(app, 0o755);
    const data = [
      ...eng.module({ source: app, composeFile: "compose.yaml" }),
      ...eng.vps(DATA, ["--backup-password=env:ENGINE_BACKUP_PASSWORD", "--restic-image=vps-testbed/restic:0.14"]),
    ];
    const opts = { env: { ENGINE_BACKUP_PASSWORD: BACKUP_PASSWORD } };
    // what the user would look at on the server: the rows the database holds
    const psql = (sql: string) =>
      sh(`docker exec ${DATA}-db-1 psql -U postgres -d gold -tAc ${JSON.stringify(sql)}`).trim();
    const count = () => psql("select count(*) from prices");
    try {
      const d = await eng.call("deploy (data)", [...data, "deploy", `--git-sha=${OTHER_SHA}`], opts);
      expect(d.code, said(d)).toBe(0);
      expect(count()).toBe("1");
      const b = await eng.call("backup", [...data, "backup"], opts);
      expect(b.code, said(b)).toBe(0);
      const id = /^snapshot ([0-9a-f]{12}) of db/m.exec(b.stdout)?.[1];
      expect(id, said(b)).toBeDefined();
      psql("insert into prices values ('2026-02-01', 1)");
      expect(count()).toBe("2");
      const r = await eng.call("restore", [...data, "restore", `--snapshot=${id}`], opts);
      expect(r.code, said(r)).toBe(0);
      expect(count()).toBe("1");
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  }, 900_000);

  it("leaves no secret in the engine's state, the CLI's home, or anything it printed", () => {
    auditEngineSecrets(eng, [BACKUP_PASSWORD]);
  }, 600_000);
});
