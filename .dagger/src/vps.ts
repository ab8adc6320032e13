/**
 * The Vps object: one server and one project on it, as `vps(...)` set them.
 * Its functions deploy, plan, verify, roll back, show status, diagnose and ship,
 * back up and restore data, and change the shared edge (its image, a project's
 * maintenance mode).
 * Wiring and documentation only.
 */
import { type Directory, type File, type Secret, func, object } from "@dagger.io/dagger";
import { DEFAULTS } from "./core/defaults.js";
import { PipelineError } from "./core/errors.js";
import type { GivenStack } from "./inputs/settings.js";
import type { Origin } from "./core/settings/settings.js";
import type { Format as FormatName, PreviewArgs, VpsArgs, VpsInputs } from "./inputs/inputs.js";
import { Format } from "./enums.js";
import type { PreviewSettings } from "./core/preview/preview.js";
import { explained } from "./module.js";

// Everything else is imported inside the function that needs it: every call pays for what is imported here
// (the runtime loads this file before any function runs), so SSH, YAML and the registry client wait until used.
const inputs = () => import("./inputs/inputs.js");

/** Print each step as it ends (the Dagger TUI shows it live) and keep the lines for the function's result. */
function liveLog(): { lines: string[]; log: (l: string) => void } {
  const lines: string[] = [];
  return {
    lines,
    log: (l) => {
      lines.push(l);
      console.log(l);
    },
  };
}

function render<T>(format: FormatName, value: T, text: (v: T) => string, markdown: (v: T) => string): string {
  return format === "json" ? JSON.stringify(value, null, 2) : format === "markdown" ? markdown(value) : text(value);
}

/** What settled() found for an object: the origin of each setting, the settings file read (if any). */
const SETTLED = new WeakMap<
  object,
  { from: Record<string, Origin>; file: string | undefined; fromSource: boolean; text: string }
>();

/** The objects whose source is already a commit's tree. */
const COMMITTED = new WeakSet<object>();

/**
 * A VPS and the project deployed on it.
 */
@object()
export class Vps {
  // Not exposed (`--help` lists arguments, not the object's insides). As `vps(...)` hands them over, a setting the
  // command line left out is null; every function first calls settled(), which fills each from vps-pipeline.yml or
  // its default (inputs/settings.ts). The types are the settled ones.
  /** The settings file given with --settings. */
  settings?: File | null;
  /** The module's own repository accepted as the source. */
  allowModuleRepository?: boolean | null;
  /** Repository checkout holding the production compose file. */
  source!: Directory;
  /** Platforms every service is built for. */
  platforms!: string[];
  /** Path of the production compose file inside the source. */
  composeFile!: string;
  /** Image name prefix for built services without an image name. */
  imagePrefix!: string;
  /** Registry host. */
  registry!: string;
  /** Registry account that pushes. */
  registryUser!: string;
  /** Token that pushes. */
  registryToken?: Secret;
  /** VPS address. */
  host!: string;
  /** The pinned host key. */
  hostKey!: string;
  /** Private key of the deploy user. */
  sshKey!: Secret;
  /** Passphrase of the private key. */
  sshKeyPassphrase?: Secret;
  /** Deploy user. */
  user!: string;
  /** SSH port. */
  port!: number;
  /** Compose project name. */
  project!: string;
  /** Deploy directory ("" for ~/production/PROJECT). */
  dir!: string;
  /** Account the VPS pulls as ("" for the registry user). */
  pullUser!: string;
  /** Token the VPS pulls with. */
  pullToken?: Secret;
  /** Production .env. */
  envFile?: Secret;
  /** Releases kept for rollback. */
  keepReleases!: number;
  /** Seconds to wait for health. */
  healthTimeout!: number;
  /** Seconds to wait for the lock. */
  lockTimeout!: number;
  /** Who deploys. */
  by!: string;
  /** The edge proxy's image. */
  edgeImage!: string;
  /** Certificates for this project's hostname routes: acme, internal, or an ACME directory URL. */
  edgeTls!: string;
  /** compose (one VPS) or swarm (the host is a swarm manager). */
  orchestrator!: string;
  /** Password of the restic repository of the data snapshots. */
  backupPassword?: Secret;
  /** restic's image. */
  resticImage!: string;
  /** Snapshots kept per data service. */
  keepSnapshots!: number;
  /** Age in days after which snapshots go (0: by count only). */
  keepSnapshotDays!: number;
  /** Snapshots kept per data service in the off-site repository. */
  keepOffsiteSnapshots!: number;
  /** Age in days after which off-site snapshots go (0: by count only). */
  keepOffsiteSnapshotDays!: number;
  /** The off-site restic repository (sftp:user@host:/path), or "". */
  backupOffsite!: string;
  /** SSH private key for the off-site host. */
  backupOffsiteKey?: Secret;
  /** The off-site host's pinned public key. */
  backupOffsiteHostKey!: string;
  /** Previews are served at https://pr-N.<previewDomain>. */
  previewDomain!: string;
  /** The .env of every preview. */
  previewEnv?: Secret;
  /** Live previews of this project at most. */
  previewLimit!: number;
  /** evict or refuse, when previewLimit previews live. */
  previewWhenFull!: string;
  /** Hours after its last push when a preview goes (0: never). */
  previewTtl!: number;
  /** Memory cap of each preview service that sets none. */
  previewMemory!: string;
  /** CPU cap of each preview service that sets none. */
  previewCpus!: string;
  /** A service run in each preview as its last release-phase job. */
  previewSeed!: string;
  /** Webhook that gets one JSON message per deploy, rollback and failure. */
  notifyUrl?: Secret;

  /** A Vps from the module's settings and the arguments of `vps(...)`. */
  static of(
    stack: GivenStack,
    a: { [K in keyof (VpsArgs & PreviewArgs)]?: (VpsArgs & PreviewArgs)[K] | null } & {
      sshKey: Secret;
      notifyUrl?: Secret | undefined;
      pullUser?: string | undefined;
      pullToken?: Secret | undefined;
      envFile?: Secret | undefined;
    },
  ): Vps {
    return Object.assign(new Vps(), {
      source: stack.source,
      composeFile: stack.composeFile,
      imagePrefix: stack.imagePrefix,
      registry: stack.registry,
      registryUser: stack.registryUser,
      platforms: stack.platforms,
      settings: stack.settings,
      allowModuleRepository: stack.allowModuleRepository,
      ...(stack.registryToken ? { registryToken: stack.registryToken } : {}),
      ...a,
    });
  }

  /**
   * Fill every setting the command line left out from the settings file or its default, once per call (ship and
   * preview call deploy and verify on the same object).
   */
  private async settled(): Promise<void> {
    if (SETTLED.has(this)) return;
    const { formatOrigins, settledStack, settledVps } = await import("./inputs/settings.js");
    const m = await settledStack(this);
    const v = settledVps(this as unknown as Record<string, unknown>, m.file);
    Object.assign(this, m.stack, v.values);
    const from = { ...m.from, ...v.from };
    SETTLED.set(this, {
      from,
      file: m.file?.path,
      fromSource: m.fileFromSource,
      text: `compose    ${m.stack.composeFile}\n${formatOrigins(from, m.file?.path)}`,
    });
  }

  /**
   * From here on, the source is commit `sha` of the source's repository (inputs/commit.ts), once per call: ship and
   * preview call deploy on the same object.
   */
  private async committed(sha: string, note: (n: string) => void): Promise<void> {
    if (COMMITTED.has(this)) return;
    const { committedSource } = await import("./inputs/commit.js");
    const c = await committedSource(this.source, sha);
    for (const n of c.notes) note(n);
    this.source = c.source;
    COMMITTED.add(this);
  }

  /**
   * When neither a flag nor the settings file names the platforms, build for the server's (every node's on a swarm),
   * asked over SSH first: an arm64 laptop's engine would otherwise build arm64 images for an amd64 VPS.
   */
  private async forTheServer(v: VpsInputs, note: (n: string) => void): Promise<void> {
    if (this.platforms.length || SETTLED.get(this)?.from.platforms !== "default") return;
    const { serverPlatforms } = await import("./remote/server-platforms.js");
    this.platforms = await serverPlatforms(v, () => {});
    note(
      `building for ${this.platforms.join(", ")}, the server's platform (--platforms or platforms in the settings file name others)`,
    );
  }

  /**
   * Deploy a published release: preflight, lock, upload, pull (and keep what a rollback needs), release-phase jobs, switch, health wait, automatic rollback on failure, history, pruning. Tags are resolved to digests before anything changes.
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker deploy --git-sha=$GITHUB_SHA --tag=sha-1a2b3c4
   *
   * @param gitSha Commit being deployed, recorded in the release id and the history.
   * @param images One repo@sha256:… per built service as publish prints them, or repo:tag; prefix with service= to name the service.
   * @param tag Deploy every built service not named in images at this tag, e.g. sha-1a2b3c4.
   * @param format Output: text, json or markdown (for a GitHub job summary).
   */
  @func({ cache: "never" }) // changes a server
  async deploy(gitSha: string, images: string[] = [], tag = "", format: Format = Format.text): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { gitInfo, outputFormat, vpsInputs } = await inputs();
      const [{ deploy: remoteDeploy }, { markdownRelease }] = await Promise.all([
        import("./remote/deploy.js"),
        import("./core/release/summary.js"),
      ]);
      const out = outputFormat(format);
      const git = gitInfo(gitSha);
      const v = await vpsInputs(this);
      const log = liveLog();
      await this.committed(git.sha, (n) => log.log(`deploy note      ${n}`));
      const notify = await this.notifier(v, "deploy", log.log);
      const r = await notify.run(async () => {
        // A release that cannot be made (a tag that does not resolve, an empty .env) is a failed deploy in the history
        // too.
        const { compose, pull, env, files } = await this.recordingFailure(v, git.sha, () =>
          this.releaseFor(images, tag),
        );
        for (const n of files.notes) log.log(`deploy note      ${n}`);
        const { indexPlatforms } = await import("./registry/platforms.js");
        return remoteDeploy({
          ...v,
          sha: git.sha,
          compose,
          files: files.files,
          log: log.log,
          platformsOf: (i) => indexPlatforms(i, pull),
          ...(env !== undefined ? { env } : {}),
          ...(pull ? { registry: pull } : {}),
        });
      });
      const summary = {
        action: "deploy" as const,
        release: r.release,
        previous: r.previous,
        images: r.images,
        durations: r.durations,
      };
      return render(
        out,
        summary,
        () => `${log.lines.join("\n")}\nrelease ${r.release} is live${r.previous ? ` (previous: ${r.previous})` : ""}`,
        (x) => notify.markdown(markdownRelease(x)),
      );
    }, format);
  }

  /**
   * Show what deploy would change, changing nothing (no lock, no file, no container): services added, removed or changed with old and new digests, .env keys added, removed or changed (never a value), jobs that would run, and preflight.
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker plan --tag=sha-1a2b3c4
   *
   * @param images One repo@sha256:… per built service, or repo:tag; prefix with service= to name the service.
   * @param tag Plan every built service not named in images at this tag.
   * @param format Output: text, json or markdown.
   * @param pr Plan pull request N's preview (vps --preview-domain…) instead of production.
   */
  @func({ cache: "never" }) // reads live state
  async plan(images: string[] = [], tag = "", format: Format = Format.text, pr = 0): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { outputFormat } = await inputs();
      const [{ plan: remotePlan }, { formatPlan, markdownPlan }] = await Promise.all([
        import("./remote/plan.js"),
        import("./core/release/plan.js"),
      ]);
      const out = outputFormat(format);
      const t = await this.target(pr);
      const { compose, files, env } = await this.releaseFor(images, tag, t.preview);
      const p = await remotePlan({
        ...t.v,
        compose,
        shipped: files.manifest,
        notes: files.notes,
        ...(env !== undefined ? { env } : {}),
      });
      return this.renderWithOrigins(out, p, formatPlan, markdownPlan);
    }, format);
  }

  /**
   * Check the running stack against the release record: every service running (run-once ones exited 0), healthy where it has a healthcheck, on the release's digests; no hand edit of the live compose file, no container the release does not have; optional HTTP probes from the VPS. Fails when anything is off.
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker verify --probes=http://127.0.0.1:8080/health=200
   *
   * @param probes HTTP checks made from the VPS, as URL[=STATUS][*RETRIES], e.g. http://127.0.0.1:8080/health=200*5.
   * @param format Output: text, json or markdown.
   * @param pr Verify pull request N's preview instead of production.
   */
  @func({ cache: "never" }) // reads live state
  async verify(probes: string[] = [], format: Format = Format.text, pr = 0): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { outputFormat, prNumber, previewTarget, probes: parseProbes, vpsInputs } = await inputs();
      const [{ verify: remoteVerify }, { formatReport, markdownReport }] = await Promise.all([
        import("./remote/verify.js"),
        import("./core/release/report.js"),
      ]);
      const out = outputFormat(format);
      const specs = parseProbes(probes);
      const v = await vpsInputs(this);
      const report = await remoteVerify(pr ? previewTarget(v, prNumber(pr)) : v, specs);
      const text = render(out, report, formatReport, markdownReport);
      if (!report.ok)
        throw new PipelineError(
          "VERIFY_FAILED",
          `${text}\n${report.problems.join("\n")}`,
          "see the failed checks above; status shows the history, rollback returns to the previous release",
        );
      return text;
    }, format);
  }

  /**
   * Return to an earlier kept release: by default the newest good one older than the current (so two rollbacks go two releases back). Images the server lost are pulled back first with the pull token; jobs run again only when declared with on-rollback.
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker --pull-token=env:GHCR_PULL_TOKEN rollback
   *
   * @param to Release id to return to, as status shows it (default: the newest good release older than the current).
   * @param restoreData Also put the data (services with x-vps-pipeline data) back as it was while that release was current, from the snapshot taken before the next release's jobs; every data service is stopped meanwhile.
   * @param format Output: text, json or markdown.
   */
  @func({ cache: "never" }) // changes a server
  async rollback(to = "", restoreData = false, format: Format = Format.text): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { checkRegistry, outputFormat, releaseToGo, vpsInputs } = await inputs();
      const [{ rollback: remoteRollback }, { markdownRelease }] = await Promise.all([
        import("./remote/rollback.js"),
        import("./core/release/summary.js"),
      ]);
      const out = outputFormat(format);
      const target = releaseToGo(to);
      const v = await vpsInputs(this);
      // No stack is read for a rollback: without --registry the token goes to the registry of the release's own pinned
      // images.
      const pull = await this.pullLogin(this.registry ? checkRegistry(this.registry) : "");
      const log = liveLog();
      const notify = await this.notifier(v, "rollback", log.log);
      const r = await notify.run(() =>
        remoteRollback({
          ...v,
          log: log.log,
          restoreData,
          ...(target ? { to: target } : {}),
          ...(pull ? { registry: pull } : {}),
        }),
      );
      const summary = {
        action: "rollback" as const,
        release: r.release,
        previous: r.previous,
        images: r.images,
        durations: r.durations,
      };
      return render(
        out,
        summary,
        () => `${log.lines.join("\n")}\nrelease ${r.release} is live again`,
        (x) => notify.markdown(markdownRelease(x)),
      );
    }, format);
  }

  /**
   * Show the settings this call uses and where each came from (a flag, the settings file, a default), and which secrets were given (never their values). Connects to nothing: what to run first in a new repository.
   *
   * Example: dagger -m . call --source=. vps --ssh-key=env:SSH_KEY config
   *
   * @param format Output: text, json or markdown.
   */
  @func()
  async config(format: Format = Format.text): Promise<string> {
    return explained(async () => {
      await this.settled();
      const [{ outputFormat }, { SECRET_SETTINGS, SETTINGS, formatSettings }] = await Promise.all([
        inputs(),
        import("./core/settings/settings.js"),
      ]);
      const out = outputFormat(format);
      const self = this as unknown as Record<string, unknown>;
      const from = SETTLED.get(this)!.from;
      const settings = SETTINGS.map((d) => ({ name: d.name, value: self[d.name], from: from[d.name]! }));
      const secrets = Object.fromEntries(
        Object.keys(SECRET_SETTINGS).map((n) => [n, self[n] !== null && self[n] !== undefined]),
      );
      const file = SETTLED.get(this)!.file;
      const value = { settingsFile: file ?? null, settings, secrets };
      const text = formatSettings(settings, secrets, file);
      return render(
        out,
        value,
        () => text,
        () => `\`\`\`\n${text}\n\`\`\``,
      );
    }, format);
  }

  /**
   * Show the current release, its containers, the kept releases (and whether their images are still on the server), and the tail of the history with the reason and hint of any failure.
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker status --format=markdown
   *
   * @param history History lines to show.
   * @param format Output: text, json or markdown.
   */
  @func({ cache: "never" }) // reads live state
  async status(history: number = DEFAULTS.historyLines, format: Format = Format.text): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { outputFormat, vpsInputs } = await inputs();
      const [{ status: remoteStatus }, { formatStatus, markdownStatus }] = await Promise.all([
        import("./remote/verify.js"),
        import("./core/release/summary.js"),
      ]);
      const out = outputFormat(format);
      const s = await remoteStatus(await vpsInputs(this), history);
      return this.renderWithOrigins(out, s, formatStatus, markdownStatus);
    }, format);
  }

  /**
   * Snapshot the data of the current release now (services with x-vps-pipeline data: physical copies of their volumes, or their dump command), into the restic repository on the VPS; retention as set on vps. Deploys take one before every release's jobs by themselves.
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker --backup-password=env:BACKUP_PASSWORD backup
   */
  @func({ cache: "never" }) // changes a server
  async backup(): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { vpsInputs } = await inputs();
      const { backup: remoteBackup } = await import("./remote/data/data.js");
      const log = liveLog();
      const taken = await remoteBackup({ ...(await vpsInputs(this)), log: log.log });
      return `${log.lines.join("\n")}\n${taken.map((r) => `snapshot ${r.id.slice(0, 12)} of ${r.service} (${r.capture}, ${(r.bytes / 1048576).toFixed(1)} MiB, ${r.seconds}s${r.stoppedSeconds !== undefined ? `, stopped ${r.stoppedSeconds}s` : ""})`).join("\n")}`;
    });
  }

  /**
   * Put one snapshot's data back under the current release (status lists them): the service is stopped for a physical restore and started again; a logical one is fed to its restore command. With --rebuild, bring the project back on a server that does not run it (a new VPS): its snapshots copied from the off-site repository (--backup-offsite…), the release the snapshot's data belongs to rebuilt from the record kept with it (compose file, .env, files), its images pulled with the pull token, its data put back, then started and health-checked.
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker --backup-password=env:BACKUP_PASSWORD restore --snapshot=1a2b3c4d
   *
   * @param snapshot The snapshot's id as status lists it (at least 8 hex digits); with --rebuild, default the newest.
   * @param rebuild Rebuild the project on this server from its backup (the server must not run it).
   */
  @func({ cache: "never" }) // changes a server
  async restore(snapshot = "", rebuild = false): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { checkRegistry, vpsInputs } = await inputs();
      const v = await vpsInputs(this);
      const log = liveLog();
      if (rebuild) {
        const { rebuild: remoteRebuild } = await import("./remote/data/rebuild.js");
        const pull = await this.pullLogin(this.registry ? checkRegistry(this.registry) : "");
        const r = await remoteRebuild({
          ...v,
          log: log.log,
          ...(snapshot ? { snapshot } : {}),
          ...(pull ? { registry: pull } : {}),
        });
        return `${log.lines.join("\n")}\nrelease ${r.release} rebuilt and healthy; restored: ${r.restored.join(", ") || "no data"}`;
      }
      if (!snapshot)
        throw new PipelineError(
          "INVALID_INPUT",
          "snapshot: give the snapshot to put back (status lists them), or --rebuild on a new server",
          "restore --snapshot=1a2b3c4d",
        );
      const { restoreSnapshot } = await import("./remote/data/data.js");
      const done = await restoreSnapshot({ ...v, log: log.log, snapshot });
      return `${log.lines.join("\n")}\nrestored: ${done.join(", ")}`;
    });
  }

  /**
   * Check that the backups restore: restic's check of the repository, then the newest snapshot of each data service (or the one named) restored into a scratch copy of the service beside the real one (fresh volumes, its own network, no port), started, and put to the data's check command (x-vps-pipeline data `check`). The real service is not touched; the copy is removed. status marks the snapshot verified.
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker --backup-password=env:BACKUP_PASSWORD check-backup
   *
   * @param snapshot A snapshot's id as status lists it (default: the newest of each data service).
   */
  @func({ cache: "never" }) // reads live state, starts a scratch copy
  async checkBackup(snapshot = ""): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { vpsInputs } = await inputs();
      const { checkBackup: remoteCheck } = await import("./remote/data/backup-check.js");
      const log = liveLog();
      const done = await remoteCheck({ ...(await vpsInputs(this)), log: log.log, ...(snapshot ? { snapshot } : {}) });
      return `${log.lines.join("\n")}\n${done.map((x) => `snapshot ${x.id.slice(0, 12)} of ${x.service} restores (${x.seconds}s): ${x.result}`).join("\n")}`;
    });
  }

  /**
   * Replace the edge (the Caddy every project on this VPS shares) with another image: same ports, routes and certificates. The new edge starts the moment the old one lets go of its ports, and the old one serves again if the new one cannot start. Reports the gap (how long nothing listened). No deploy changes the edge's image: this is the only way.
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker edge --image=caddy:2.8
   *
   * @param image The edge's new image (pin it by digest: caddy:2@sha256:…).
   */
  @func({ cache: "never" }) // changes a server
  async edge(image: string): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { edgeImageValue, vpsInputs } = await inputs();
      const { replaceEdgeImage } = await import("./remote/edge/edge-admin.js");
      const v = await vpsInputs(this);
      if (v.orchestrator === "swarm")
        throw new PipelineError(
          "INVALID_INPUT",
          "edge: a swarm has no edge (its routing mesh publishes ports)",
          "use edge on a compose VPS",
        );
      const r = await replaceEdgeImage(v, edgeImageValue(image));
      return `edge replaced: ${r.from} → ${r.to}; ${r.routes} route(s) kept on ${r.publish.map((p) => p.replace(/:\d+$/, "")).join(", ") || "no port"}; nothing listened for ${r.gapMs} ms`;
    });
  }

  /**
   * Maintenance mode: the edge answers every route of this project with 503 and a page (Retry-After: 60), without touching the containers; `--off` serves them again. A deploy keeps the mode as it is; status shows it.
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker maintenance --on --page=./maintenance.html
   *
   * @param on Answer with the page.
   * @param off Proxy to the containers again.
   * @param page An HTML page from the repository (default: a short "down for maintenance" page).
   */
  @func({ cache: "never" }) // changes a server
  async maintenance(on = false, off = false, page?: File): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { vpsInputs } = await inputs();
      if (on === off)
        throw new PipelineError(
          "INVALID_INPUT",
          "maintenance: give exactly one of --on and --off",
          "`maintenance --on` (optionally --page=./maintenance.html) starts it, `maintenance --off` ends it",
        );
      if (off && page) throw new PipelineError("INVALID_INPUT", "maintenance: --page goes with --on", "drop --page");
      const { setMaintenance } = await import("./remote/edge/edge-admin.js");
      const v = await vpsInputs(this);
      if (v.orchestrator === "swarm")
        throw new PipelineError(
          "INVALID_INPUT",
          "maintenance: a swarm has no edge to answer for the project",
          "use maintenance on a compose VPS",
        );
      const r = await setMaintenance(v, on, page ? await page.contents() : undefined);
      return on
        ? `${r.project} is in maintenance: the edge answers ${r.services.join(", ")} with 503 and the page`
        : `${r.project} is served again: ${r.services.join(", ")}`;
    });
  }

  /**
   * Diagnose everything before a first deploy, changing nothing: the registry checks of the module's doctor, plus SSH access with the pinned host key, a pull check from the VPS through a throwaway config, and stale registry logins on the VPS. Fails when a check fails.
   *
   * Example: dagger -m . call --registry-user=octocat --registry-token=env:GHCR_TOKEN vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker --pull-token=env:GHCR_PULL_TOKEN doctor
   *
   * @param tag Tag whose manifest the pull checks read.
   */
  @func({ cache: "never" }) // reads live state
  async doctor(tag = "latest"): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { registryLogin, stackRegistry, vpsInputs } = await inputs();
      const [{ stackOf }, { doctor: runDoctor }, { failed, formatFindings }] = await Promise.all([
        import("./build/stack.js"),
        import("./registry/doctor.js"),
        import("./core/findings.js"),
      ]);
      const stack = await stackOf(this);
      const registry = stackRegistry(stack, this.registry);
      const v = await vpsInputs(this);
      const push = await registryLogin(registry, this.registryUser, this.registryToken, "registryUser");
      const pull = await this.pullLogin(registry);
      const findings = await runDoctor({
        registry,
        repositories: stack.builds.map((b) => b.repository),
        writtenNames: stack.builds.map((b) => b.writtenName),
        tag,
        vps: v.ssh,
        ...(v.edge ? { edgeImage: v.edge.image } : {}),
        swarm: v.orchestrator === "swarm",
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
   * Build, publish, deploy and verify in one call: what CI runs.
   *
   * Example: dagger -m . call --registry-user=$GITHUB_ACTOR --registry-token=env:GHCR_TOKEN --image-prefix=ghcr.io/acme/gold-tracker vps --host=$VPS_HOST --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker --env-file=env:PRODUCTION_ENV ship --git-sha=$GITHUB_SHA --git-ref=$GITHUB_REF --commit-time=$COMMIT_TIME
   *
   * @param gitSha Commit being shipped.
   * @param gitRef Full ref being built: decides the latest and semver tags.
   * @param defaultBranch Branch whose builds are tagged latest.
   * @param commitTime The commit's time, RFC 3339: the created label (keeps digests reproducible).
   * @param sourceUrl Repository URL for the source label.
   * @param buildArgs Extra build arguments as NAME=value.
   * @param probes HTTP checks for verify, URL[=STATUS][*RETRIES].
   * @param format Output: text, json or markdown (for a GitHub job summary).
   */
  @func({ cache: "never" }) // changes a server
  async ship(
    gitSha: string,
    gitRef = "",
    defaultBranch: string = DEFAULTS.defaultBranch,
    commitTime = "",
    sourceUrl = "",
    buildArgs: string[] = [],
    probes: string[] = [],
    format: Format = Format.text,
  ): Promise<string> {
    const ex = <T>(f: () => Promise<T>) => explained(f, format);
    await ex(() => this.settled());
    // Bad arguments fail before anything is pushed.
    const { gitInfo, outputFormat, probes: parseProbes, vpsInputs } = await inputs();
    const out = await ex(async () => (parseProbes(probes), outputFormat(format)));
    const published = await ex(async () => {
      const { publishStack } = await import("./build/stack.js");
      const git = gitInfo(gitSha, { ref: gitRef, defaultBranch, commitTime });
      const v = await vpsInputs(this);
      await this.committed(git.sha, (n) => console.log(`publish note     ${n}`));
      await this.forTheServer(v, (n) => console.log(`publish note     ${n}`));
      // a publish that fails is a failed deploy for the team too (the deploy below notifies the rest)
      const notify = await this.notifier(v, "deploy", (l) => console.log(l), true);
      return notify.run(() =>
        this.recordingFailure(v, git.sha, () => publishStack(this, { git, sourceUrl, buildArgs })),
      );
    });
    const deployed = await this.deploy(
      gitSha,
      published.map((p) => p.pinned),
      "",
      Format[out],
    );
    const verified = await this.verify(probes, Format[out]);
    const listed = published.map(
      (p) =>
        `  ${p.service}: ${p.repository}:${p.tags.join(",")} ${p.digest}${p.reused ? " (already published, reused)" : ""}`,
    );
    if (out === "json")
      return JSON.stringify(
        { published, deployed: JSON.parse(deployed) as unknown, verified: JSON.parse(verified) as unknown },
        null,
        2,
      );
    return out === "markdown"
      ? `${deployed}\n\n${verified}`
      : `published:\n${listed.join("\n")}\n${deployed}\n${verified}`;
  }

  /**
   * Deploy pull request N's preview beside production: the PR's commit built and published (or the images/tag given), then deployed as its own project (PROJECT-pr-N, folder DIR-pr-N) with the preview .env, its own volumes and networks, no host port, every service behind the edge at https://pr-N.<preview domain>, jobs as in production; then verified. Previews idle longer than --preview-ttl go first; with --preview-limit live, the one pushed longest ago goes (or this one is refused).
   *
   * Example: dagger -m . call --image-prefix=ghcr.io/acme/gold-tracker --registry-user=octocat --registry-token=env:GHCR_TOKEN vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker --preview-domain=preview.example.com --preview-env=env:PREVIEW_ENV preview --pr=42 --git-sha=$PR_HEAD_SHA
   *
   * @param pr The pull request's number.
   * @param gitSha The pull request's head commit.
   * @param images Deploy these images instead of building (publish's output); see deploy.
   * @param tag Deploy every built service not named in images at this tag instead of building.
   * @param commitTime The commit's time, RFC 3339: the created label (keeps digests reproducible).
   * @param sourceUrl Repository URL for the source label.
   * @param buildArgs Extra build arguments as NAME=value.
   * @param probes HTTP checks for verify, URL[=STATUS][*RETRIES].
   * @param format Output: text, json or markdown (for a GitHub job summary).
   */
  @func({ cache: "never" }) // changes a server
  async preview(
    pr: number,
    gitSha: string,
    images: string[] = [],
    tag = "",
    commitTime = "",
    sourceUrl = "",
    buildArgs: string[] = [],
    probes: string[] = [],
    format: Format = Format.text,
  ): Promise<string> {
    const ex = <T>(f: () => Promise<T>) => explained(f, format);
    await ex(() => this.settled());
    const { gitInfo, outputFormat, probes: parseProbes } = await inputs();
    // Bad arguments fail before anything is pushed.
    const out = await ex(async () => (parseProbes(probes), outputFormat(format)));
    // a pull request's files must not choose where its preview goes, nor which registry gets the tokens
    await ex(async () => {
      if (SETTLED.get(this)?.fromSource)
        throw new PipelineError(
          "SETTINGS_INVALID",
          "preview: the settings would be read from vps-pipeline.yml in --source, the pull request's own files: a pull request could send its preview, the preview's .env and the pull token to any server",
          "pass the base branch's settings file with --settings=./vps-pipeline.yml (the workflow checks the base branch out at the root), or give every setting as a flag and keep vps-pipeline.yml out of the source",
        );
    });
    const t = await ex(() => this.target(pr, true));
    const git = await ex(async () => gitInfo(gitSha, { commitTime }));
    await ex(() => this.committed(git.sha, (n) => console.log(`preview note     ${n}`)));
    await ex(() => this.forTheServer(t.v, (n) => console.log(`preview note     ${n}`)));
    const deployed = await ex(async () => {
      const [{ publishStack }, { deployPreview }, { markdownRelease }] = await Promise.all([
        import("./build/stack.js"),
        import("./remote/preview/preview.js"),
        import("./core/release/summary.js"),
      ]);
      const log = liveLog();
      const notify = await this.notifier(t.v, "preview", log.log);
      // the publish, the release and the deploy: a failure of any is the preview's, for the team too
      const { published, url, d } = await notify.run(async () => {
        const published =
          images.length || tag
            ? []
            : await this.recordingFailure(t.v, git.sha, () => publishStack(this, { git, sourceUrl, buildArgs }));
        const r = await this.recordingFailure(t.v, git.sha, () =>
          this.releaseFor(published.length ? published.map((p) => p.pinned) : images, tag, t.preview),
        );
        for (const n of [...r.files.notes, ...r.notes]) log.log(`preview note     ${n}`);
        const { indexPlatforms } = await import("./registry/platforms.js");
        const d = await deployPreview(t.production, t.preview!.pr, t.preview!, {
          ...t.v,
          sha: git.sha,
          compose: r.compose,
          files: r.files.files,
          env: r.env!,
          confined: r.confined,
          log: log.log,
          platformsOf: (i) => indexPlatforms(i, r.pull),
          ...(r.pull ? { registry: r.pull } : {}),
        });
        return { ...d, published, url: r.url, d };
      });
      const summary = {
        action: "deploy" as const,
        release: d.release,
        previous: d.previous,
        images: d.images,
        durations: d.durations,
        ...(url ? { url } : {}),
      };
      const listed = published.map(
        (p) =>
          `  ${p.service}: ${p.repository}:${p.tags.join(",")} ${p.digest}${p.reused ? " (already published, reused)" : ""}`,
      );
      return render(
        out,
        summary,
        () =>
          `${published.length ? `published:\n${listed.join("\n")}\n` : ""}${log.lines.join("\n")}\npreview #${pr} release ${d.release} is live${url ? ` at ${url}` : ""}`,
        (x) => notify.markdown(`${markdownRelease(x)}${url ? `\n\npreview: ${url}` : ""}`),
      );
    });
    const verified = await this.verify(probes, Format[out], pr);
    if (out === "json")
      return JSON.stringify(
        { deployed: JSON.parse(deployed) as unknown, verified: JSON.parse(verified) as unknown },
        null,
        2,
      );
    return `${deployed}\n${out === "markdown" ? "\n" : ""}${verified}`;
  }

  /**
   * Remove pull request N's preview and everything it had: its edge routes, containers, volumes, networks, release folders, and the images of its releases that no other release of the project (production, other previews) uses. Production is not touched. With --expired, every preview not pushed to for --preview-ttl hours.
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker preview-down --pr=42
   *
   * @param pr The pull request's number.
   * @param expired Instead: remove every preview idle longer than --preview-ttl.
   */
  @func({ cache: "never" }) // changes a server
  async previewDown(pr = 0, expired = false): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { prNumber, vpsInputs } = await inputs();
      const { previewDown: remoteDown } = await import("./remote/preview/preview.js");
      if (expired === (pr !== 0))
        throw new PipelineError(
          "INVALID_INPUT",
          "pr: give either --pr=N (one preview) or --expired (every preview idle longer than --preview-ttl)",
          "preview-down --pr=42, or preview-down --expired",
        );
      const which = expired ? { prs: [], ttlHours: this.previewTtl } : { prs: [prNumber(pr)] };
      if (expired && this.previewTtl <= 0)
        throw new PipelineError(
          "INVALID_INPUT",
          "previewTtl: --expired needs a time-to-live (it is 0: previews never expire)",
          "pass vps --preview-ttl=<hours>",
        );
      const log = liveLog();
      const removed = await remoteDown({ ...(await vpsInputs(this)), log: log.log }, which);
      return removed.length ? log.lines.join("\n") : "no preview to remove";
    });
  }

  /**
   * The current release's logs (every service, or those named), merged in time order, each line naming its container (on a swarm, its task and node); the last --tail lines, within --max-bytes (the output says when older lines were cut). The app's own log lines pass through as they are.
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker logs --service=api --since=30m --tail=500
   *
   * @param service Only these services (repeatable; default all).
   * @param since Only lines since this long ago (10m, 2h) or this time (2026-12-01T08:00:00Z).
   * @param tail The last lines shown, all services together.
   * @param maxBytes At most this many bytes of log (the newest are kept).
   * @param pr A pull request preview's logs instead of production's.
   */
  @func({ cache: "never" }) // reads live state
  async logs(
    service: string[] = [],
    since = "",
    tail = 200,
    maxBytes: number = DEFAULTS.maxOutputBytes,
    pr = 0,
  ): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { logOptions, prNumber, previewTarget, vpsInputs } = await inputs();
      const { logs: remoteLogs } = await import("./remote/day-two/logs.js");
      const o = logOptions({ services: service, since, tail, maxBytes });
      const v = await vpsInputs(this);
      return (await remoteLogs(pr ? previewTarget(v, prNumber(pr)) : v, o)).text;
    });
  }

  /**
   * Run a one-off command in a new container of a service of the current release, as a release-phase job sees it (its image digest, the live .env, the project's networks and volumes; no other container started or recreated), and remove it whatever happens. Prints its output as it comes and returns it (the newest --max-bytes); fails with its exit code (RUN_FAILED) when it is not 0, or when it outlives --timeout (killed). Refused while a deploy holds the lock; deploys wait while it runs. Recorded in the history (who, the command; never the .env).
   *
   * Example: dagger -m . call vps --host=203.0.113.7 --host-key="$VPS_HOST_KEY" --ssh-key=env:SSH_KEY --project=gold-tracker run --service=api --cmd="./manage.py clearsessions"
   *
   * @param service The service whose image, environment, networks and volumes the command gets.
   * @param cmd The command as one shell line, run by the container's sh -c (commas and quotes kept as written).
   * @param argv Instead of --cmd: the words as a JSON array, run without a shell, e.g. --argv='["psql","-c","select 1, 2"]'.
   * @param timeout Seconds before the command is killed and its container removed.
   * @param maxBytes At most this many bytes of output, printed and returned (the newest are kept).
   * @param pr Run it in a pull request preview instead of production.
   */
  @func({ cache: "never" }) // changes a server
  async run(
    service: string,
    cmd = "",
    argv = "",
    timeout: number = DEFAULTS.jobTimeout,
    maxBytes: number = DEFAULTS.maxOutputBytes,
    pr = 0,
  ): Promise<string> {
    return explained(async () => {
      await this.settled();
      const { oneOffOptions, prNumber, previewTarget, vpsInputs } = await inputs();
      const { runOnce } = await import("./remote/day-two/one-off.js");
      const o = oneOffOptions({ service, cmd, argv, timeoutSeconds: timeout, maxBytes });
      const v = await vpsInputs(this);
      const log = liveLog();
      const r = await runOnce(pr ? previewTarget(v, prNumber(pr)) : v, {
        service: o.service,
        command: o.command,
        shell: o.shell,
        timeoutSeconds: o.timeoutSeconds,
        maxBytes: o.maxBytes,
        by: v.by,
        log: log.log,
      });
      const { tail } = await import("./core/errors.js");
      if (r.timedOut)
        throw new PipelineError(
          "RUN_FAILED",
          `${o.service}: the command ran out of its ${o.timeoutSeconds}s timeout and was killed; its container is removed. Its last output:\n${tail(r.output, 20)}`,
          "raise --timeout, or run it in the background of a service",
        );
      if (r.exitCode !== 0)
        throw new PipelineError(
          "RUN_FAILED",
          `${o.service}: the command exited with ${r.exitCode} (release ${r.release}). Its last output:\n${tail(r.output, 40)}`,
          "the output above is the command's own; the history records the run",
        );
      return `${r.output}${r.output.endsWith("\n") || !r.output ? "" : "\n"}exit code 0 (${o.service} of release ${r.release}, ${r.seconds}s)`;
    });
  }

  /** `render`, with where each setting came from: under the text and the markdown, as `settings` in the JSON. */
  private renderWithOrigins<T extends object>(
    out: FormatName,
    value: T,
    text: (v: T) => string,
    markdown: (v: T) => string,
  ): string {
    const s = SETTLED.get(this);
    return render(
      out,
      { ...value, settings: s?.from },
      (x) => `${text(x)}\n${s?.text ?? ""}`,
      (x) => `${markdown(x)}\n\n\`\`\`\n${s?.text ?? ""}\n\`\`\``,
    );
  }

  /**
   * Notifications of one operation to --notify-url (notify/webhook.ts): `run` wraps it (its outcome or failure
   * is sent, within a time budget; a failed delivery is a warning line, never a failure), `markdown` adds the
   * warning to a job summary. `failuresOnly`: only a failure is sent (a publish before the deploy).
   */
  private async notifier(
    v: VpsInputs,
    action: "deploy" | "rollback" | "preview",
    log: (l: string) => void,
    failuresOnly = false,
  ) {
    const { notifyUrlValue } = await inputs();
    const url = await notifyUrlValue(this.notifyUrl);
    const warnings: string[] = [];
    const warn = (l: string) => (warnings.push(l), log(`notify note      ${l}`));
    return {
      run: async <T>(op: () => Promise<T>): Promise<T> => {
        if (!url) return op();
        const { notifying } = await import("./notify/webhook.js");
        if (!failuresOnly)
          return notifying(url, { project: v.project, action, by: v.by }, warn, op as () => Promise<T & object>);
        return op().catch(async (e: unknown): Promise<never> => {
          // rethrows e once sent
          await notifying(url, { project: v.project, action, by: v.by }, warn, () => Promise.reject(e));
          throw e;
        });
      },
      markdown: (md: string) => `${md}${warnings.map((w) => `\n\n> ⚠️ ${w}`).join("")}`,
    };
  }

  /** Run what comes before a deploy reaches the server; a failure is recorded in the server's history (best effort) and rethrown. */
  private async recordingFailure<T>(v: VpsInputs, sha: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      const { recordFailureBeforeDeploy } = await import("./remote/releases.js");
      await recordFailureBeforeDeploy(v.ssh, v.dir, { sha, by: v.by }, e);
      throw e;
    }
  }

  /**
   * The pull credentials the VPS uses for `host` (empty: the registry of the release's images), when a
   * pull token was given. Without one a compose deploy falls back to the push token; a swarm never
   * does, since the swarm keeps the token in its service specs.
   */
  private async pullLogin(host: string) {
    if (!this.pullToken && this.registryToken && this.orchestrator === "swarm") {
      throw new PipelineError(
        "INVALID_INPUT",
        "pullToken: a swarm needs its own pull token: the swarm stores it in every service spec, and the push token must not end up there",
        "pass vps --pull-user=… --pull-token=env:GHCR_PULL_TOKEN (a classic PAT with only read:packages)",
      );
    }
    const { registryLogin } = await inputs();
    return registryLogin(
      host,
      this.pullUser || this.registryUser,
      this.pullToken ?? this.registryToken,
      this.pullToken ? "pullUser" : "registryUser",
    );
  }

  /** Production's target, or (pr > 0) preview pr's with its settings, checked before anything connects. */
  private async target(pr: number, preview = pr !== 0) {
    const { previewSettings, previewTarget, vpsInputs } = await inputs();
    const settings = preview ? previewSettings(this, pr) : undefined;
    const production = await vpsInputs(this);
    return {
      production,
      v: settings ? previewTarget(production, settings.pr) : production,
      ...(settings ? { preview: settings } : {}),
    };
  }

  /**
   * The rendered release for these images or this tag, the files from the repository it carries, the
   * login for its registry (tags resolved to digests, only that registry gets a token) and its .env;
   * for a preview, made safe to run beside production (core/preview/preview-release.ts) with the preview .env.
   */
  private async releaseFor(images: string[], tag: string, preview?: PreviewSettings & { pr: number }) {
    const [
      { checkRegistry, envText },
      { stackOf },
      { builtImagesRegistry },
      { resolveReleaseDigests },
      { renderRelease },
      { fileRefs, releaseFiles },
      { readSourceFiles },
      { assertSubstitutable },
    ] = await Promise.all([
      inputs(),
      import("./build/stack.js"),
      import("./core/registry/images.js"),
      import("./registry/resolve.js"),
      import("./core/compose/compose.js"),
      import("./core/release/release-files.js"),
      import("./inputs/source-files.js"),
      import("./core/compose/substituted.js"),
    ]);
    const stack = await stackOf(this);
    const explicit = this.registry ? checkRegistry(this.registry) : undefined;
    const host = builtImagesRegistry(stack.builds, explicit) ?? explicit;
    const pull = host ? await this.pullLogin(host) : undefined;
    // paths behind a variable are found as compose will read them: with the .env this deploy gives (the
    // server's own is not readable here, nor is production's used for a preview: their defaults then)
    const deployEnv = preview ? undefined : await envText(this.envFile);
    const { envValues } = await import("./core/compose/env-file.js");
    const refs = fileRefs(stack.doc.toJS(), stack.file, envValues(deployEnv ?? ""));
    const files = releaseFiles(refs, await readSourceFiles(this.source, refs));
    const digests = await resolveReleaseDigests(stack, images, tag || undefined, pull);
    const compose = renderRelease(stack, digests, files.rewrites);
    if (!preview) {
      if (deployEnv !== undefined) assertSubstitutable(stack.file, compose, deployEnv, "envFile");
      return { compose, pull, files, env: deployEnv, notes: [] as string[], url: undefined, confined: [] as string[] };
    }
    const [{ previewRelease }, { previewEnv }] = await Promise.all([
      import("./core/preview/preview-release.js"),
      import("./core/preview/preview.js"),
    ]);
    const given = await envText(this.previewEnv, "previewEnv");
    const p = previewRelease(compose, preview.pr, {
      ...preview,
      project: this.project,
      ...(given !== undefined ? { env: given } : {}),
    });
    const host0 = p.url ? new URL(p.url).host : "";
    const env = previewEnv(given, {
      VPS_PREVIEW_PR: String(preview.pr),
      VPS_PREVIEW_URL: p.url ?? "",
      VPS_PREVIEW_HOST: host0,
    });
    assertSubstitutable(stack.file, p.compose, env, "previewEnv");
    const notes = [
      ...p.notes,
      ...(this.envFile ? ["the production --env-file is not used by a preview (--preview-env is)"] : []),
    ];
    return { compose: p.compose, pull, files, env, notes, url: p.url, confined: p.hostPaths };
  }
}
