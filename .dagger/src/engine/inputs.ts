/**
 * From the module's function arguments to the core's checked values: parse with
 * zod (every problem at once), read Secrets only here and only when needed.
 */
import { Directory, Secret } from "@dagger.io/dagger";
import os from "node:os";
import { deployOptionsSchema, parseInput, registrySchema, vpsTargetSchema } from "../core/config.js";
import { parseComposeStack, type ComposeStack } from "../core/compose.js";
import { PipelineError } from "../core/errors.js";
import type { RemoteTarget } from "../remote/deploy.js";

export interface VpsArgs {
  host: string;
  port: number;
  user: string;
  hostKey: string;
  sshKey: Secret;
  sshKeyPassphrase?: Secret | undefined;
  dir?: string | undefined;
  project: string;
  lockTimeout?: number | undefined;
}

/** Validate the VPS arguments and read the SSH key secret: a RemoteTarget for the remote layer. */
export async function remoteTarget(a: VpsArgs): Promise<RemoteTarget> {
  const project = parseInput(deployOptionsSchema.pick({ project: true }), { project: a.project }, "deploy").project;
  const vps = parseInput(vpsTargetSchema, { host: a.host, port: a.port, user: a.user, hostKey: a.hostKey, dir: a.dir || `~/production/${project}` }, "vps");
  const privateKey = await a.sshKey.plaintext();
  const passphrase = a.sshKeyPassphrase ? await a.sshKeyPassphrase.plaintext() : undefined;
  return {
    ssh: { host: vps.host, port: vps.port, user: vps.user, hostKey: vps.hostKey, privateKey, ...(passphrase !== undefined ? { passphrase } : {}) },
    dir: vps.dir,
    project,
    lockTimeoutSeconds: a.lockTimeout ?? 300,
  };
}

export function registryConfig(host: string, user: string, imagePrefix?: string) {
  return parseInput(registrySchema, { host, user, ...(imagePrefix !== undefined ? { imagePrefix } : {}) }, "registry");
}

export async function loadStack(source: Directory, composeFile: string, imagePrefix?: string): Promise<ComposeStack> {
  let text: string;
  try {
    text = await source.file(composeFile).contents();
  } catch (e) {
    throw new PipelineError("COMPOSE_NOT_FOUND", `cannot read ${composeFile} in the source directory`, "pass --compose-file with the production compose file's path inside --source", { cause: e });
  }
  return parseComposeStack(text, composeFile, imagePrefix);
}

/** `NAME=value` pairs into a map; an entry without `=` is an input error naming it. */
export function keyValues(pairs: readonly string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf("=");
    if (eq <= 0) throw new PipelineError("INVALID_INPUT", `${what}: \`${p}\` is not NAME=value`, `write each ${what} as NAME=value`);
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

/** Who deploys, for the lock and the history: the CI actor and run when there is one. */
export function deployer(by?: string): string {
  if (by) return by;
  const actor = process.env.GITHUB_ACTOR;
  return actor ? `${actor} (GitHub run ${process.env.GITHUB_RUN_ID ?? "?"})` : `${os.userInfo().username}@${os.hostname()}`;
}
