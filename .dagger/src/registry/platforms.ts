/**
 * The platforms of a release's images, read from the registry with the pull
 * login (only its own registry gets the token): for an index, its entries'
 * `os/arch[/variant]` (attestations, `unknown/unknown`, left out); for a
 * single-platform manifest, the one its config names (an arm64 laptop's build
 * would otherwise reach an amd64 server and fail there with "exec format error").
 */
import { parseJson } from "../core/errors.js";
import { isDigest, parseImageReference } from "../core/registry/images.js";
import { MANIFEST_ACCEPT, RegistryClient } from "./client.js";

export interface PlatformLogin {
  host: string;
  user: string;
  token: string;
}

interface Platform {
  os?: string;
  architecture?: string;
  variant?: string;
}

/** `os/arch[/variant]`, or nothing for an attestation (`unknown/unknown`) or a config without one. */
function named(p: Platform): string[] {
  if (!p.os || !p.architecture || p.os === "unknown") return [];
  return [`${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`];
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
    const m = parseJson<{ manifests?: { platform?: Platform }[]; config?: { digest?: string } }>(
      await r.text(),
      `${ref.registry}/${ref.path} manifest`,
    );
    if (m.manifests) {
      out.set(
        image,
        m.manifests.flatMap((x) => (x.platform ? named(x.platform) : [])),
      );
      continue;
    }
    if (!m.config?.digest) continue;
    const blob = await client.request("GET", ref.path, `blobs/${m.config.digest}`, ["pull"]);
    const config = parseJson<Platform>(await blob.text(), `${ref.registry}/${ref.path} image config`);
    // a config that names no platform (not an image's) is the pull's to judge
    if (named(config).length) out.set(image, named(config));
  }
  return out;
}
