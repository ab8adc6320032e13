/**
 * The pure parts of talking to a registry: the WWW-Authenticate challenge, the
 * token scope, what a JWT token grants, and the errors for HTTP statuses.
 */
import { PipelineError } from "../errors.js";

export type RegistryAction = "pull" | "push";

export interface Challenge {
  scheme: "bearer" | "basic";
  realm?: string;
  service?: string;
  scope?: string;
  error?: string;
}

/** `Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull"` → its parts. */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== "bearer" && scheme !== "basic") return undefined;
  const out: Challenge = { scheme };
  for (const p of (m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)) {
    const k = p[1]!.toLowerCase();
    if (k === "realm" || k === "service" || k === "scope" || k === "error") out[k] = p[2];
  }
  return out;
}

/** Scope string of the token spec; actions in the order registries print them. */
export function repositoryScope(repository: string, actions: readonly RegistryAction[]): string {
  const sorted = [...actions].sort((a, b) => (a === "push" ? -1 : b === "push" ? 1 : 0));
  return `repository:${repository}:${sorted.join(",")}`;
}

/**
 * Actions a JWT bearer token grants on `repository` (Docker token spec `access` claim); undefined when the token is
 * opaque.
 */
export function grantedActions(token: string, repository: string): string[] | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as {
      access?: { type: string; name: string; actions: string[] }[];
    };
    if (!Array.isArray(claims.access)) return undefined;
    return claims.access.filter((a) => a.type === "repository" && a.name === repository).flatMap((a) => a.actions);
  } catch {
    return undefined;
  }
}

const ACTION_SCOPE: Record<RegistryAction, string> = { pull: "read:packages", push: "write:packages" };

/**
 * The error for a registry's answer. 401 means no or bad credentials; 401 with
 * `insufficient_scope` and 403 mean the credentials are fine but not allowed.
 */
export function registryHttpError(
  status: number,
  host: string,
  what: string,
  action: RegistryAction,
  challengeError?: string,
): PipelineError {
  const scope = ACTION_SCOPE[action];
  if (status === 401 && challengeError === "insufficient_scope") {
    return new PipelineError(
      "REGISTRY_INSUFFICIENT_SCOPE",
      `${host} refused to ${action} ${what}: 401 insufficient_scope (logged in, but the token does not grant ${action})`,
      `give the token ${action === "push" ? "`write:packages`" : "`read:packages`"} (GHCR: a classic PAT; fine-grained tokens are not supported) and, for a package first pushed by someone else, grant this account or repository access in the package settings`,
    );
  }
  if (status === 401) {
    return new PipelineError(
      "REGISTRY_UNAUTHORIZED",
      `${host} answered 401 unauthorized for ${what}: the credentials are missing, wrong or expired`,
      `check the registry user and token; for GHCR a classic PAT with \`${scope}\`, or the workflow's GITHUB_TOKEN, which expires when its job ends`,
    );
  }
  if (status === 403) {
    return new PipelineError(
      "REGISTRY_DENIED",
      `${host} answered 403 denied for ${what}: the credentials are valid but not allowed to ${action} it`,
      `for GHCR: the token needs \`${scope}\` (classic PAT), and the package's settings must grant this user or repository access (a package first pushed with a PAT is not linked to the repository unless its image carries the \`org.opencontainers.image.source\` label)`,
    );
  }
  if (status === 404) {
    return new PipelineError(
      "REGISTRY_NOT_FOUND",
      `${host} has no ${what} (404)`,
      "check the image name (lowercase) and the tag; publish it first",
    );
  }
  return new PipelineError(
    "REGISTRY_FAILED",
    `${host} answered ${status} for ${what}`,
    "try again; if it persists, check the registry's status page",
  );
}

/** The key docker's config uses for a registry host (Docker Hub keeps its historical URL). */
function authKey(host: string): string {
  return host === "docker.io" || host === "index.docker.io" ? "https://index.docker.io/v1/" : host;
}

/**
 * A docker client config holding one login and nothing else: no `credsStore`,
 * no `credHelpers`, and an `auths` entry, so the CLI neither asks nor fills a
 * credential helper. Without credentials the entry is empty: anonymous pulls,
 * and still no helper. It travels on stdin and lives in a throwaway folder.
 */
export function dockerAuthConfig(
  login: { host: string; user: string; token: string } | undefined,
  fallbackHost = "ghcr.io",
): string {
  const entry = login ? { auth: Buffer.from(`${login.user}:${login.token}`).toString("base64") } : {};
  return `${JSON.stringify({ auths: { [authKey(login?.host ?? fallbackHost)]: entry } })}\n`;
}
