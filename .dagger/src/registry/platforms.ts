/**
 * The platforms of a release's multi-platform images, read from the registry
 * with the pull login (only its own registry gets the token): for an index, its
 * entries' `os/arch[/variant]` (attestations, `unknown/unknown`, left out);
 * single-platform manifests are not listed.
 */
import { parseJson } from "../core/errors.js";
import { isDigest, parseImageReference } from "../core/registry/images.js";
import { MANIFEST_ACCEPT, RegistryClient } from "./client.js";

export interface PlatformLogin {
  host: string;
  user: string;
  token: string;
}

export async function indexPlatforms(
  images: readonly string[],
  login: PlatformLogin | undefined,
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const clients = new Map<string, RegistryClient>();
  for (const image of new Set(images)) {
    const ref = parseImageReference(image.toLowerCase());
    if (!ref.digest || !isDigest(ref.digest)) continue;
    // a token goes to its own registry only; another registry's images are read anonymously
    let client = clients.get(ref.registry);
    if (!client)
      clients.set(
        ref.registry,
        (client = new RegistryClient({
          host: ref.registry,
          ...(login && login.host === ref.registry ? { user: login.user, token: login.token } : {}),
        })),
      );
    const r = await client.request("GET", ref.path, `manifests/${ref.digest}`, ["pull"], { Accept: MANIFEST_ACCEPT });
    const m = parseJson<{ manifests?: { platform?: { os?: string; architecture?: string; variant?: string } }[] }>(
      await r.text(),
      `${ref.registry}/${ref.path} manifest`,
    );
    if (!m.manifests) continue;
    out.set(
      image,
      m.manifests.flatMap((x) => {
        const p = x.platform;
        if (!p?.os || !p.architecture || p.os === "unknown") return [];
        return [`${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`];
      }),
    );
  }
  return out;
}
