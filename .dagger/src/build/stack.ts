/**
 * The build and publish of a whole stack from the settings the module was
 * constructed with: shared by `build`, `publish` and `ship`.
 */
import { dag, type Container, type Directory, type Secret } from "@dagger.io/dagger";
import type { ComposeStack } from "../core/compose/compose.js";
import type { GitInfo } from "../core/config.js";
import { PipelineError } from "../core/errors.js";
import { ociLabels, tagsFor } from "../core/registry/images.js";
import {
  checkImagePrefix,
  keyValues,
  loadStack,
  platformList,
  registryLogin,
  stackRegistry,
} from "../inputs/inputs.js";
import { RegistryClient } from "../registry/client.js";
import { buildImages, forceBuild, publishImages, type BuiltImage, type PublishedImage } from "./images.js";

/** The module's constructor arguments, as both objects hold them. */
export interface StackSettings {
  source: Directory;
  composeFile: string;
  imagePrefix: string;
  registry: string;
  registryUser: string;
  registryToken?: Secret | undefined;
  /** Platforms every service is built for (`linux/amd64`…); several: one index per service. */
  platforms: string[];
}

/** The stack; `buildArgs` (`--build-args`, for a build) are the variables its `build:` and built images are read with. */
export async function stackOf(s: StackSettings, buildArgs?: Record<string, string>): Promise<ComposeStack> {
  return loadStack(
    s.source,
    s.composeFile,
    checkImagePrefix(s.imagePrefix),
    buildArgs ? new Map(Object.entries(buildArgs)) : undefined,
  );
}

export interface BuildOptions {
  git: GitInfo;
  sourceUrl: string;
  version?: string | undefined;
  buildArgs: string[];
}

export async function buildStack(
  s: StackSettings,
  o: BuildOptions,
): Promise<{ stack: ComposeStack; built: BuiltImage[] }> {
  const buildArgs = keyValues(o.buildArgs, "buildArgs");
  const stack = await stackOf(s, buildArgs);
  const labels = ociLabels({
    source: o.sourceUrl,
    revision: o.git.sha,
    ...(o.git.commitTime ? { created: o.git.commitTime } : {}),
    ...(o.version ? { version: o.version } : {}),
  });
  // The context's files carry the commit's time (or the epoch): a checkout made at another moment builds the same COPY
  // layers.
  const timestamp = o.git.commitTime ? Math.floor(o.git.commitTime.getTime() / 1000) : 0;
  return {
    stack,
    built: buildImages(s.source, stack, labels, buildArgs, timestamp, platformList(s.platforms)),
  };
}

/** The built containers, every build run first: a failing one is a BUILD_FAILED naming its service. */
export async function builtContainers(built: BuiltImage[]): Promise<Container[]> {
  for (const b of built) await forceBuild(b);
  return built.flatMap((b) => [b.container, ...(b.variants ?? [])]);
}

export async function publishStack(s: StackSettings, o: Omit<BuildOptions, "version">): Promise<PublishedImage[]> {
  if (!s.registryToken)
    throw new PipelineError(
      "INVALID_INPUT",
      "publish needs --registry-token (and --registry-user) on the module",
      "pass them before the function: `dagger -m . call --registry-user=… --registry-token=env:GHCR_TOKEN publish …`",
    );
  const { tags } = tagsFor(o.git);
  const version = tags.find((t) => /^v\d/.test(t));
  const { stack, built } = await buildStack(s, { ...o, version });
  const registry = stackRegistry(stack, s.registry);
  const login = (await registryLogin(registry, s.registryUser, s.registryToken, "registryUser"))!;
  // The pushed-with secret is the trimmed token: a `file:` or `cmd:` value ends with a newline the registry refuses.
  const token = dag.setSecret(`vps-pipeline-push-${registry}-${login.user}`, login.token);
  return publishImages(
    built,
    { tags, revision: o.git.sha },
    { host: registry, user: login.user, token },
    new RegistryClient({ host: registry, user: login.user, token: login.token, pushing: true }),
  );
}
