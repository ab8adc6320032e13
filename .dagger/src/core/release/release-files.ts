/**
 * A release carries its files. Compose resolves a relative path against the
 * project directory: on the server that is the deploy folder, where the
 * repository is not. Every path the compose file takes from the repository —
 * bind-mount sources, `configs`/`secrets` files, `env_file`s — is shipped
 * with the release and the rendered file points at the copy; a relative path
 * that is not in the repository is the server's own data and stays as written,
 * and an `env_file` that is not (`.env.production`, kept out of Git) is the
 * production `.env` the pipeline writes.
 *
 * Copies are stored by content (`.releases/files/<hash>/<name>`): an unchanged
 * file keeps its path, so compose recreates nothing for it; a changed one gets
 * a new path, so compose recreates exactly the services that mount it; a
 * rollback's release still names its own copies. Pure: the module layer reads
 * the files, remote/ uploads them.
 */
import { createHash } from "node:crypto";
import { PipelineError } from "../errors.js";
import { interpolate } from "../compose/interpolate.js";
import { dirname, normalize } from "./paths.js";

/** Where shipped files live, relative to the deploy folder (compose's project directory on the server). */
export const FILES_DIR = ".releases/files";

/** Limits: a release is configuration, not data. */
export const MAX_FILE_BYTES = 1024 * 1024;
export const MAX_TOTAL_BYTES = 10 * 1024 * 1024;
export const MAX_FILES = 500;

export type FileRefKind = "bind" | "config" | "secret" | "env_file";

/** A path the compose file takes from its project directory. */
export interface FileRef {
  /** The place in the file, as errors and `plan` name it: `services.web.volumes[0]`. */
  field: string;
  kind: FileRefKind;
  /** As compose reads it, variables substituted (`./nginx/nginx.conf`). */
  written: string;
  /** Inside the source, `/`-separated; undefined when it leaves the source directory. */
  sourcePath: string | undefined;
  /** An `env_file` with `required: false`: compose skips it when it is not there. */
  optional?: boolean;
}

/** What the module layer found at a reference's path in the source. */
export type Found = { type: "file"; content: string } | { type: "dir"; files: { path: string; content: string }[] };

/** One file to write on the server. */
export interface ShippedFile {
  /** Relative to the deploy folder. */
  path: string;
  content: string;
  mode: "600" | "644";
}

export interface ReleaseFiles {
  /** field → the value the rendered release gets. */
  rewrites: Map<string, string>;
  files: ShippedFile[];
  /** For `plan`: each shipped reference with its content hash (never the content). */
  manifest: { field: string; written: string; hash: string; secret: boolean }[];
  /** Relative paths that are not in the repository: the server's data, left as written. */
  serverData: FileRef[];
  /** What the user should know (a secret kept in Git). */
  notes: string[];
}

/** Long syntax: every source that is not absolute (or the home) is a path of the project (`source: nginx.conf`). */
const isRelative = (p: string) => p !== "" && !p.startsWith("/") && !p.startsWith("~");

/**
 * `./a:/b:ro` → its source when it is a path of the project: compose takes a short-syntax source that starts
 * with `.` for one (`./x`, `../x`, `.hidden`); a bare name is a named volume, `/abs` and `~/x` the server's.
 */
function shortBindSource(v: string): string | undefined {
  const src = v.split(":")[0] ?? "";
  return src.startsWith(".") ? src : undefined;
}

/**
 * Every path the release takes from its project directory. `composeFile` is
 * the compose file's path inside the source (compose resolves against its folder).
 * A `.env` named by `env_file` is the production `.env` the pipeline writes, never shipped.
 */
export function fileRefs(root: unknown, composeFile: string, vars: ReadonlyMap<string, string> = new Map()): FileRef[] {
  const base = dirname(composeFile);
  const refs: FileRef[] = [];
  // paths as compose reads them: with the variables the deploy has (`${NGINX_CONF:-./nginx.conf}`)
  const add = (field: string, kind: FileRefKind, raw: string, optional = false) => {
    const written = interpolate(raw, vars);
    const sourcePath = normalize([...base.split("/"), ...written.split("/")]);
    refs.push({ field, kind, written, sourcePath, ...(optional ? { optional } : {}) });
  };
  const v = (x: string) => interpolate(x, vars);
  const r = (root ?? {}) as {
    services?: Record<string, Record<string, unknown> | null>;
    configs?: Record<string, unknown>;
    secrets?: Record<string, unknown>;
  };
  for (const [name, svc] of Object.entries(r.services ?? {})) {
    const vols = Array.isArray(svc?.volumes) ? svc.volumes : [];
    vols.forEach((vol: unknown, i) => {
      if (typeof vol === "string") {
        const src = shortBindSource(v(vol));
        if (src) add(`services.${name}.volumes[${i}]`, "bind", src);
      } else if (vol && typeof vol === "object") {
        const o = vol as { type?: unknown; source?: unknown };
        if (o.type === "bind" && typeof o.source === "string" && isRelative(v(o.source)))
          add(`services.${name}.volumes[${i}].source`, "bind", o.source);
      }
    });
    const envFiles = svc?.env_file === undefined ? [] : Array.isArray(svc.env_file) ? svc.env_file : [svc.env_file];
    envFiles.forEach((e: unknown, i) => {
      const path =
        typeof e === "string"
          ? e
          : typeof (e as { path?: unknown } | null)?.path === "string"
            ? (e as { path: string }).path
            : undefined;
      if (path === undefined || v(path).startsWith("/") || v(path).replace(/^\.\//, "") === ".env") return;
      add(
        Array.isArray(svc?.env_file) ? `services.${name}.env_file[${i}]` : `services.${name}.env_file`,
        "env_file",
        path,
        (e as { required?: unknown } | null)?.required === false,
      );
    });
  }
  for (const top of ["configs", "secrets"] as const) {
    for (const [name, def] of Object.entries(r[top] ?? {})) {
      const file = (def as { file?: unknown } | null)?.file;
      if (typeof file === "string" && !v(file).startsWith("/"))
        add(`${top}.${name}.file`, top === "configs" ? "config" : "secret", file);
    }
  }
  return refs;
}

const hashOf = (parts: readonly string[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(`${Buffer.byteLength(p)}:`).update(p);
  return h.digest("hex").slice(0, 16);
};

/**
 * What the release ships for `refs`, given what the source holds at each path
 * (`found`, by source path; absent: not in the repository, so the server's data).
 * Refused with the field named: a path leaving the source, past the limits.
 */
export function releaseFiles(refs: readonly FileRef[], found: ReadonlyMap<string, Found>): ReleaseFiles {
  const out: ReleaseFiles = { rewrites: new Map(), files: [], manifest: [], serverData: [], notes: [] };
  const problems: string[] = [];
  const written = new Set<string>();
  const outOfGit = new Map<string, string[]>();
  let total = 0;
  for (const ref of refs) {
    const f = ref.sourcePath === undefined ? undefined : found.get(ref.sourcePath);
    if (ref.sourcePath === undefined) {
      // outside the source: compose would read it from the server, and so it stays
      out.serverData.push(ref);
      continue;
    }
    if (!f) {
      if (ref.kind === "bind") out.serverData.push(ref);
      else if (ref.kind === "env_file" && ref.optional) {
        // compose skips an optional env file that is not there; so does the release
        out.notes.push(`${ref.field}: ${ref.written} is not in the repository and optional: compose skips it`);
      } else if (ref.kind === "env_file") {
        // `.env.production` and the like are kept out of Git: the production .env (--env-file) is that file
        outOfGit.set(ref.written, [...(outOfGit.get(ref.written) ?? []), ref.field]);
        out.rewrites.set(ref.field, ".env");
        out.notes.push(
          `${ref.field}: ${ref.written} is not in the repository; the production .env (--env-file, or the server's) is read in its place`,
        );
      } else
        problems.push(
          `${ref.field}: \`${ref.written}\` is not in the repository (${ref.sourcePath}); add it, or point at a file on the server with an absolute path`,
        );
      continue;
    }
    const name = ref.sourcePath.split("/").pop() || "root";
    const entries = f.type === "file" ? [{ path: "", content: f.content }] : f.files;
    const hash = hashOf(entries.flatMap((e) => [e.path, e.content]));
    const secret = ref.kind === "secret";
    const dest = `${FILES_DIR}/${hash}/${name}`;
    for (const e of entries) {
      const bytes = Buffer.byteLength(e.content);
      if (bytes > MAX_FILE_BYTES)
        problems.push(
          `${ref.field}: ${ref.sourcePath}${e.path ? `/${e.path}` : ""} is ${bytes} bytes, more than ${MAX_FILE_BYTES} a shipped file may have; bake it into the image, or keep it on the server`,
        );
      const path = e.path ? `${dest}/${e.path}` : dest;
      if (written.has(path)) continue;
      written.add(path);
      total += bytes;
      out.files.push({ path, content: e.content, mode: secret ? "600" : "644" });
    }
    out.rewrites.set(ref.field, `./${dest}`);
    out.manifest.push({ field: ref.field, written: ref.written, hash, secret });
    if (secret)
      out.notes.push(
        `${ref.field}: ${ref.sourcePath} is a secret kept in Git; it is shipped with mode 0600, but consider \`environment:\` as its source instead (the value then comes from the production .env)`,
      );
  }
  // one production .env: two services each with their own file kept out of Git would get each other's variables
  if (outOfGit.size > 1)
    problems.push(
      `${[...outOfGit].map(([file, fields]) => `${fields.join(", ")} (${file})`).join(" and ")}: these env files are not in the repository, and only one can be the production .env (--env-file); keep one of them, give the others' services their variables through it (\`environment: { KEY: \${KEY} }\`), or commit the files that hold no secret`,
    );
  if (out.files.length > MAX_FILES)
    problems.push(
      `the compose file ships ${out.files.length} files, more than ${MAX_FILES}; bake large trees into the image`,
    );
  if (total > MAX_TOTAL_BYTES)
    problems.push(
      `the compose file ships ${total} bytes, more than ${MAX_TOTAL_BYTES}; bake large files into the image`,
    );
  if (problems.length)
    throw new PipelineError(
      "COMPOSE_INVALID",
      `the files the compose file mounts cannot be shipped:\n  ${problems.join("\n  ")}`,
      "fix the paths named above in the production compose file",
    );
  return out;
}

/** The hashes of shipped files that compose texts name (kept releases: their files must stay). */
export function referencedHashes(composeTexts: string): Set<string> {
  return new Set(
    [...composeTexts.matchAll(new RegExp(`${FILES_DIR.replace(/[.]/g, "\\.")}/([0-9a-f]{16})/`, "g"))].map(
      (m) => m[1]!,
    ),
  );
}
