/**
 * Images for several platforms: which platforms a server (or each swarm node)
 * runs, and whether every multi-platform image (an index) of a release has an
 * entry for it. Checked before the pull: a server whose platform an index lacks
 * is refused, naming the service, the platforms there and the server's.
 */
import type { Argv } from "../shell.js";

/** `uname -m` (and docker's `Architecture`) as OCI names it: x86_64 → amd64, aarch64 → arm64… */
export function ociArch(arch: string): string {
  const a = arch.trim().toLowerCase();
  return (
    (
      {
        x86_64: "amd64",
        aarch64: "arm64",
        armv8: "arm64",
        armv7l: "arm/v7",
        armv6l: "arm/v6",
        i386: "386",
        i686: "386",
      } as Record<string, string>
    )[a] ?? a
  );
}

/** Where the release runs and on what: one entry on a VPS, one per node on a swarm. */
export interface ServerPlatform {
  /** `the VPS`, or `node swarm-2`. */
  where: string;
  /** `linux/amd64`, `linux/arm64`, `linux/arm/v7`. */
  platform: string;
}

/** One VPS: the engine's own `os/arch` (Go's names, as OCI uses them). */
export function serverPlatformProbe(): Argv {
  return ["docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"];
}

/** A swarm: every node's hostname, OS and `uname -m`. */
export function nodePlatformsProbe(): Argv {
  return [
    "sh",
    "-c",
    'docker node ls -q | xargs docker node inspect --format "{{.Description.Hostname}} {{.Description.Platform.OS}} {{.Description.Platform.Architecture}}"',
  ];
}

export function parseNodePlatforms(out: string): ServerPlatform[] {
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p.length === 3)
    .map(([host, os, arch]) => ({ where: `node ${host}`, platform: `${os}/${ociArch(arch!)}` }));
}

/** `linux/arm64` matches `linux/arm64/v8`; a variant counts only when both name one. */
function fits(have: string, want: string): boolean {
  const [ho, ha, hv] = have.split("/");
  const [wo, wa, wv] = want.split("/");
  return ho === wo && ha === wa && (!hv || !wv || hv === wv || (wa === "arm64" && (hv === "v8" || wv === "v8")));
}

/**
 * Every service whose image is an index without an entry for a server's platform, as `services.<s>: …`.
 * `indexes`: image → the platforms of its index (images that are single manifests are not in it).
 */
export function platformProblems(
  images: Record<string, string>,
  indexes: ReadonlyMap<string, string[]>,
  servers: readonly ServerPlatform[],
): string[] {
  const problems: string[] = [];
  for (const [service, image] of Object.entries(images)) {
    const have = indexes.get(image);
    if (!have) continue;
    const missing = servers.filter((s) => !have.some((h) => fits(h, s.platform)));
    if (missing.length)
      problems.push(
        `services.${service}: ${image} has ${have.join(", ") || "no platform"}; ${missing.map((s) => `${s.where} is ${s.platform}`).join(", ")}`,
      );
  }
  return problems;
}
