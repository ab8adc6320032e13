/**
 * `doctor`: diagnose registry and VPS access before anything changes. Every
 * check becomes a finding (status, one line, the fix); nothing is written
 * anywhere except a cancelled upload session and a throwaway login on the VPS.
 */
import { isPipelineError } from "../core/errors.js";
import type { Finding } from "../core/findings.js";
import { scopeFinding, tokenKind, tokenKindFinding, type TokenUse } from "../core/registry/github-tokens.js";
import { parseImageReference } from "../core/registry/images.js";
import type { SshOptions } from "../remote/ssh.js";
import { vpsAccessFindings } from "../remote/doctor.js";
import { RegistryClient } from "./client.js";
import { lookupScopes } from "./github.js";

export interface Credentials {
  user: string;
  token: string;
}

export interface DoctorInput {
  /** Registry host the images live in. */
  registry: string;
  /** Full repositories (`host/owner/repo/service`) as the pipeline will publish them. */
  repositories: string[];
  /** Image names as the user wrote them (compose `image:` or prefix), to flag upper case. */
  writtenNames: string[];
  push?: Credentials;
  pull?: Credentials;
  /** Tag whose manifest the pull check reads. */
  tag: string;
  vps?: SshOptions;
  /** The edge image the VPS should run (doctor warns when it runs another). */
  edgeImage?: string;
  /** The target is a swarm: the pull token is stored in the swarm, so it should not be able to push. */
  swarm?: boolean;
  githubApi?: string;
}

function fromError(check: string, e: unknown): Finding {
  if (isPipelineError(e))
    return { check, status: "fail", detail: `${e.code}: ${e.message.split("\n")[0]}`, fix: e.hint };
  return { check, status: "fail", detail: String(e) };
}

async function tokenFindings(
  c: Credentials,
  use: TokenUse,
  label: string,
  registry: string,
  api: string | undefined,
): Promise<Finding[]> {
  const kind = tokenKind(c.token);
  const out = [tokenKindFinding(kind, use, label)];
  if (registry !== "ghcr.io" || kind === "other") return out;
  const r = await lookupScopes(c.token, api);
  if (!r.reachable)
    out.push({
      check: `${label} token scopes`,
      status: "skip",
      detail: `the GitHub API is not reachable from here (${r.why}): scopes not read`,
    });
  else if (r.status === 401)
    out.push({
      check: `${label} token scopes`,
      status: "fail",
      detail: "GitHub says this token is invalid, revoked or expired",
      fix: "create a new classic PAT and update the secret",
    });
  else out.push(scopeFinding(r.scopes, use, label));
  return out;
}

export async function doctor(input: DoctorInput): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const name of input.writtenNames) {
    if (name !== name.toLowerCase())
      findings.push({
        check: "image name",
        status: "warn",
        detail: `\`${name}\` has upper case; it is published as \`${name.toLowerCase()}\``,
        fix: "write it in lowercase so what you read is what GHCR stores",
      });
  }
  if (!input.writtenNames.some((n) => n !== n.toLowerCase()))
    findings.push({ check: "image names", status: "ok", detail: "all lowercase" });

  const paths = input.repositories.map((r) => parseImageReference(r).path);
  if (input.push) {
    findings.push(...(await tokenFindings(input.push, "push", "push", input.registry, input.githubApi)));
    const client = new RegistryClient({ host: input.registry, ...input.push });
    for (const path of paths) {
      try {
        const how = await client.checkPush(path);
        findings.push({ check: `push ${path}`, status: "ok", detail: `${input.push.user} may push: ${how}` });
      } catch (e) {
        findings.push(fromError(`push ${path}`, e));
      }
    }
  } else findings.push({ check: "push", status: "skip", detail: "no push token given" });

  const pull = input.pull ?? input.push;
  if (input.pull) findings.push(...(await tokenFindings(input.pull, "pull", "pull", input.registry, input.githubApi)));
  const client = new RegistryClient({ host: input.registry, ...(pull ?? {}) });
  for (const path of paths) {
    try {
      const digest = await client.manifestDigest(path, input.tag);
      findings.push({ check: `pull ${path} (from here)`, status: "ok", detail: `${path}:${input.tag} is ${digest}` });
    } catch (e) {
      if (isPipelineError(e, "REGISTRY_NOT_FOUND"))
        findings.push({
          check: `pull ${path} (from here)`,
          status: "warn",
          detail: `allowed to ask, but there is no \`${input.tag}\` yet`,
          fix: "publish first, or pass the tag to check",
        });
      else findings.push(fromError(`pull ${path} (from here)`, e));
    }
  }

  if (input.swarm && input.pull && paths[0] !== undefined)
    findings.push(await pullTokenPushes(input.registry, input.pull, paths[0]));
  if (input.vps)
    findings.push(
      ...(await vpsAccessFindings({
        ssh: input.vps,
        registry: input.registry,
        pull,
        refs: input.repositories.map((r) => `${r}:${input.tag}`),
        edgeImage: input.edgeImage,
        ...(input.swarm !== undefined ? { swarm: input.swarm } : {}),
      })),
    );
  else
    findings.push({
      check: "VPS",
      status: "skip",
      detail: "no VPS given: pull from the VPS and its docker config not checked",
    });
  return findings;
}

/**
 * On a swarm, `--with-registry-auth` stores the pull token in the service
 * definitions (every manager has it): a token that can push turns a leak into a
 * poisoned image. Asked the registry's way (a push token request, or an upload
 * started and cancelled), so it works for GHCR and any registry.
 */
async function pullTokenPushes(registry: string, pull: Credentials, path: string): Promise<Finding> {
  const check = "pull token on the swarm";
  try {
    await new RegistryClient({ host: registry, ...pull }).checkPush(path);
    return {
      check,
      status: "warn",
      detail: `the pull token of ${pull.user} can push to ${path}; on a swarm it is stored in the services' definitions`,
      fix: "give the swarm a read-only token (GHCR: a classic PAT with only read:packages) as --pull-token",
    };
  } catch (e) {
    if (
      isPipelineError(e) &&
      ["REGISTRY_DENIED", "REGISTRY_UNAUTHORIZED", "REGISTRY_INSUFFICIENT_SCOPE"].includes(e.code)
    )
      return { check, status: "ok", detail: "the pull token cannot push (read-only)" };
    return fromError(check, e);
  }
}
