/**
 * Deploy on its own: images given by tag are resolved to digests first, so the
 * release is pinned before anything reaches the server.
 */
import type { ComposeStack } from "../core/compose/compose.js";
import { planReleaseImages } from "../core/compose/compose.js";
import { parseImageReference } from "../core/registry/images.js";
import { RegistryClient } from "./client.js";

export interface PullCredentials {
  /** The registry these credentials are for: no other registry ever sees them. */
  host: string;
  user: string;
  token: string;
}

/** service → digest for every built service; tags are looked up in their registries. */
export async function resolveReleaseDigests(
  stack: ComposeStack,
  refs: readonly string[],
  tag: string | undefined,
  creds: PullCredentials | undefined,
): Promise<Record<string, string>> {
  const plan = planReleaseImages(stack, refs, tag);
  const digests = { ...plan.pinned };
  const clients = new Map<string, RegistryClient>();
  for (const want of plan.toResolve) {
    const { registry, path } = parseImageReference(want.repository);
    let client = clients.get(registry);
    if (!client) {
      client = new RegistryClient({
        host: registry,
        ...(creds && creds.host === registry ? { user: creds.user, token: creds.token } : {}),
      });
      clients.set(registry, client);
    }
    digests[want.service] = await client.manifestDigest(path, want.reference);
  }
  return digests;
}
