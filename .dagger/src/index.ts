/**
 * vps-pipeline: take a Docker Compose app from its Git repository to a running,
 * verified deployment on one VPS — build, publish to GHCR, deploy over SSH with
 * automatic rollback, verify. Same call from a laptop and from GitHub Actions.
 *
 * Settings shared by many functions are given once: the source, the compose file
 * and the registry to the module itself, the server to `vps(...)`, whose object
 * carries deploy, plan, verify, rollback, status, doctor and ship. This file only
 * wires and documents (its JSDoc is `dagger -m . call --help`); the logic lives in
 * core/ (pure), build/ (Dagger builds), inputs/ (arguments, secrets), remote/ (SSH)
 * and registry/ (the registry API). See docs/architecture.md.
 */
import {
  type Container,
  type Directory,
  type File,
  type Secret,
  argument,
  check,
  dag,
  func,
  object,
} from "@dagger.io/dagger";
import { DEFAULTS } from "./core/defaults.js";
import { PipelineError } from "./core/errors.js";
import { explained } from "./module.js";
import type { Orchestrator, PreviewWhenFull } from "./enums.js";
import { Vps } from "./vps.js";

// The rest is imported by the function that needs it: the runtime loads this file before every call (see vps.ts).
const inputs = () => import("./inputs/inputs.js");
const stacks = () => import("./build/stack.js");

/** What Dagger never uploads from the source directory (its .git comes along: what is built is a commit of it). */
const SOURCE_IGNORE = ["**/node_modules", ".dagger/sdk"];

/**
 * Build, publish, deploy and verify a Docker Compose app on one VPS.
 */
@object()
export class VpsPipeline {
  // The arguments as given (null: left out), settled per call against vps-pipeline.yml (inputs/settings.ts). Not
  // exposed: `--help` lists what a user passes, not the object's insides.
  source: Directory;
  composeFile?: string | null;
  imagePrefix?: string | null;
  registry?: string | null;
  registryUser?: string | null;
  registryToken?: Secret | null;
  platforms?: string[] | null;
  settings?: File | null;
  allowModuleRepository: boolean;

  /**
   * @param source Your repository's checkout: pass --source=. (loaded by version from GitHub, the module's default is its own repository, refused).
   * @param composeFile Path of the production compose file inside the source (default: vps-pipeline.yml's compose-file, else the first of docker-compose.prod.yml, docker-compose.prod.yaml, compose.prod.yaml, compose.prod.yml, docker-compose.production.yml, …, compose.yaml, docker-compose.yml, compose/docker-compose.prod.yml).
   * @param imagePrefix Image name prefix such as ghcr.io/acme/gold-tracker, for built services without an image name; lowercased.
   * @param registry Registry host the tokens are for (ghcr.io, or a host:port of your own); default: the host of the built images (the image prefix's), ghcr.io when nothing names one. Only this registry ever gets a token.
   * @param registryUser Registry account that pushes (for GHCR the GitHub user, or x-access-token with GITHUB_TOKEN).
   * @param registryToken Token that pushes: GITHUB_TOKEN with packages write, or a classic PAT with write:packages. publish, ship and doctor use it; on one VPS, deploy, plan and rollback fall back to it when no pull token is given.
   * @param platforms Platforms every service is built for, e.g. linux/amd64,linux/arm64 (an ARM VPS): several make one index per service, whose digest is the one printed and pinned. Default: the engine's own (linux/amd64 on CI runners).
   * @param settings The settings file (default: vps-pipeline.yml at the source's root, when there is one): every setting of the module and of vps that is not a secret, named as its flag; a flag given wins over it. A preview, whose source is a pull request, takes it from here only: pass the base branch's.
   * @param allowModuleRepository Accept vps-pipeline's own repository as the source (its demo does; your app never needs it).
   */
  constructor(
    @argument({ defaultPath: "/", ignore: SOURCE_IGNORE }) source: Directory,
    composeFile?: string,
    imagePrefix?: string,
    registry?: string,
    registryUser?: string,
    registryToken?: Secret,
    platforms?: string[],
    settings?: File,
    allowModuleRepository = false,
  ) {
    this.source = source;
    this.composeFile = composeFile;
    this.imagePrefix = imagePrefix;
    this.registry = registry;
    this.registryUser = registryUser;
    this.registryToken = registryToken;
    this.platforms = platforms;
    this.settings = settings;
    this.allowModuleRepository = allowModuleRepository;
  }

  /**
   * The module's settings for this call (flags over vps-pipeline.yml over defaults); with a commit, its source is that
   * commit of the source's repository (inputs/commit.ts).
   */
  private async stack(sha?: string) {
    const { settledStack } = await import("./inputs/settings.js");
    const { stack } = await settledStack(this);
    if (sha === undefined) return stack;
    const { committedSource } = await import("./inputs/commit.js");
    const c = await committedSource(stack.source, sha);
    for (const n of c.notes) console.log(`note  ${n}`);
    return { ...stack, source: c.source };
  }

  /**
   * Build every service of the production compose file that has a build section, with OCI labels.
   *
   * Example: dagger -m . call --image-prefix=ghcr.io/acme/gold-tracker build --git-sha=$(git rev-parse HEAD) --commit-time=$(git log -1 --format=%cI)
   *
   * @param gitSha Commit being built: the revision label.
   * @param commitTime The commit's time, RFC 3339 (git log -1 --format=%cI): the created label, so the same commit builds the same image; without it the label is left out.
   * @param sourceUrl Repository URL for the source label (links a GHCR package to its repository).
   * @param version Value of the version label (default: the short sha).
   * @param buildArgs Extra build arguments as NAME=value, overriding the compose file's.
   */
  @func()
  async build(
    gitSha: string,
    commitTime = "",
    sourceUrl = "",
    version = "",
    buildArgs: string[] = [],
  ): Promise<Container[]> {
    return explained(async () => {
      const [{ gitInfo }, { buildStack, builtContainers }] = await Promise.all([inputs(), stacks()]);
      const git = gitInfo(gitSha, { commitTime });
      return builtContainers(
        (
          await buildStack(await this.stack(git.sha), {
            git,
            sourceUrl,
            version: version || undefined,
            buildArgs,
          })
        ).built,
      );
    });
  }

  /**
   * Build and push every built service, tagged sha-<7> (plus latest on the default branch, vX.Y.Z and X.Y on a release tag). A commit is published once: when its sha tag exists, that image is reused and the tag never moves. Prints one repo@sha256:… per service: what deploy takes.
   *
   * Example: dagger -m . call --registry-user=$GITHUB_ACTOR --registry-token=env:GHCR_TOKEN --image-prefix=ghcr.io/acme/gold-tracker publish --git-sha=$GITHUB_SHA --git-ref=$GITHUB_REF --commit-time=$COMMIT_TIME
   *
   * @param gitSha Commit being published (40, or at least 7, hex characters).
   * @param gitRef Full ref being built (refs/heads/main, refs/tags/v1.2.3): decides the latest and semver tags.
   * @param defaultBranch Branch whose builds are tagged latest.
   * @param commitTime The commit's time, RFC 3339: the created label (keeps digests reproducible).
   * @param sourceUrl Repository URL for the source label.
   * @param buildArgs Extra build arguments as NAME=value.
   */
  @func({ cache: "never" }) // pushes to a registry: a cached answer would skip the push
  async publish(
    gitSha: string,
    gitRef = "",
    defaultBranch: string = DEFAULTS.defaultBranch,
    commitTime = "",
    sourceUrl = "",
    buildArgs: string[] = [],
  ): Promise<string[]> {
    return explained(async () => {
      const [{ gitInfo }, { publishStack }] = await Promise.all([inputs(), stacks()]);
      const git = gitInfo(gitSha, { ref: gitRef, defaultBranch, commitTime });
      return (
        await publishStack(await this.stack(git.sha), {
          git,
          sourceUrl,
          buildArgs,
        })
      ).map((p) => p.pinned);
    });
  }

  /**
   * Diagnose registry access before anything changes: the push token can push every image, the pull token can pull them, the tokens are of a kind GHCR accepts with the right scopes, image names are lowercase. For the VPS side too, call doctor on vps(...). Fails when a check fails.
   *
   * Example: dagger -m . call --registry-user=octocat --registry-token=env:GHCR_TOKEN --image-prefix=ghcr.io/acme/gold-tracker doctor --pull-user=octocat --pull-token=env:GHCR_PULL_TOKEN
   *
   * @param tag Tag whose manifest the pull checks read.
   * @param pullUser Account the VPS pulls as (default: the registry user).
   * @param pullToken Token the VPS pulls with (default: the push token).
   */
  @func({ cache: "never" }) // reads live state
  async doctor(tag = "latest", pullUser = "", pullToken?: Secret): Promise<string> {
    return explained(async () => {
      const [{ registryLogin, stackRegistry }, { stackOf }, { doctor: runDoctor }, { failed, formatFindings }] =
        await Promise.all([inputs(), stacks(), import("./registry/doctor.js"), import("./core/findings.js")]);
      const s = await this.stack();
      const stack = await stackOf(s);
      const registry = stackRegistry(stack, s.registry);
      const push = await registryLogin(registry, s.registryUser, s.registryToken, "registryUser");
      const pull = await registryLogin(registry, pullUser || s.registryUser, pullToken, "pullUser");
      const findings = await runDoctor({
        registry,
        repositories: stack.builds.map((b) => b.repository),
        writtenNames: stack.builds.map((b) => b.writtenName),
        tag,
        ...(push ? { push } : {}),
        ...(pull ? { pull } : {}),
      });
      const text = formatFindings(findings);
      if (failed(findings))
        throw new PipelineError("DOCTOR_FAILED", text, "apply the fixes listed above, then run doctor again");
      return text;
    });
  }

  /**
   * The VPS to deploy to: every function on it (deploy, plan, verify, rollback, status, doctor, ship, backup, restore, check-backup, edge, maintenance, preview, preview-down, logs, run) uses these settings.
   *
   * Settings other than secrets can live in vps-pipeline.yml (under `vps:`, named as their flags); a flag given wins.
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker status
   *
   * @param host VPS address. Required: here or in vps-pipeline.yml.
   * @param hostKey The VPS's pinned host key: a known_hosts line, or its SHA256 fingerprint. Unknown or changed keys stop everything before login. Required: here or in vps-pipeline.yml.
   * @param sshKey Private key of the deploy user (OpenSSH or PEM; ed25519, rsa or ecdsa).
   * @param project Compose project name on the VPS (lowercase); also names the default deploy directory ~/production/PROJECT. Required: here or in vps-pipeline.yml.
   * @param sshKeyPassphrase Passphrase of the private key, when it has one.
   * @param user Deploy user on the VPS: in the docker group, with a POSIX login shell (sh, bash, dash). Default: deploy.
   * @param port SSH port. Default: 22.
   * @param dir Deploy directory on the VPS, absolute or ~/relative (default ~/production/PROJECT).
   * @param pullUser Account the VPS pulls as (default: the registry user).
   * @param pullToken Token the VPS pulls with, only while a deploy or rollback runs, in a throwaway docker config (default on one VPS: the push token; required on a swarm, which stores it). Omit for public images.
   * @param envFile Production .env for the stack (written with mode 0600); when omitted the one on the server is kept.
   * @param keepReleases Releases kept on the server for rollback. Default: 5.
   * @param healthTimeout Seconds to wait for every service to be running and healthy. Default: 120.
   * @param lockTimeout Seconds to wait for another deploy to finish. Default: 300.
   * @param by Who deploys, for the lock and the history, e.g. "$GITHUB_ACTOR run $GITHUB_RUN_ID" (default: the SSH key's fingerprint).
   * @param edgeImage Image of the edge proxy in front of services with x-vps-pipeline http (pin it by digest: caddy:2@sha256:…). Default: caddy:2.
   * @param edgeTls Certificates for this project's hostname routes (each hostname keeps its own): acme (Let's Encrypt/ZeroSSL, the domain must point at the VPS), internal (Caddy's own CA), or the https directory URL of another ACME CA. Default: acme.
   * @param orchestrator compose (one VPS, the default) or swarm: the host is a Docker Swarm manager and the release is deployed with docker stack deploy. Default: compose.
   * @param backupPassword Password of the restic repository holding the data snapshots (needed when a release declares x-vps-pipeline data; made with it on the first snapshot; it cannot be recovered).
   * @param resticImage Image of restic, run on the VPS for snapshots (pin it by digest). Default: restic/restic:0.17.3.
   * @param keepSnapshots Snapshots kept per data service. Default: 10.
   * @param keepSnapshotDays Also forget snapshots older than this many days, never a service's newest nor one a kept release needs (0: by count only). Default: 0.
   * @param keepOffsiteSnapshots Snapshots kept per data service in the off-site repository (the same rules, applied after each copy). Default: 30.
   * @param keepOffsiteSnapshotDays Also forget off-site snapshots older than this many days (0: by count only). Default: 0.
   * @param backupOffsite A second restic repository off the VPS, every snapshot copied there: over SFTP (sftp:user@host:/path) or in S3-compatible storage (s3:https://host/bucket/path).
   * @param backupOffsiteKey The off-site repository's key: SSH private key of its own (sftp), or AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=… lines (s3).
   * @param backupOffsiteHostKey How the off-site host is checked: its public key pinned (sftp: a known_hosts line, or ssh-ed25519 AAAA…), or the CA certificate (PEM) of its TLS certificate (s3; empty: the system's CAs).
   * @param previewDomain Pull request previews are served at https://pr-N.<this domain> (a wildcard DNS record *.<domain> points at the VPS).
   * @param previewEnv The .env of every preview (never production's): ${VPS_PREVIEW_PR}, ${VPS_PREVIEW_URL} and ${VPS_PREVIEW_HOST} in it are replaced by the preview's.
   * @param previewLimit Live previews of this project at most. Default: 5.
   * @param previewWhenFull With previewLimit previews live, a new one removes the one pushed longest ago (evict) or is refused (refuse). Default: evict.
   * @param previewTtl Hours after its last push when a preview goes (removed by the next preview, or preview-down --expired); 0: never. Default: 168.
   * @param previewMemory Memory cap of each preview service that sets none (compose deploy.resources.limits), e.g. 512m. Default: 512m.
   * @param previewCpus CPU cap of each preview service that sets none, e.g. 1 or 0.5. Default: 1.
   * @param notifyUrl A webhook (Slack or Mattermost incoming webhook, or any HTTP endpoint) that gets one JSON message per deploy, preview, rollback and failure, with a text field chat tools show as is. Delivery is retried within 10 s and never fails the operation.
   * @param previewSeed A service of the compose file (give it a profile: production never starts it) run in each preview as its last release-phase job, on every push: a seed for the preview's empty database (make it idempotent).
   */
  @func()
  vps(
    sshKey: Secret,
    host?: string,
    hostKey?: string,
    project?: string,
    sshKeyPassphrase?: Secret,
    user?: string,
    port?: number,
    dir?: string,
    pullUser?: string,
    pullToken?: Secret,
    envFile?: Secret,
    keepReleases?: number,
    healthTimeout?: number,
    lockTimeout?: number,
    by?: string,
    edgeImage?: string,
    edgeTls?: string,
    orchestrator?: Orchestrator,
    backupPassword?: Secret,
    resticImage?: string,
    keepSnapshots?: number,
    keepSnapshotDays?: number,
    keepOffsiteSnapshots?: number,
    keepOffsiteSnapshotDays?: number,
    backupOffsite?: string,
    backupOffsiteKey?: Secret,
    backupOffsiteHostKey?: string,
    previewDomain?: string,
    previewEnv?: Secret,
    previewLimit?: number,
    previewWhenFull?: PreviewWhenFull,
    previewTtl?: number,
    previewMemory?: string,
    previewCpus?: string,
    previewSeed?: string,
    notifyUrl?: Secret,
  ): Vps {
    // Left-out settings stay null here: each function of Vps settles them against vps-pipeline.yml first.
    return Vps.of(this, {
      host,
      hostKey,
      sshKey,
      sshKeyPassphrase,
      user,
      port,
      project,
      dir,
      pullUser,
      pullToken,
      envFile,
      keepReleases,
      healthTimeout,
      lockTimeout,
      by,
      edgeImage,
      edgeTls,
      orchestrator,
      backupPassword,
      resticImage,
      keepSnapshots,
      keepSnapshotDays,
      keepOffsiteSnapshots,
      keepOffsiteSnapshotDays,
      backupOffsite,
      backupOffsiteKey,
      backupOffsiteHostKey,
      previewDomain,
      previewEnv,
      previewLimit,
      previewWhenFull,
      previewTtl,
      previewMemory,
      previewCpus,
      previewSeed,
      notifyUrl,
    });
  }

  /**
   * Write the files a repository needs to deploy with vps-pipeline: vps-pipeline.yml filled from its compose file and the values given (the required ones left out are commented lines to fill in), and .github/workflows/deploy.yml calling this module by version with a short line. A file that exists is kept and named in the output, unless --overwrite.
   *
   * Example: dagger -m . call --source=. --image-prefix=ghcr.io/acme/gold-tracker init --host=203.0.113.7 --project=gold-tracker export --path=.
   *
   * @param host VPS address, written as vps.host.
   * @param hostKey The VPS's host key line, written as vps.host-key (from the provider's console).
   * @param project Compose project name, written as vps.project (default: the compose file's name:).
   * @param moduleAddress Where the workflow loads vps-pipeline from, without a version, e.g. github.com/your-org/vps-pipeline.
   * @param defaultBranch The branch whose pushes deploy.
   * @param preview Also write .github/workflows/preview.yml: a preview of each pull request (vps.preview-domain in the settings file).
   * @param previewDomain Previews are served at https://pr-N.<this domain>, written as vps.preview-domain.
   * @param overwrite Replace files that exist.
   */
  @func({ cache: "never" }) // what it kept or wrote is said on each call, not only the first
  async init(
    host = "",
    hostKey = "",
    project = "",
    moduleAddress = "",
    defaultBranch: string = DEFAULTS.defaultBranch,
    preview = false,
    previewDomain = "",
    overwrite = false,
  ): Promise<Directory> {
    return explained(async () => {
      const [
        { initSource },
        { composeText },
        {
          MODULE_ADDRESS,
          PREVIEW_WORKFLOW_FILE,
          WORKFLOW_FILE,
          deployWorkflowText,
          previewWorkflowText,
          settingsFileText,
        },
        { SETTINGS_FILE },
        { parse },
      ] = await Promise.all([
        import("./inputs/settings.js"),
        inputs(),
        import("./core/settings/init-files.js"),
        import("./core/settings/settings.js"),
        import("yaml"),
      ]);
      const src = await initSource(this);
      const compose = parse(await composeText(this.source, src.composeFile)) as { name?: unknown } | null;
      const input = {
        composeFile: src.composeFile,
        composeName: typeof compose?.name === "string" ? compose.name : undefined,
        given: {
          imagePrefix: this.imagePrefix ?? undefined,
          registry: this.registry ?? undefined,
          registryUser: this.registryUser ?? undefined,
          platforms: this.platforms?.length ? this.platforms : undefined,
          host: host || undefined,
          hostKey: hostKey || undefined,
          project: project || undefined,
          previewDomain: previewDomain || undefined,
        },
        moduleAddress: moduleAddress || MODULE_ADDRESS,
        defaultBranch,
        preview,
      };
      let out = dag.directory();
      for (const [path, text] of [
        [SETTINGS_FILE, settingsFileText(input)],
        [WORKFLOW_FILE, deployWorkflowText(input)],
        ...(preview ? ([[PREVIEW_WORKFLOW_FILE, previewWorkflowText(input)]] as const) : []),
      ] as const) {
        if (!overwrite && (await src.exists(path))) {
          console.log(`init: kept ${path}: it exists (--overwrite replaces it)`);
          continue;
        }
        console.log(`init: wrote ${path}`);
        out = out.withNewFile(path, text);
      }
      return out;
    });
  }

  /**
   * Check that the production compose file parses and renders into a release the VPS can run (without --image-prefix, built services without an image name get a stand-in one).
   */
  @func()
  @check()
  async composeFileRenders(): Promise<void> {
    await explained(async () => {
      const [{ checkImagePrefix, composeText }, { renderForCheck }] = await Promise.all([
        inputs(),
        import("./core/compose/compose.js"),
      ]);
      // `dagger check` passes no settings: without an image prefix, a stand-in one lets the rest of the file be judged.
      // the repository holding the module is what `dagger check` judges: ours too
      const { settledStack } = await import("./inputs/settings.js");
      const { stack: s } = await settledStack({ ...this, allowModuleRepository: true });
      renderForCheck(await composeText(s.source, s.composeFile), s.composeFile, checkImagePrefix(s.imagePrefix));
    });
  }

  /**
   * Check that every dagger call line of the GitHub workflows names only functions and flags this module has, and every argument they require.
   */
  @func()
  @check()
  async workflowCallsExist(): Promise<void> {
    await explained(async () => {
      const { workflowProblems } = await import("./module-api.js");
      const problems = await workflowProblems(this.source, dag);
      if (problems.length)
        throw new PipelineError(
          "CHECK_FAILED",
          `the workflows do not fit the module:\n  ${problems.join("\n  ")}`,
          "rename the functions or flags in .github/workflows to what `dagger -m . call --help` shows, and give each dagger step `module: .`",
        );
    });
  }
}
