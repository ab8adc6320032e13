/**
 * vps-pipeline: take a Docker Compose app from its Git repository to a running,
 * verified deployment on one VPS — build, publish to GHCR, deploy over SSH with
 * automatic rollback, verify. Same call from a laptop and from GitHub Actions.
 *
 * This file only wires arguments to the core (pure), the engine layer (Dagger
 * builds) and the remote layer (SSH); its JSDoc is the `dagger call --help`.
 */
import { Container, Directory, Secret, argument, func, object } from "@dagger.io/dagger";
import { gitInfoSchema, parseInput, deployOptionsSchema } from "./core/config.js";
import { renderRelease } from "./core/compose.js";
import { failed, formatFindings } from "./core/findings.js";
import { PipelineError, isPipelineError } from "./core/errors.js";
import { ociLabels, tagsFor } from "./core/images.js";
import { formatReport, parseProbe } from "./core/report.js";
import { buildImages, publishImages, type PublishedImage } from "./engine/images.js";
import { deployer, keyValues, loadStack, registryConfig, remoteTarget } from "./engine/inputs.js";
import { doctor as runDoctor } from "./registry/doctor.js";
import { resolveReleaseDigests } from "./registry/resolve.js";
import { deploy as remoteDeploy, rollback as remoteRollback } from "./remote/deploy.js";
import { status as remoteStatus, verify as remoteVerify } from "./remote/verify.js";

/** What Dagger never uploads from the source directory. */
const SOURCE_IGNORE = ["**/node_modules", ".dagger/sdk", ".git"];

/** Errors reach the Dagger TUI and CI logs with their code and hint. */
async function explained<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (isPipelineError(e)) throw new Error(e.describe(), { cause: e });
    throw e;
  }
}

/**
 * Build, publish, deploy and verify a Docker Compose app on one VPS.
 */
@object()
export class VpsPipeline {
  /**
   * Build every service of the production compose file that has a `build:` section, with OCI labels.
   *
   * Example: dagger call build --git-sha=$(git rev-parse HEAD) --image-prefix=ghcr.io/acme/gold-tracker
   *
   * @param source Repository checkout holding the compose file and the build contexts (default: the module's context directory).
   * @param composeFile Path of the production compose file inside source.
   * @param imagePrefix Image name prefix `<registry>/<owner>/<repo>` for built services that have no `image:`; lowercased.
   * @param gitSha Commit being built: the `org.opencontainers.image.revision` label.
   * @param sourceUrl Repository URL for the `org.opencontainers.image.source` label (links a GHCR package to its repository).
   * @param version Value of the `org.opencontainers.image.version` label (default: the short sha).
   * @param created Build time for the `org.opencontainers.image.created` label, RFC 3339; pass the commit time to keep builds cacheable (default: now).
   * @param buildArgs Extra build arguments as NAME=value, overriding the compose file's (e.g. BASE_IMAGE=…).
   */
  @func()
  async build(
    @argument({ defaultPath: "/", ignore: SOURCE_IGNORE }) source: Directory,
    gitSha: string,
    composeFile = "compose/docker-compose.prod.yml",
    imagePrefix?: string,
    sourceUrl = "",
    version?: string,
    created?: string,
    buildArgs: string[] = [],
  ): Promise<Container[]> {
    return explained(async () => (await this.built(source, composeFile, imagePrefix, gitSha, sourceUrl, version, created, buildArgs)).map((b) => b.container));
  }

  /**
   * Build and push every built service to the registry, tagged `sha-<7>` (plus `latest` on the default branch and `vX.Y.Z`, `X.Y` on a release tag). Prints one `repo@sha256:…` per service: what deploy takes.
   *
   * Example: dagger call publish --git-sha=$GITHUB_SHA --git-ref=$GITHUB_REF --registry-user=$GITHUB_ACTOR --registry-token=env:GHCR_TOKEN --image-prefix=ghcr.io/acme/gold-tracker
   *
   * @param source Repository checkout holding the compose file and the build contexts.
   * @param gitSha Commit being published (40 or at least 7 hex characters).
   * @param registryToken Token that may push: for GHCR a classic PAT with `write:packages` or the workflow's GITHUB_TOKEN with `packages: write`.
   * @param registryUser Registry account (for GHCR the GitHub user name).
   * @param gitRef Full ref being built (`refs/heads/main`, `refs/tags/v1.2.3`): decides `latest` and semver tags.
   * @param defaultBranch Branch whose builds are tagged `latest`.
   * @param registry Registry host.
   * @param composeFile Path of the production compose file inside source.
   * @param imagePrefix Image name prefix `<registry>/<owner>/<repo>` for built services without `image:`.
   * @param sourceUrl Repository URL for the `org.opencontainers.image.source` label.
   * @param buildArgs Extra build arguments as NAME=value.
   */
  @func({ cache: "never" }) // pushes to a registry: a cached answer would skip the push
  async publish(
    @argument({ defaultPath: "/", ignore: SOURCE_IGNORE }) source: Directory,
    gitSha: string,
    registryToken: Secret,
    registryUser: string,
    gitRef?: string,
    defaultBranch = "main",
    registry = "ghcr.io",
    composeFile = "compose/docker-compose.prod.yml",
    imagePrefix?: string,
    sourceUrl = "",
    buildArgs: string[] = [],
  ): Promise<string[]> {
    return explained(async () => {
      const published = await this.published(source, { gitSha, gitRef, defaultBranch, registry, registryUser, registryToken, composeFile, imagePrefix, sourceUrl, buildArgs });
      return published.map((p) => p.pinned);
    });
  }

  /**
   * Deploy a published release to the VPS over SSH: lock, preflight, pull, switch, health wait, automatic rollback on failure, history, pruning.
   *
   * Example: dagger call deploy --tag=sha-1a2b3c4 --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --registry-user=puller --registry-token=env:GHCR_PULL_TOKEN --env-file=file:.env.production --git-sha=$GITHUB_SHA --project=gold-tracker
   *
   * @param source Repository checkout holding the production compose file.
   * @param gitSha Commit being deployed, recorded in the release id and the history.
   * @param project Compose project name on the VPS (lowercase); also names the default deploy directory `~/production/<project>`.
   * @param host VPS address.
   * @param hostKey The VPS's pinned host key: a known_hosts line or a `SHA256:` fingerprint. Unknown or changed keys stop the deploy before login.
   * @param sshKey Private key of the deploy user (OpenSSH or PEM; ed25519, rsa or ecdsa).
   * @param sshKeyPassphrase Passphrase of the private key, when it has one.
   * @param user Deploy user on the VPS (in the docker group).
   * @param port SSH port.
   * @param dir Deploy directory on the VPS (default `~/production/<project>`).
   * @param images `repo@sha256:…` per built service as publish prints them, or `repo:tag` (prefix either with `service=` to name the service).
   * @param tag Deploy every built service not named in images at this tag (e.g. sha-1a2b3c4); tags are resolved to digests before anything changes.
   * @param registry Registry the VPS pulls from.
   * @param registryUser Account the VPS pulls as (also used here to resolve tags).
   * @param registryToken Token the VPS pulls with; used for this deploy only, in a throwaway docker config that is deleted afterwards. Omit for public images.
   * @param envFile Production `.env` for the stack (written with mode 0600). When omitted, the `.env` already on the server is kept.
   * @param composeFile Path of the production compose file inside source.
   * @param imagePrefix Image name prefix for built services without `image:`.
   * @param keepReleases Releases kept on the server for rollback.
   * @param healthTimeout Seconds to wait for every service to be running and healthy.
   * @param lockTimeout Seconds to wait for another deploy to finish.
   * @param by Who deploys, for the lock and the history (e.g. `$GITHUB_ACTOR run $GITHUB_RUN_ID`).
   */
  @func({ cache: "never" }) // changes a server
  async deploy(
    @argument({ defaultPath: "/", ignore: SOURCE_IGNORE }) source: Directory,
    gitSha: string,
    project: string,
    host: string,
    hostKey: string,
    sshKey: Secret,
    sshKeyPassphrase?: Secret,
    user = "deploy",
    port = 22,
    dir?: string,
    images: string[] = [],
    tag?: string,
    registry = "ghcr.io",
    registryUser = "",
    registryToken?: Secret,
    envFile?: Secret,
    composeFile = "compose/docker-compose.prod.yml",
    imagePrefix?: string,
    keepReleases = 5,
    healthTimeout = 120,
    lockTimeout = 300,
    by = "",
  ): Promise<string> {
    return explained(async () => {
      const lines: string[] = [];
      const log = (l: string) => {
        lines.push(l);
        console.log(l);
      };
      // Every input is checked before anything goes over the network.
      const git = parseInput(gitInfoSchema, { sha: gitSha }, "git");
      const opts = parseInput(deployOptionsSchema, { project, keepReleases, healthTimeoutSeconds: healthTimeout, lockTimeoutSeconds: lockTimeout }, "deploy");
      const reg = registryToken ? registryConfig(registry, registryUser) : undefined;
      const target = await remoteTarget({ host, port, user, hostKey, sshKey, sshKeyPassphrase, dir, project, lockTimeout });
      const stack = await loadStack(source, composeFile, imagePrefix);
      const pullToken = registryToken ? await registryToken.plaintext() : undefined;
      const digests = await resolveReleaseDigests(stack, images, tag, pullToken !== undefined ? { user: registryUser, token: pullToken } : undefined);
      const compose = renderRelease(stack, digests);
      const r = await remoteDeploy({
        ...target, sha: git.sha, compose, keepReleases: opts.keepReleases, healthTimeoutSeconds: opts.healthTimeoutSeconds, by: deployer(by), log,
        ...(envFile ? { env: await envFile.plaintext() } : {}),
        ...(reg && pullToken !== undefined ? { registry: { host: reg.host, user: reg.user, token: pullToken } } : {}),
      });
      return `${lines.join("\n")}\nrelease ${r.release} is live${r.previous ? ` (previous: ${r.previous})` : ""}`;
    });
  }

  /**
   * Check the running stack: every service running, healthy where it has a healthcheck, running the release's digests; optional HTTP probes made from the VPS. Fails when anything is off.
   *
   * Example: dagger call verify --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker --probes=http://127.0.0.1:8080/health=200
   *
   * @param project Compose project name on the VPS.
   * @param host VPS address.
   * @param hostKey The VPS's pinned host key (known_hosts line or `SHA256:` fingerprint).
   * @param sshKey Private key of the deploy user.
   * @param sshKeyPassphrase Passphrase of the private key, when it has one.
   * @param user Deploy user on the VPS.
   * @param port SSH port.
   * @param dir Deploy directory on the VPS (default `~/production/<project>`).
   * @param probes HTTP checks run from the VPS as URL[=STATUS][*RETRIES], e.g. http://127.0.0.1:8080/health=200*5.
   * @param json Print the report as JSON instead of text.
   */
  @func({ cache: "never" }) // reads live state
  async verify(
    project: string,
    host: string,
    hostKey: string,
    sshKey: Secret,
    sshKeyPassphrase?: Secret,
    user = "deploy",
    port = 22,
    dir?: string,
    probes: string[] = [],
    json = false,
  ): Promise<string> {
    return explained(async () => {
      const specs = probes.map((p) => {
        try {
          return parseProbe(p);
        } catch (e) {
          throw new PipelineError("INVALID_INPUT", `probes: ${(e as Error).message}`, "write each probe as URL[=STATUS][*RETRIES]");
        }
      });
      const target = await remoteTarget({ host, port, user, hostKey, sshKey, sshKeyPassphrase, dir, project });
      const report = await remoteVerify(target, specs);
      const text = json ? JSON.stringify(report, null, 2) : formatReport(report);
      if (!report.ok) throw new PipelineError("VERIFY_FAILED", `${text}\n${report.problems.join("\n")}`, "see the failed checks above; `status` shows the history, `rollback` returns to the previous release");
      return text;
    });
  }

  /**
   * Build, publish, deploy and verify in one call: what CI runs.
   *
   * Example: dagger call ship --git-sha=$GITHUB_SHA --git-ref=$GITHUB_REF --registry-user=$GITHUB_ACTOR --registry-token=env:GITHUB_TOKEN --image-prefix=ghcr.io/acme/gold-tracker --project=gold-tracker --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --env-file=env:PRODUCTION_ENV
   *
   * @param source Repository checkout.
   * @param gitSha Commit being shipped.
   * @param registryToken Token that pushes the images (GITHUB_TOKEN with `packages: write`, or a classic PAT with `write:packages`).
   * @param registryUser Account that pushes.
   * @param project Compose project name on the VPS.
   * @param host VPS address.
   * @param hostKey The VPS's pinned host key (known_hosts line or `SHA256:` fingerprint).
   * @param sshKey Private key of the deploy user.
   * @param sshKeyPassphrase Passphrase of the private key, when it has one.
   * @param pullUser Account the VPS pulls as (default: registryUser).
   * @param pullToken Token the VPS pulls with (default: registryToken, which is fine because it is only used during this deploy).
   * @param envFile Production `.env`; when omitted the server's own `.env` is kept.
   * @param gitRef Full ref being built: decides `latest` and semver tags.
   * @param defaultBranch Branch whose builds are tagged `latest`.
   * @param registry Registry host.
   * @param composeFile Path of the production compose file inside source.
   * @param imagePrefix Image name prefix for built services without `image:`.
   * @param sourceUrl Repository URL for the `org.opencontainers.image.source` label.
   * @param buildArgs Extra build arguments as NAME=value.
   * @param user Deploy user on the VPS.
   * @param port SSH port.
   * @param dir Deploy directory on the VPS (default `~/production/<project>`).
   * @param probes HTTP checks for verify, URL[=STATUS][*RETRIES].
   * @param keepReleases Releases kept on the server for rollback.
   * @param healthTimeout Seconds to wait for every service to be healthy.
   * @param lockTimeout Seconds to wait for another deploy to finish.
   * @param by Who deploys, for the lock and the history.
   */
  @func({ cache: "never" }) // changes a server
  async ship(
    @argument({ defaultPath: "/", ignore: SOURCE_IGNORE }) source: Directory,
    gitSha: string,
    registryToken: Secret,
    registryUser: string,
    project: string,
    host: string,
    hostKey: string,
    sshKey: Secret,
    sshKeyPassphrase?: Secret,
    pullUser?: string,
    pullToken?: Secret,
    envFile?: Secret,
    gitRef?: string,
    defaultBranch = "main",
    registry = "ghcr.io",
    composeFile = "compose/docker-compose.prod.yml",
    imagePrefix?: string,
    sourceUrl = "",
    buildArgs: string[] = [],
    user = "deploy",
    port = 22,
    dir?: string,
    probes: string[] = [],
    keepReleases = 5,
    healthTimeout = 120,
    lockTimeout = 300,
    by = "",
  ): Promise<string> {
    const published = await explained(() => this.published(source, { gitSha, gitRef, defaultBranch, registry, registryUser, registryToken, composeFile, imagePrefix, sourceUrl, buildArgs }));
    const deployed = await this.deploy(
      source, gitSha, project, host, hostKey, sshKey, sshKeyPassphrase, user, port, dir, published.map((p) => p.pinned), undefined, registry,
      pullUser ?? registryUser, pullToken ?? registryToken, envFile, composeFile, imagePrefix, keepReleases, healthTimeout, lockTimeout, by,
    );
    const verified = await this.verify(project, host, hostKey, sshKey, sshKeyPassphrase, user, port, dir, probes, false);
    return `published:\n${published.map((p) => `  ${p.service}: ${p.repository}:${p.tags.join(",")} ${p.digest}`).join("\n")}\n${deployed}\n${verified}`;
  }

  /**
   * Return to an earlier release kept on the VPS (default: the last good one before the current).
   *
   * Example: dagger call rollback --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker
   *
   * @param project Compose project name on the VPS.
   * @param host VPS address.
   * @param hostKey The VPS's pinned host key (known_hosts line or `SHA256:` fingerprint).
   * @param sshKey Private key of the deploy user.
   * @param sshKeyPassphrase Passphrase of the private key, when it has one.
   * @param to Release id to return to (see `status`); default: the last good release before the current one.
   * @param user Deploy user on the VPS.
   * @param port SSH port.
   * @param dir Deploy directory on the VPS (default `~/production/<project>`).
   * @param healthTimeout Seconds to wait for the release to be healthy.
   * @param lockTimeout Seconds to wait for another deploy to finish.
   * @param by Who rolls back, for the history.
   */
  @func({ cache: "never" }) // changes a server
  async rollback(
    project: string,
    host: string,
    hostKey: string,
    sshKey: Secret,
    sshKeyPassphrase?: Secret,
    to?: string,
    user = "deploy",
    port = 22,
    dir?: string,
    healthTimeout = 120,
    lockTimeout = 300,
    by = "",
  ): Promise<string> {
    return explained(async () => {
      const lines: string[] = [];
      const target = await remoteTarget({ host, port, user, hostKey, sshKey, sshKeyPassphrase, dir, project, lockTimeout });
      const r = await remoteRollback({ ...target, healthTimeoutSeconds: healthTimeout, by: deployer(by), log: (l) => lines.push(l), ...(to ? { to } : {}) });
      return `${lines.join("\n")}\nrelease ${r.release} is live again`;
    });
  }

  /**
   * Show the current release, its containers and the tail of the release history.
   *
   * Example: dagger call status --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker
   *
   * @param project Compose project name on the VPS.
   * @param host VPS address.
   * @param hostKey The VPS's pinned host key (known_hosts line or `SHA256:` fingerprint).
   * @param sshKey Private key of the deploy user.
   * @param sshKeyPassphrase Passphrase of the private key, when it has one.
   * @param user Deploy user on the VPS.
   * @param port SSH port.
   * @param dir Deploy directory on the VPS (default `~/production/<project>`).
   * @param history History lines to show.
   * @param json Print JSON instead of text.
   */
  @func({ cache: "never" }) // reads live state
  async status(
    project: string,
    host: string,
    hostKey: string,
    sshKey: Secret,
    sshKeyPassphrase?: Secret,
    user = "deploy",
    port = 22,
    dir?: string,
    history = 10,
    json = false,
  ): Promise<string> {
    return explained(async () => {
      const target = await remoteTarget({ host, port, user, hostKey, sshKey, sshKeyPassphrase, dir, project });
      const s = await remoteStatus(target, history);
      if (json) return JSON.stringify(s, null, 2);
      return [
        `current release: ${s.release ?? "(none)"}`,
        ...s.services.map((c) => `  ${c.service.padEnd(12)} ${c.state}${c.health ? `/${c.health}` : ""}  ${c.image}`),
        "history:",
        ...s.history.map((h) => `  ${h.at}  ${h.action.padEnd(8)} ${h.result.padEnd(11)} ${h.release}  by ${h.by}${h.reason ? `  — ${h.reason}` : ""}`),
      ].join("\n");
    });
  }

  /**
   * Diagnose registry and VPS access before anything changes: the push token can push every image, the pull token can pull them from here and from the VPS (throwaway login), the tokens are of a kind GHCR accepts with the right scopes, image names are lowercase, and the VPS holds no stale registry login. Fails when a check fails.
   *
   * Example: dagger call doctor --registry-user=octocat --registry-token=env:GHCR_TOKEN --pull-user=octocat --pull-token=env:GHCR_PULL_TOKEN --image-prefix=ghcr.io/acme/gold-tracker --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY
   *
   * @param source Repository checkout holding the production compose file.
   * @param registryUser Account that pushes.
   * @param registryToken Token that pushes (checked for push,pull on every image).
   * @param pullUser Account the VPS pulls as (default: registryUser).
   * @param pullToken Token the VPS pulls with (default: registryToken).
   * @param tag Tag whose manifest the pull checks read.
   * @param registry Registry host.
   * @param composeFile Path of the production compose file inside source.
   * @param imagePrefix Image name prefix for built services without `image:`.
   * @param host VPS address; without it the VPS checks are skipped.
   * @param hostKey The VPS's pinned host key (known_hosts line or `SHA256:` fingerprint).
   * @param sshKey Private key of the deploy user.
   * @param sshKeyPassphrase Passphrase of the private key, when it has one.
   * @param user Deploy user on the VPS.
   * @param port SSH port.
   */
  @func({ cache: "never" }) // reads live state
  async doctor(
    @argument({ defaultPath: "/", ignore: SOURCE_IGNORE }) source: Directory,
    registryUser = "",
    registryToken?: Secret,
    pullUser?: string,
    pullToken?: Secret,
    tag = "latest",
    registry = "ghcr.io",
    composeFile = "compose/docker-compose.prod.yml",
    imagePrefix?: string,
    host?: string,
    hostKey?: string,
    sshKey?: Secret,
    sshKeyPassphrase?: Secret,
    user = "deploy",
    port = 22,
  ): Promise<string> {
    return explained(async () => {
      const stack = await loadStack(source, composeFile, imagePrefix);
      const push = registryToken ? { user: registryUser, token: await registryToken.plaintext() } : undefined;
      const pull = pullToken ? { user: pullUser ?? registryUser, token: await pullToken.plaintext() } : undefined;
      let vps;
      if (host) {
        if (!hostKey || !sshKey) throw new PipelineError("INVALID_INPUT", "doctor: --host needs --host-key and --ssh-key", "pass the pinned host key and the deploy key, or leave out --host to skip the VPS checks");
        vps = (await remoteTarget({ host, port, user, hostKey, sshKey, sshKeyPassphrase, project: "doctor" })).ssh;
      }
      const written = stack.builds.map((b) => b.writtenName);
      const findings = await runDoctor({ registry, repositories: stack.builds.map((b) => b.repository), writtenNames: written, tag, ...(push ? { push } : {}), ...(pull ? { pull } : {}), ...(vps ? { vps } : {}) });
      const text = formatFindings(findings);
      if (failed(findings)) throw new PipelineError("DOCTOR_FAILED", text, "apply the fixes listed above, then run doctor again");
      return text;
    });
  }

  private async built(source: Directory, composeFile: string, imagePrefix: string | undefined, gitSha: string, sourceUrl: string, version?: string, created?: string, buildArgs: string[] = []) {
    const git = parseInput(gitInfoSchema, { sha: gitSha }, "git");
    const stack = await loadStack(source, composeFile, imagePrefix);
    const when = created ? new Date(created) : new Date();
    if (Number.isNaN(when.getTime())) throw new PipelineError("INVALID_INPUT", `created: \`${created}\` is not a date`, "pass an RFC 3339 time such as 2026-11-25T12:00:00Z");
    const labels = ociLabels({ source: sourceUrl, revision: git.sha, created: when, ...(version ? { version } : {}) });
    return buildImages(source, stack, labels, keyValues(buildArgs, "buildArgs"));
  }

  private async published(
    source: Directory,
    a: { gitSha: string; gitRef?: string | undefined; defaultBranch: string; registry: string; registryUser: string; registryToken: Secret; composeFile: string; imagePrefix?: string | undefined; sourceUrl: string; buildArgs: string[] },
  ): Promise<PublishedImage[]> {
    const git = parseInput(gitInfoSchema, { sha: a.gitSha, ...(a.gitRef ? { ref: a.gitRef } : {}), defaultBranch: a.defaultBranch }, "git");
    const reg = registryConfig(a.registry, a.registryUser, a.imagePrefix);
    const { tags } = tagsFor(git);
    const version = tags.find((t) => /^v\d/.test(t));
    const built = await this.built(source, a.composeFile, reg.imagePrefix, git.sha, a.sourceUrl, version, undefined, a.buildArgs);
    return publishImages(built, tags, { host: reg.host, user: reg.user, token: a.registryToken });
  }
}
