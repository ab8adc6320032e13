/**
 * Building and publishing with the Dagger API, driven by the core's build plan.
 * Builders return lazy Containers; only publishing awaits.
 */
import { Container, Directory, Secret } from "@dagger.io/dagger";
import type { BuildTarget, ComposeStack } from "../core/compose.js";
import { isPipelineError } from "../core/errors.js";
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

export interface PublishedImage {
  service: string;
  repository: string;
  tags: string[];
  digest: string;
  /** `repo@sha256:…`: what deploy takes. */
  pinned: string;
}

/** Push every image under every tag; the digest is the same for all tags of one image. */
export async function publishImages(built: BuiltImage[], tags: string[], auth: { host: string; user: string; token: Secret }): Promise<PublishedImage[]> {
  const out: PublishedImage[] = [];
  for (const { target, container } of built) {
    const authed = container.withRegistryAuth(auth.host, auth.user, auth.token);
    let digest = "";
    for (const tag of tags) {
      try {
        const ref = await authed.publish(`${target.repository}:${tag}`);
        digest = ref.slice(ref.indexOf("@") + 1);
      } catch (e) {
        if (isPipelineError(e)) throw e;
        throw registryError("push", auth.host, e instanceof Error ? e.message : String(e));
      }
    }
    out.push({ service: target.service, repository: target.repository, tags, digest, pinned: `${target.repository}@${digest}` });
  }
  return out;
}
