/**
 * Image names, tags and OCI labels: what a built service is called and tagged
 * in the registry. Pure functions over strings.
 */
import { PipelineError } from "../errors.js";

/** The OCI grammar for a repository path component, and the whole name under a registry host. */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

export function invalidRepositoryPath(path: string): string | undefined {
  if (path !== path.toLowerCase()) return "must be lowercase (GHCR and the OCI spec refuse upper case)";
  const bad = path.split("/").find((c) => !PATH_COMPONENT.test(c));
  if (bad !== undefined)
    return `component \`${bad}\` is not valid: use lowercase letters, digits and single separators (. _ __ -)`;
  return undefined;
}

/** The commit being published, as tagsFor needs it (config.ts's GitInfo has this shape). */
export interface GitRef {
  sha: string;
  ref?: string | undefined;
  defaultBranch: string;
}

export interface ImageReference {
  /** Registry host, e.g. `ghcr.io` (`docker.io` when the name has none). */
  registry: string;
  /** Repository path under the registry, e.g. `acme/gold/api`. */
  path: string;
  tag?: string;
  digest?: string;
}

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

/**
 * Split `host/path:tag@sha256:…` the way docker does (first component is a host when it has `.`/`:` or is localhost).
 */
export function parseImageReference(ref: string): ImageReference {
  let rest = ref.trim();
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const first = rest.split("/")[0] ?? "";
  const hasHost = rest.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  const registry = hasHost ? first : "docker.io";
  const path = hasHost ? rest.slice(first.length + 1) : rest;
  const out: ImageReference = { registry, path };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** Why `ref` is not a valid reference, or undefined when it is. */
export function invalidImageReference(ref: string): string | undefined {
  if (ref.trim() === "") return "must not be empty";
  const r = parseImageReference(ref);
  if (r.path === "") return "has no repository path";
  const why = invalidRepositoryPath(r.path);
  if (why) return why;
  if (r.tag !== undefined && !TAG.test(r.tag))
    return `tag \`${r.tag}\` is not valid (letters, digits, _ . -, at most 128)`;
  if (r.digest !== undefined && !DIGEST.test(r.digest)) return `digest \`${r.digest}\` is not a sha256 digest`;
  return undefined;
}

/** `host/path`: the repository a reference points into, without tag or digest. */
export function repositoryOf(ref: string): string {
  const r = parseImageReference(ref);
  return `${r.registry}/${r.path}`;
}

/** `repo@sha256:…`: the only form of our images the server ever runs. */
export function pinned(repository: string, digest: string): string {
  if (!isDigest(digest)) {
    throw new PipelineError(
      "BAD_DIGEST",
      `\`${digest}\` is not a sha256 digest (for ${repository})`,
      "publish returns digests as `sha256:<64 hex>`; pass one of those",
    );
  }
  return `${repository}@${digest}`;
}

export interface TagSet {
  /** Every tag to push, the immutable `sha-…` first. */
  tags: string[];
  /** The `sha-<7>` tag: unique per commit, never moved. */
  shaTag: string;
}

const SEMVER = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/**
 * Tags for one commit: `sha-<7>` always; `latest` on the default branch;
 * `vX.Y.Z` and `X.Y` on a semver release tag (`X.Y` only for a final release).
 */
export function tagsFor(git: GitRef): TagSet {
  const shaTag = `sha-${git.sha.slice(0, 7)}`;
  const tags = [shaTag];
  const ref = git.ref ?? "";
  if (ref === `refs/heads/${git.defaultBranch}`) tags.push("latest");
  if (ref.startsWith("refs/tags/")) {
    const m = SEMVER.exec(ref.slice("refs/tags/".length));
    if (m) {
      const [, major, minor, patch, pre] = m;
      tags.push(`v${major}.${minor}.${patch}${pre ? `-${pre}` : ""}`);
      if (!pre) tags.push(`${major}.${minor}`);
    }
  }
  return { tags: tags.filter((t) => TAG.test(t)), shaTag };
}

export interface LabelInput {
  /** Repository URL, e.g. `https://github.com/acme/gold`: links a GHCR package to its repo at first push. */
  source: string;
  revision: string;
  /** The commit's time. Never the build's: the same commit must give the same image, byte for byte. */
  created?: Date;
  version?: string;
}

/**
 * OCI labels of a built image; `created` only when the commit's time is known (a label of "now" would change every
 * digest).
 */
export function ociLabels(l: LabelInput): Record<string, string> {
  return {
    ...(l.source ? { "org.opencontainers.image.source": l.source } : {}),
    "org.opencontainers.image.revision": l.revision,
    ...(l.created ? { "org.opencontainers.image.created": l.created.toISOString() } : {}),
    "org.opencontainers.image.version": l.version ?? l.revision.slice(0, 7),
  };
}

/**
 * The registry the built images live on, and so the only one that gets a
 * token: `explicit` (--registry) when given, and then every built image must
 * be there; otherwise the one host they share. Undefined when nothing is built.
 */
export function builtImagesRegistry(
  builds: readonly { service: string; repository: string }[],
  explicit?: string,
): string | undefined {
  const hostOf = (b: { repository: string }) => parseImageReference(b.repository).registry;
  if (explicit !== undefined) {
    const elsewhere = builds.filter((b) => hostOf(b) !== explicit);
    if (elsewhere.length > 0) {
      throw new PipelineError(
        "INVALID_INPUT",
        `the registry is ${explicit}, but ${elsewhere.map((b) => `services.${b.service} is ${b.repository}`).join("; ")}: the credentials would not go there`,
        `pass --registry=${hostOf(elsewhere[0]!)} (and its credentials), or change the image prefix / \`image:\` to ${explicit}/…`,
      );
    }
    return explicit;
  }
  const hosts = [...new Set(builds.map(hostOf))];
  if (hosts.length > 1) {
    throw new PipelineError(
      "INVALID_INPUT",
      `the built images are on ${hosts.length} registries (${builds.map((b) => `services.${b.service} → ${hostOf(b)}`).join(", ")}): one token cannot be for all of them`,
      "put every built image on one registry (an image prefix, or the same host in each `image:`), or pass --registry to name the one the tokens are for",
    );
  }
  return hosts[0];
}

/** The one registry of the digest-pinned images among `images` (what a release built), when there is exactly one. */
export function pinnedImagesRegistry(images: readonly string[]): string | undefined {
  const hosts = new Set(images.filter((i) => i.includes("@sha256:")).map((i) => parseImageReference(i).registry));
  return hosts.size === 1 ? [...hosts][0] : undefined;
}

/**
 * A login whose registry was left to the release (`host` empty: --registry not
 * given to a rollback) gets the registry of the release's pinned images; with
 * none, or several, there is no login and the token goes nowhere.
 */
export function loginForRelease<T extends { host: string }>(
  login: T | undefined,
  images: readonly string[],
): T | undefined {
  if (!login || login.host) return login;
  const host = pinnedImagesRegistry(images);
  return host ? { ...login, host } : undefined;
}
