/**
 * Building and publishing with the Dagger API, driven by the core's build plan.
 * Builders return lazy Containers; publishing forces each build first, so a
 * failing Dockerfile step is reported as such and never as a registry error.
 */
import type { Container, Directory, Platform, Secret } from "@dagger.io/dagger";
import type { BuildTarget, ComposeStack } from "../core/compose/compose.js";
import { PipelineError, isPipelineError, tail } from "../core/errors.js";
import { parseImageReference } from "../core/registry/images.js";
import { registryError } from "../core/registry/registry-errors.js";

export interface BuiltImage {
  target: BuildTarget;
  /** The first platform's build. */
  container: Container;
  /** The other platforms' builds: published with it as one index. */
  variants?: Container[];
}

/**
 * One Container per built service: its Dockerfile, build args (overrides win)
 * and the OCI labels. Every file of the build context gets the same time
 * (`timestamp`, seconds since the epoch), so the layers a COPY makes do not
 * depend on when the checkout happened.
 */
export function buildImages(
  source: Directory,
  stack: ComposeStack,
  labels: Record<string, string>,
  overrides: Record<string, string>,
  timestamp: number,
  platforms: readonly string[] = [],
): BuiltImage[] {
  return stack.builds.map((target) => {
    const args = { ...target.args, ...overrides };
    // no platform given: the engine's own (how builds were made before --platforms)
    const [first, ...rest] = (platforms.length ? platforms : [undefined]).map((platform) => {
      let container = source
        .directory(target.context)
        .withTimestamps(timestamp)
        .dockerBuild({
          dockerfile: target.dockerfile,
          buildArgs: Object.entries(args).map(([name, value]) => ({ name, value })),
          ...(target.target ? { target: target.target } : {}),
          ...(platform ? { platform: platform as Platform } : {}),
        });
      for (const [k, v] of Object.entries(labels)) container = container.withLabel(k, v);
      return container;
    });
    return { target, container: first!, ...(rest.length ? { variants: rest } : {}) };
  });
}

/**
 * Run the build now; a failure (a step, the Dockerfile, the base image) names the service and keeps the end of the
 * build's output.
 */
export async function forceBuild(b: BuiltImage): Promise<void> {
  try {
    for (const c of [b.container, ...(b.variants ?? [])]) await c.sync();
  } catch (e) {
    const text =
      e instanceof Error
        ? `${e.message}${(e as { stderr?: string }).stderr ? `\n${(e as { stderr?: string }).stderr}` : ""}`
        : String(e);
    throw new PipelineError(
      "BUILD_FAILED",
      `building services.${b.target.service} (${b.target.context}/${b.target.dockerfile}) failed:\n${tail(text, 15)}`,
      "fix the Dockerfile step or base image (FROM) shown above; `docker build` of the same context reproduces it. Nothing was pushed",
      { cause: e },
    );
  }
}

export interface PublishedImage {
  service: string;
  repository: string;
  tags: string[];
  digest: string;
  /** `repo@sha256:…`: what deploy takes. */
  pinned: string;
  /** True when the commit's `sha-<7>` tag already existed and was reused, not pushed again. */
  reused: boolean;
}

/** What publishing asks of the registry besides the push itself (registry/client.ts, with the push credentials). */
export interface TagStore {
  /** The digest a tag points at, or undefined when there is no such tag. */
  digestOf(path: string, tag: string): Promise<string | undefined>;
  /** The revision label of the image at `digest`, or undefined when it has none. */
  revisionOf(path: string, digest: string): Promise<string | undefined>;
  /** Point `tag` at the manifest `digest` (no layers move). */
  tag(path: string, digest: string, tag: string): Promise<void>;
}

/** One commit's publication: its tags (the immutable `sha-<7>` first) and the commit itself. */
export interface Publication {
  tags: string[];
  /** The commit being published, as the revision label carries it. */
  revision: string;
}

/** Two spellings of one commit: the same hex, one possibly shortened. */
function sameCommit(a: string, b: string): boolean {
  const [x, y] = [a.toLowerCase(), b.toLowerCase()];
  return x.length >= 7 && y.length >= 7 && (x.startsWith(y) || y.startsWith(x));
}

/**
 * Publish a commit all or nothing, in three passes: every image not yet
 * published is built (a failing build pushes nothing); then every `sha-<7>` is
 * pushed; only then do the moving tags (latest, semver) follow. A commit is
 * published once: an existing `sha-<7>` whose image carries this commit's
 * revision is reused and never moves; one that carries another commit (two
 * commits sharing seven hex digits) stops the publish before anything is pushed.
 */
export async function publishImages(
  built: BuiltImage[],
  release: Publication,
  auth: { host: string; user: string; token: Secret },
  store: TagStore,
): Promise<PublishedImage[]> {
  const [shaTag, ...others] = release.tags;
  if (!shaTag) throw new PipelineError("INTERNAL", "no tag to publish under", "this is a bug of vps-pipeline");
  const asRegistryError =
    (repository: string) =>
    (e: unknown): never => {
      if (isPipelineError(e)) throw e;
      throw registryError("push", auth.host, e instanceof Error ? e.message : String(e), repository);
    };
  const plan = await Promise.all(
    built.map(async (b) => {
      const path = parseImageReference(b.target.repository).path;
      const existing = await store.digestOf(path, shaTag).catch(asRegistryError(b.target.repository));
      if (!existing) return { b, path, existing };
      const revision = await store.revisionOf(path, existing).catch(asRegistryError(b.target.repository));
      if (!revision || !sameCommit(revision, release.revision)) {
        throw new PipelineError(
          "TAG_TAKEN",
          `${b.target.repository}:${shaTag} already holds ${revision ? `commit ${revision}` : "an image without a revision label"}, not ${release.revision}; nothing was pushed`,
          "a sha tag never moves: if another commit shares these 7 hex digits, delete that tag's package version in the registry, or push a new commit",
        );
      }
      return { b, path, existing };
    }),
  );
  for (const { b, existing } of plan) if (!existing) await forceBuild(b);
  const out: PublishedImage[] = [];
  for (const { b, existing } of plan) {
    const { repository } = b.target;
    if (existing) {
      out.push({
        service: b.target.service,
        repository,
        tags: release.tags,
        digest: existing,
        pinned: `${repository}@${existing}`,
        reused: true,
      });
      continue;
    }
    // several platforms: one index, its digest the one printed and pinned (each node pulls its own entry)
    const ref = await b.container
      .withRegistryAuth(auth.host, auth.user, auth.token)
      .publish(`${repository}:${shaTag}`, b.variants?.length ? { platformVariants: b.variants } : undefined)
      .catch(asRegistryError(repository));
    const digest = ref.slice(ref.indexOf("@") + 1);
    out.push({
      service: b.target.service,
      repository,
      tags: release.tags,
      digest,
      pinned: `${repository}@${digest}`,
      reused: false,
    });
  }
  // Every sha tag exists now: only then do the moving tags follow, pointed at the same manifests.
  for (const p of out) {
    const path = parseImageReference(p.repository).path;
    for (const t of others) await store.tag(path, p.digest, t).catch(asRegistryError(p.repository));
  }
  return out;
}
