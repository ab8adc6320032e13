/** Every relative link of the README and docs/ leads to a file that exists, and to a heading it has. */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, expect, it } from "vitest";

const FILES = [
  "README.md",
  "CHANGELOG.md",
  ...readdirSync("docs")
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
/** GitHub's anchor of a heading. */
const slug = (t: string) =>
  t
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, "")
    .replaceAll(" ", "-");
const anchors = (file: string) =>
  new Set([...readFileSync(file, "utf8").matchAll(/^#{1,4} (.*)$/gm)].map((m) => slug(m[1]!)));

describe("the README and docs/", () => {
  it("link only to files and headings that exist", () => {
    const broken: string[] = [];
    let seen = 0;
    for (const file of FILES)
      for (const [, url] of readFileSync(file, "utf8").matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^https?:/.test(url!)) continue;
        seen++;
        const [path, anchor] = url!.split("#");
        const target = path ? normalize(join(dirname(file), path)) : file;
        if (!existsSync(target)) broken.push(`${file}: ${url} (no such file)`);
        else if (anchor && target.endsWith(".md") && !anchors(target).has(anchor))
          broken.push(`${file}: ${url} (no such heading)`);
      }
    expect(broken).toEqual([]);
    expect(seen).toBeGreaterThan(20);
  });
});
