/** `/`-separated paths inside the source directory, as compose resolves them. */

/** Normalize a `/`-separated relative path; undefined when it leaves the root. */
export function normalize(parts: string[]): string | undefined {
  const out: string[] = [];
  for (const p of parts) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(p);
  }
  return out.join("/") || ".";
}

/** The folder of a `/`-separated path ("" at the root). */
export function dirname(file: string): string {
  const i = file.lastIndexOf("/");
  return i < 0 ? "" : file.slice(0, i);
}
