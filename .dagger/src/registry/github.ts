/** Reads a GitHub token's granted scopes from the API's X-OAuth-Scopes header. */
import { parseOAuthScopes } from "../core/registry/github-tokens.js";

export type ScopeLookup =
  { reachable: false; why: string } | { reachable: true; status: number; scopes: string[] | undefined };

export async function lookupScopes(
  token: string,
  api = "https://api.github.com",
  timeoutMs = 5000,
): Promise<ScopeLookup> {
  try {
    const r = await fetch(`${api}/user`, {
      headers: { Authorization: `token ${token}`, "User-Agent": "vps-pipeline-doctor" },
      signal: AbortSignal.timeout(timeoutMs),
    });
    await r.body?.cancel();
    return { reachable: true, status: r.status, scopes: parseOAuthScopes(r.headers.get("x-oauth-scopes")) };
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause;
    return { reachable: false, why: cause?.code ?? (e as Error).message };
  }
}
