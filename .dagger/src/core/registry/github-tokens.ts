/**
 * GitHub tokens as GHCR sees them: which kind a token is (from its prefix), what
 * that means for pushing from CI or pulling on a VPS, and the scopes a classic
 * token carries (GitHub's `X-OAuth-Scopes` response header).
 */
import type { Finding } from "../findings.js";

export type TokenKind =
  "classic-pat" | "fine-grained-pat" | "installation" | "oauth" | "user-to-server" | "refresh" | "other";

const PREFIXES: [string, TokenKind][] = [
  ["github_pat_", "fine-grained-pat"],
  ["ghp_", "classic-pat"],
  ["ghs_", "installation"],
  ["gho_", "oauth"],
  ["ghu_", "user-to-server"],
  ["ghr_", "refresh"],
];

export function tokenKind(token: string): TokenKind {
  return PREFIXES.find(([p]) => token.startsWith(p))?.[1] ?? "other";
}

export type TokenUse = "push" | "pull";

/** What a token of this kind means for its use. Never includes the token itself. */
export function tokenKindFinding(kind: TokenKind, use: TokenUse, label: string): Finding {
  const check = `${label} token kind`;
  switch (kind) {
    case "classic-pat":
      return {
        check,
        status: "ok",
        detail: `classic personal access token (ghp_): GHCR accepts it with \`${use === "push" ? "write:packages" : "read:packages"}\``,
      };
    case "fine-grained-pat":
      return {
        check,
        status: "fail",
        detail: "fine-grained personal access token (github_pat_): GHCR does not accept these",
        fix: `create a classic PAT with \`${use === "push" ? "write:packages" : "read:packages"}\` instead`,
      };
    case "installation":
      return use === "push"
        ? {
            check,
            status: "ok",
            detail:
              "installation token (ghs_, e.g. the workflow's GITHUB_TOKEN): fine for pushing from its own job with `packages: write`",
          }
        : {
            check,
            status: "warn",
            detail:
              "installation token (ghs_, e.g. the workflow's GITHUB_TOKEN): it expires when the job ends. Deploys work (the VPS uses it only during the deploy), but nothing on the server can pull later",
            fix: "for pulls outside a deploy, use a classic PAT with `read:packages` as the pull token",
          };
    case "oauth":
    case "user-to-server":
      return {
        check,
        status: "warn",
        detail: `${kind} token (${kind === "oauth" ? "gho_" : "ghu_"}): works while it lives, but it is tied to an app session`,
        fix: "prefer a classic PAT for a long-lived deploy credential",
      };
    case "refresh":
      return {
        check,
        status: "fail",
        detail: "refresh token (ghr_): cannot log in to a registry",
        fix: "use a classic PAT",
      };
    default:
      return { check, status: "skip", detail: "not a GitHub token: nothing to say about its kind" };
  }
}

/** `X-OAuth-Scopes: repo, read:packages` → its scopes; undefined when the header is absent (not a classic token). */
export function parseOAuthScopes(header: string | null | undefined): string[] | undefined {
  if (header === null || header === undefined) return undefined;
  return header
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Whether the scopes allow the use: `write:packages` implies read, `delete:packages` does not. */
export function scopeFinding(scopes: string[] | undefined, use: TokenUse, label: string): Finding {
  const check = `${label} token scopes`;
  if (scopes === undefined)
    return {
      check,
      status: "skip",
      detail: "GitHub sent no X-OAuth-Scopes header: not a classic token, scopes cannot be read",
    };
  const ok =
    use === "push"
      ? scopes.includes("write:packages")
      : scopes.includes("read:packages") || scopes.includes("write:packages");
  const need = use === "push" ? "write:packages" : "read:packages";
  return ok
    ? { check, status: "ok", detail: `granted: ${scopes.join(", ") || "(none)"}` }
    : {
        check,
        status: "fail",
        detail: `granted: ${scopes.join(", ") || "(none)"}; \`${need}\` is missing`,
        fix: `edit the token on GitHub (Settings → Developer settings → Tokens (classic)) and tick \`${need}\``,
      };
}
