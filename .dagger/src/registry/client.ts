/**
 * A registry HTTP API v2 client on Node's fetch: the bearer challenge flow (and
 * plain basic auth), manifest digests, and an access check that changes nothing.
 */
import { createHash } from "node:crypto";
import { PipelineError, parseJson } from "../core/errors.js";
import {
  grantedActions,
  parseChallenge,
  registryHttpError,
  repositoryScope,
  type RegistryAction,
} from "../core/registry/registry-auth.js";
import { certificateError } from "../core/registry/registry-errors.js";

/** Node's codes for a TLS certificate it does not trust. */
const CERT_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_UNTRUSTED",
]);

/** Every manifest kind a tag can point at: OCI index and manifest, Docker list and v2 manifest. */
export const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

export interface RegistryClientOptions {
  /** `ghcr.io`, or `host:port`. */
  host: string;
  user?: string;
  token?: string;
  timeoutMs?: number;
  /** These are push credentials: a refusal is explained with what a push token needs, even on a read. */
  pushing?: boolean;
}

export class RegistryClient {
  private readonly bearer = new Map<string, string>();
  private readonly timeoutMs: number;

  constructor(private readonly o: RegistryClientOptions) {
    this.timeoutMs = o.timeoutMs ?? 15_000;
  }

  private basic(): string | undefined {
    return this.o.user !== undefined && this.o.token !== undefined
      ? `Basic ${Buffer.from(`${this.o.user}:${this.o.token}`).toString("base64")}`
      : undefined;
  }

  private async send(url: string, init: RequestInit, what: string): Promise<Response> {
    try {
      return await fetch(url, { ...init, redirect: "follow", signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code && CERT_CODES.has(cause.code))
        throw certificateError(
          this.o.host,
          "where this function runs",
          `${cause.code}${cause.message ? ` (${cause.message})` : ""}`,
          e,
        );
      const why =
        (e as Error).name === "TimeoutError"
          ? `no answer within ${this.timeoutMs / 1000}s`
          : (cause?.code ?? cause?.message ?? (e as Error).message);
      throw new PipelineError(
        "REGISTRY_UNREACHABLE",
        `cannot reach ${this.o.host} for ${what}: ${why}`,
        "check the registry host, DNS and outbound HTTPS from where this runs",
        { cause: e },
      );
    }
  }

  /** Get a bearer token for `scope` from the challenge's realm, with basic credentials when we have them. */
  private async token(
    realm: string,
    service: string | undefined,
    scope: string,
    action: RegistryAction,
    what: string,
  ): Promise<string> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch (e) {
      throw new PipelineError(
        "REGISTRY_FAILED",
        `${this.o.host} named a token service that is not a URL: ${realm.slice(0, 100)}`,
        "the registry's auth configuration is broken; ask its operator",
        { cause: e },
      );
    }
    // Credentials travel only over https, wherever the registry points us.
    if (url.protocol !== "https:") {
      throw new PipelineError(
        "REGISTRY_INSECURE",
        `${this.o.host} sends clients to a token service on ${url.protocol}//${url.host}: the credentials would travel unencrypted, so they were not sent`,
        "serve the registry's token endpoint over https",
      );
    }
    if (service) url.searchParams.set("service", service);
    url.searchParams.set("scope", scope);
    const auth = this.basic();
    const r = await this.send(url.toString(), auth ? { headers: { Authorization: auth } } : {}, `a token for ${what}`);
    if (!r.ok) throw registryHttpError(r.status, this.o.host, what, action);
    const body = parseJson<{ token?: string; access_token?: string }>(
      await r.text(),
      `the token endpoint of ${this.o.host}`,
    );
    const t = body.token ?? body.access_token;
    if (!t)
      throw new PipelineError(
        "REGISTRY_FAILED",
        `the token endpoint of ${this.o.host} answered without a token`,
        "the registry's auth service misbehaves; try again later",
      );
    return t;
  }

  /** A request under `repository` needing `actions`, answering the registry's challenge once. */
  async request(
    method: string,
    repository: string,
    path: string,
    actions: RegistryAction[],
    headers: Record<string, string> = {},
    body?: BodyInit,
  ): Promise<Response> {
    const url = `https://${this.o.host}/v2/${repository}/${path}`;
    const scope = repositoryScope(repository, actions);
    const what = `${repository} (${path.split("/")[0]})`;
    const action: RegistryAction = actions.includes("push") || this.o.pushing ? "push" : "pull";
    const cached = this.bearer.get(scope);
    let r = await this.send(
      url,
      {
        method,
        headers: { ...headers, ...(cached ? { Authorization: `Bearer ${cached}` } : {}) },
        ...(body ? { body } : {}),
      },
      what,
    );
    if (r.status === 401 && !cached) {
      const c = parseChallenge(r.headers.get("www-authenticate"));
      let auth: string | undefined;
      if (c?.scheme === "bearer" && c.realm) {
        const t = await this.token(c.realm, c.service, scope, action, what);
        this.bearer.set(scope, t);
        auth = `Bearer ${t}`;
      } else if (c?.scheme === "basic") auth = this.basic();
      if (auth)
        r = await this.send(
          url,
          { method, headers: { ...headers, Authorization: auth }, ...(body ? { body } : {}) },
          what,
        );
    }
    if (r.status >= 400) {
      const c = parseChallenge(r.headers.get("www-authenticate"));
      await r.body?.cancel();
      throw registryHttpError(r.status, this.o.host, what, action, c?.error);
    }
    return r;
  }

  /** The digest a tag (or digest) points at, from a HEAD; a GET when the registry does not send the header. */
  async manifestDigest(repository: string, reference: string): Promise<string> {
    const headers = { Accept: MANIFEST_ACCEPT };
    const head = await this.request("HEAD", repository, `manifests/${reference}`, ["pull"], headers);
    const digest = head.headers.get("docker-content-digest");
    if (digest) return digest;
    const get = await this.request("GET", repository, `manifests/${reference}`, ["pull"], headers);
    return `sha256:${createHash("sha256")
      .update(Buffer.from(await get.arrayBuffer()))
      .digest("hex")}`;
  }

  /** The digest `reference` points at, or undefined when the registry has no such tag. */
  async digestOf(repository: string, reference: string): Promise<string | undefined> {
    try {
      return await this.manifestDigest(repository, reference);
    } catch (e) {
      if (e instanceof PipelineError && e.code === "REGISTRY_NOT_FOUND") return undefined;
      throw e;
    }
  }

  /** The revision label of the image at `digest` (an index: its first image), or undefined when it has none. */
  async revisionOf(repository: string, digest: string): Promise<string | undefined> {
    const json = async <T>(path: string, accept: string) =>
      parseJson<T>(
        await (await this.request("GET", repository, path, ["pull"], { Accept: accept })).text(),
        `${this.o.host}/${repository} ${path}`,
      );
    type Manifest = { manifests?: { digest: string }[]; config?: { digest: string } };
    let manifest = await json<Manifest>(`manifests/${digest}`, MANIFEST_ACCEPT);
    if (manifest.manifests?.[0])
      manifest = await json<Manifest>(`manifests/${manifest.manifests[0].digest}`, MANIFEST_ACCEPT);
    if (!manifest.config) return undefined;
    const config = await json<{ config?: { Labels?: Record<string, string> } }>(
      `blobs/${manifest.config.digest}`,
      "application/json",
    );
    return config.config?.Labels?.["org.opencontainers.image.revision"];
  }

  /** Point `tag` at the manifest `digest`: the manifest is read and put back under the new name, no layer moves. */
  async tag(repository: string, digest: string, tag: string): Promise<void> {
    const got = await this.request("GET", repository, `manifests/${digest}`, ["push", "pull"], {
      Accept: MANIFEST_ACCEPT,
    });
    const type = got.headers.get("content-type") ?? "application/vnd.oci.image.manifest.v1+json";
    const manifest = new Blob([await got.arrayBuffer()]);
    const put = await this.request(
      "PUT",
      repository,
      `manifests/${tag}`,
      ["push", "pull"],
      { "Content-Type": type },
      manifest,
    );
    await put.body?.cancel();
  }

  /**
   * Whether these credentials may push to `repository`, writing nothing where it
   * can: a JWT bearer token says what it grants (the Docker token spec's `access`
   * claim). With an opaque token or basic auth, a blob upload is opened and
   * cancelled; a registry that refuses the cancel expires the empty session itself.
   * Returns how it was checked.
   */
  async checkPush(repository: string): Promise<string> {
    const scope = repositoryScope(repository, ["push", "pull"]);
    const what = `${repository} (push)`;
    const probe = await this.send(`https://${this.o.host}/v2/`, {}, what);
    await probe.body?.cancel();
    const c = parseChallenge(probe.headers.get("www-authenticate"));
    if (probe.status === 401 && c?.scheme === "bearer" && c.realm) {
      const t = await this.token(c.realm, c.service, scope, "push", what);
      this.bearer.set(scope, t);
      const granted = grantedActions(t, repository);
      if (granted !== undefined) {
        if (!granted.includes("push")) throw registryHttpError(401, this.o.host, what, "push", "insufficient_scope");
        return `the registry's token grants ${granted.join(",")}`;
      }
    }
    const r = await this.request("POST", repository, "blobs/uploads/", ["push", "pull"]);
    const location = r.headers.get("location");
    await r.body?.cancel();
    if (location) {
      const auth = this.bearer.get(scope);
      const header = auth ? `Bearer ${auth}` : this.basic();
      const d = await this.send(
        new URL(location, `https://${this.o.host}`).toString(),
        { method: "DELETE", headers: header ? { Authorization: header } : {} },
        "cancelling the test upload",
      );
      await d.body?.cancel();
    }
    return "an upload was accepted (and cancelled)";
  }
}
