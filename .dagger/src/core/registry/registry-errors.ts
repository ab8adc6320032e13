/**
 * What a registry failure printed by docker means. The same codes and hints as
 * the registry client's (core/registry/registry-auth.ts), so `publish`, `deploy` and
 * `doctor` explain a GHCR refusal the same way.
 */
import { PipelineError, tail } from "../errors.js";
import { parseImageReference } from "./images.js";
import { registryHttpError, type RegistryAction } from "./registry-auth.js";

export type RegistryFailure =
  "insufficient-scope" | "unauthorized" | "denied" | "not-found" | "certificate" | "unreachable" | "other";

export function classifyRegistryOutput(text: string): RegistryFailure {
  const t = text.toLowerCase();
  if (t.includes("insufficient_scope")) return "insufficient-scope";
  // containerd and the docker CLI say this when a push or pull went out without credentials
  if (/no basic auth credentials|unauthorized|authentication required|\b401\b|incorrect username or password/.test(t))
    return "unauthorized";
  if (/\bdenied\b|403 forbidden|\b403\b/.test(t)) return "denied";
  if (
    /x509:|certificate signed by unknown authority|certificate is not valid|certificate has expired|tls: failed to verify/.test(
      t,
    )
  )
    return "certificate";
  if (/manifest unknown|not found|name unknown|\b404\b/.test(t)) return "not-found";
  if (/no such host|connection refused|i\/o timeout|tls handshake timeout|network is unreachable|dial tcp/.test(t))
    return "unreachable";
  return "other";
}

/** The error for a registry whose TLS certificate the client does not trust. */
export function certificateError(registry: string, where: string, detail: string, cause?: unknown): PipelineError {
  return new PipelineError(
    "REGISTRY_CERT_UNTRUSTED",
    `the TLS certificate of ${registry} is not trusted ${where}: ${detail}`,
    `a self-hosted registry needs a certificate from a public CA, or its CA installed where the pull or push runs (for docker: /etc/docker/certs.d/${registry}/ca.crt); also check the machine's clock`,
    { cause },
  );
}

const STATUS: Partial<Record<RegistryFailure, number>> = {
  "insufficient-scope": 401,
  unauthorized: 401,
  denied: 403,
  "not-found": 404,
};

/** The pipeline error for a failed docker login/pull/push, with the registry's last words kept. */
export function registryError(
  step: "login" | "pull" | "push",
  registry: string,
  output: string,
  what = "the images",
): PipelineError {
  const kind = classifyRegistryOutput(output);
  const last = tail(output, 4);
  const action: RegistryAction = step === "push" ? "push" : "pull";
  const status = STATUS[kind];
  if (status !== undefined) {
    const e = registryHttpError(
      status,
      registry,
      what,
      action,
      kind === "insufficient-scope" ? "insufficient_scope" : undefined,
    );
    return new PipelineError(e.code, `registry ${step} failed: ${e.message}\n${last}`, e.hint);
  }
  // docker names the registry it talked to (`Get "https://host:port/v2/": x509: …`): that is the one whose certificate
  // failed.
  if (kind === "certificate")
    return certificateError(
      /https:\/\/([^/"\s]+)\//.exec(output)?.[1] ?? registry,
      step === "push" ? "where the push runs" : "on the VPS",
      last,
    );
  if (kind === "unreachable") {
    return new PipelineError(
      "REGISTRY_UNREACHABLE",
      `registry ${step} at ${registry} failed: it cannot be reached\n${last}`,
      "check DNS, outbound HTTPS and the clock of the machine that pulls (TLS fails on a wrong date)",
    );
  }
  return new PipelineError(
    "REGISTRY_FAILED",
    `registry ${step} at ${registry} failed:\n${last}`,
    "read the registry's message above",
  );
}

/**
 * A pull that failed, explained by the registry the image is on. `loginHost`
 * is the registry the credentials were for (none went anywhere else): an image
 * on another registry (Docker Hub's `postgres`, a typo such as `postgress`)
 * was pulled anonymously, so its failure is a name, a private image or a rate
 * limit there, never a token of ours.
 */
export function pullError(image: string, output: string, loginHost: string | undefined): PipelineError {
  const registry = parseImageReference(image).registry;
  if (registry === loginHost) return registryError("pull", registry, output, image);
  const last = tail(output, 4);
  const t = output.toLowerCase();
  const anonymous = loginHost
    ? `no credentials went to ${registry} (the pull token is for ${loginHost} only)`
    : "no credentials were given";
  if (t.includes("toomanyrequests") || t.includes("rate limit")) {
    return new PipelineError(
      "REGISTRY_DENIED",
      `${registry} refused to pull ${image}: rate limit (anonymous pulls are limited per address)\n${last}`,
      `wait and deploy again, or copy the image to your own registry and use that name in the compose file (${anonymous})`,
    );
  }
  const kind = classifyRegistryOutput(output);
  if (kind === "denied" || kind === "not-found" || kind === "unauthorized" || kind === "insufficient-scope") {
    return new PipelineError(
      "REGISTRY_NOT_FOUND",
      `${registry} has no image ${image} that can be pulled without credentials\n${last}`,
      `check the image's name in the compose file (a typo?) and its tag; if it is private, it must be on ${loginHost ?? "the registry you give a pull token for"}: ${anonymous}`,
    );
  }
  return registryError("pull", registry, output, image);
}
