/**
 * Compose is the judge of `.env` files too (issue 32, case 8): every fixture of compose's own dotenv reader
 * (../shared/compose-spec/dotenv-fixtures) and ours (test/fixtures/compose-judge/dotenv), read by our core and by
 * `docker compose config --format json` through `env_file:` (the same reader compose uses for the `.env` it
 * substitutes from), value by value; a file compose refuses must be refused by us too.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { dotenvProblem, envValues } from "../../.dagger/src/core/compose/env-file.js";

const COMPOSE = process.env.COMPOSE_BIN ?? "/var/cache/vps-testbed/docker-compose";
const ROOT = process.cwd();
const dirs = [join(ROOT, "../shared/compose-spec/dotenv-fixtures"), join(ROOT, "test/fixtures/compose-judge/dotenv")];
const files = dirs.filter(existsSync).flatMap((d) => readdirSync(d).map((f) => join(d, f)));

/** What compose reads from `file` as an env file, or its refusal. */
function judge(file: string): { values: Record<string, string> } | { refused: string } {
  const dir = mkdtempSync(join(tmpdir(), "dotenv-judge-"));
  try {
    copyFileSync(file, join(dir, "vars"));
    writeFileSync(join(dir, "compose.yaml"), "services:\n  s:\n    image: x\n    env_file: [vars]\n");
    // no environment at all: a bare `NAME` line finds nothing, as on a deploy
    const r = spawnSync(COMPOSE, ["--project-name", "j", "config", "--format", "json"], {
      cwd: dir,
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "" },
    });
    if (r.status !== 0) return { refused: r.stderr.trim().split("\n").at(-1) ?? `exit ${r.status}` };
    const env = (JSON.parse(r.stdout) as { services: { s: { environment?: Record<string, string> } } }).services.s
      .environment;
    // `config` prints what compose would read again: a literal `$` as `$$`
    return { values: Object.fromEntries(Object.entries(env ?? {}).map(([k, v]) => [k, v.replaceAll("$$", "$")])) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!existsSync(COMPOSE))("compose is the judge of .env files", () => {
  it("reads compose's fixtures and ours", () => {
    expect(files.length).toBeGreaterThanOrEqual(14);
  });

  it.each(files.map((f) => [basename(f), f]))("%s: our values are compose's, or both refuse it", (_name, file) => {
    const text = readFileSync(file, "utf8");
    const theirs = judge(file);
    const problem = dotenvProblem(text);
    if ("refused" in theirs) {
      expect(problem, `compose refuses it: ${theirs.refused}`).toBeDefined();
      return;
    }
    expect(problem).toBeUndefined();
    expect(Object.fromEntries(envValues(text))).toEqual(theirs.values);
  });
});
