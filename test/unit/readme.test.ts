/** The README's troubleshooting table explains every error code the pipeline can give, and no other. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../.dagger/src/core/errors.js";

const doc = readFileSync("docs/troubleshooting.md", "utf8");
const table = doc.slice(doc.indexOf("| you see | meaning | fix |"));
const readme = readFileSync("README.md", "utf8");

describe("troubleshooting (docs/troubleshooting.md)", () => {
  it("has a row for every error code", () => {
    const rows = table.split("\n").filter((l) => l.startsWith("| "));
    for (const code of ERROR_CODES)
      expect(
        rows.some((r) => r.split("|")[1]!.includes(`\`${code}\``)),
        code,
      ).toBe(true);
  });

  it("names no code the pipeline does not have", () => {
    const firstColumn = table
      .split("\n")
      .filter((l) => l.startsWith("| "))
      .map((r) => r.split("|")[1]!)
      .join("\n");
    const named = [...firstColumn.matchAll(/`([A-Z][A-Z0-9_]{3,})`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThanOrEqual(ERROR_CODES.length);
    expect(named.filter((c) => !(ERROR_CODES as readonly string[]).includes(c))).toEqual([]);
  });

  it("lists each code once (PipelineError's type accepts only these: the type checker holds the rest)", () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
  });

  it("the README's short table shows ten codes, each row as the full table has it, and the README stays a first day's read", () => {
    const short = readme.slice(readme.indexOf("## Troubleshooting"), readme.indexOf("## Developing"));
    const rows = short.split("\n").filter((l) => l.startsWith("| `"));
    expect(rows).toHaveLength(10);
    for (const r of rows) expect(table).toContain(r);
    expect(readme.length).toBeLessThan(15_000);
    expect(readme.indexOf("## Use it in your repository")).toBeLessThan(1500);
  });
});
