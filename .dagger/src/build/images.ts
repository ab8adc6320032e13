/**
 * Building and publishing with the Dagger API, driven by the core's build plan.
 * Builders return lazy Containers; publishing forces each build first, so a
 * failing Dockerfile step is reported as such and never as a registry error.
 */
import type { Container, Directory, Secret } from "@dagger.io/dagger";
import type { BuildTarget, ComposeStack } from "../core/compose.js";
import { PipelineError, isPipelineError, tail } from "../core/errors.js";
import { parseImageReference } from "../core/images.js";
import { registryError } from "../core/registry-errors.js";

export interface BuiltImage {
  target: BuildTarget;
  container: Container;
}

/** One Container per built service: its Dockerfile, build args (overrides win) and the OCI labels. */
export function buildImages(source: Directory, stack: ComposeStack, labels: Record<string, string>, overrides: Record<string, string>): BuiltImage[] {
  return stack.builds.map((target) => {
    const args = { ...target.args, ...overrides };
    let container = source.directory(target.context).dockerBuild({
      dockerfile: target.dockerfile,
      buildArgs: Object.entries(args).map(([name, value]) => ({ name, value })),
      ...(target.target ? { target: target.target } : {}),
    });
    for (const [k, v] of Object.entries(labels)) container = container.withLabel(k, v);
    return { target, container };
  });
}

/** Run the build now; a failure names the service and keeps the end of the build's output. */
export async function forceBuild(b: BuiltImage): Promise<void> {
  try {
    await b.container.sync();
  } catch (e) {
    const text = e instanceof Error ? `${e.message}${(e as { stderr?: string }).stderr ? `\n${(e as { stderr?: string }).stderr}` : ""}` : String(e);
    throw new PipelineError(
      "BUILD_FAILED",
      `building services.${b.target.service} (${b.target.context}/${b.target.dockerfile}) failed:\n${tail(text, 15)}`,
      "fix the Dockerfile step shown above; `docker build` of the same context reproduces it. Nothing was pushed",
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
  /** Point `tag` at the manifest `digest` (no layers move). */
  tag(path: string, digest: string, tag: string): Promise<void>;
}

/**
 * Push every image under every tag, the immutable `sha-<7>` first. A commit is
 * published once: when its `sha-<7>` tag exists, that image is what the commit
 * is, so it is reused (the other tags are pointed at it) and the tag never moves.
 */
export async function publishImages(built: BuiltImage[], tags: string[], auth: { host: string; user: string; token: Secret }, store: TagStore): Promise<PublishedImage[]> {
  const [shaTag, ...others] = tags;
  if (!shaTag) throw new PipelineError("INTERNAL", "no tag to publish under", "this is a bug of vps-pipeline");
  const out: PublishedImage[] = [];
  for (const b of built) {
    const { repository } = b.target;
    const path = parseImageReference(repository).path;
    try {
      const existing = await store.digestOf(path, shaTag);
      if (existing) {
        for (const t of others) await store.tag(path, existing, t);
        out.push({ service: b.target.service, repository, tags, digest: existing, pinned: `${repository}@${existing}`, reused: true });
        continue;
      }
      await forceBuild(b);
      const authed = b.container.withRegistryAuth(auth.host, auth.user, auth.token);
      let digest = "";
      for (const t of tags) {
        const ref = await authed.publish(`${repository}:${t}`);
        digest = ref.slice(ref.indexOf("@") + 1);
      }
      out.push({ service: b.target.service, repository, tags, digest, pinned: `${repository}@${digest}`, reused: false });
    } catch (e) {
      if (isPipelineError(e)) throw e;
      throw registryError("push", auth.host, e instanceof Error ? e.message : String(e), repository);
    }
  }
  return out;
}
