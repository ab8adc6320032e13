/**
 * What a registry failure means, from the text docker prints. GHCR and
 * distribution answer 401/`unauthorized` for missing or bad credentials and
 * 403/`denied` for credentials that are fine but not allowed this image.
 */
import { PipelineError } from "./errors.js";

export type RegistryFailure = "unauthorized" | "denied" | "not-found" | "unreachable" | "other";

export function classifyRegistryOutput(text: string): RegistryFailure {
  const t = text.toLowerCase();
  if (/\bdenied\b|403 forbidden|\b403\b/.test(t)) return "denied";
  if (/unauthorized|authentication required|401|incorrect username or password|insufficient_scope/.test(t)) return "unauthorized";
  if (/manifest unknown|not found|name unknown|404/.test(t)) return "not-found";
  if (/no such host|connection refused|i\/o timeout|tls handshake|x509|network is unreachable|dial tcp/.test(t)) return "unreachable";
  return "other";
}

const HINTS: Record<RegistryFailure, string> = {
  unauthorized:
    "the registry did not accept the credentials: check the user name and that the token is current (a workflow's GITHUB_TOKEN expires when its job ends, so the VPS must pull with a classic PAT with `read:packages`)",
  denied:
    "the credentials were accepted but may not read this image: for GHCR give the token `read:packages` (classic PAT; fine-grained tokens do not work with GHCR), and in the package's settings grant the repository or user access",
  "not-found": "the image or tag does not exist in the registry: publish it first, and check the image name (lowercase) and tag",
  unreachable: "the VPS cannot reach the registry: check its DNS, outbound HTTPS and the clock (TLS fails on a wrong date)",
  other: "read the registry's message above",
};

export function registryError(step: "login" | "pull" | "push" | "resolve", registry: string, output: string): PipelineError {
  const kind = classifyRegistryOutput(output);
  const code = kind === "other" ? `REGISTRY_${step.toUpperCase()}_FAILED` : `REGISTRY_${kind.toUpperCase().replace("-", "_")}`;
  const last = output.trim().split("\n").slice(-4).join("\n");
  return new PipelineError(code, `registry ${step} at ${registry} failed (${kind}):\n${last}`, HINTS[kind]);
}
