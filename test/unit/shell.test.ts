import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { shellJoin, shellQuote } from "../../.dagger/src/core/shell.js";

const HOSTILE = [
  "",
  " ",
  "it's",
  "'",
  "''",
  '"double"',
  "$(rm -rf /)",
  "`id`",
  "$HOME",
  "a\nb",
  "tab\there",
  "back\\slash",
  "ünïcødé 金",
  "-n",
  "*",
  "~",
  "a;b|c&d",
  "!",
  "#comment",
  "=x",
  "\u0001",
];

describe("shellQuote", () => {
  it("leaves plain words readable", () => {
    expect(shellQuote("docker")).toBe("docker");
    expect(shellQuote("production/gold-tracker/.releases")).toBe("production/gold-tracker/.releases");
    expect(shellQuote("--format")).toBe("--format");
  });

  it("single-quotes everything else, closing and escaping embedded quotes", () => {
    expect(shellQuote("")).toBe("''");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote("$(id)")).toBe("'$(id)'");
    expect(shellQuote("{{.Server.Version}}")).toBe("'{{.Server.Version}}'");
    expect(shellQuote("~")).toBe("'~'");
    expect(shellQuote("=x")).toBe("'=x'");
  });

  it("round-trips hostile strings through a real POSIX shell byte for byte", () => {
    const cmd = shellJoin(["printf", "%s\\0", ...HOSTILE]);
    const out = execFileSync("/bin/sh", ["-c", cmd], { encoding: "utf8" });
    expect(out.split("\0").slice(0, -1)).toEqual(HOSTILE);
  });

  it("refuses to build an empty command", () => {
    expect(() => shellJoin([])).toThrow(/empty command/);
  });
});
