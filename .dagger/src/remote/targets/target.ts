/**
 * The plug-in of the deploy flow: what differs between compose on one VPS and
 * a Docker Swarm. deploy.ts and rollback.ts are written once against it; a
 * target never decides what happens next, only how its own step is done.
 * Types only, so that every file can import them without a circle.
 */
import type { ServerPlatform } from "../../core/server/platforms.js";
import type { Attributes } from "@opentelemetry/api";
import type { ReleaseShape } from "../../core/compose/compose.js";
import type { JobSpec } from "../../core/compose/extension.js";
import type { HealthOutcome } from "../../core/release/health.js";
import type { StepName } from "../../core/release/release.js";
import type { ShippedFile } from "../../core/release/release-files.js";
import type { Layout } from "../../core/server/server-commands.js";
import type { Progress, StepSpan } from "../progress.js";
import type { SshSession } from "../ssh.js";
import type { BackupOptions, EdgeOptions, RegistryLogin } from "../remote-target.js";

/** One operation on one server: what every step needs, given once. */
export interface Context {
  s: SshSession;
  l: Layout;
  p: Progress;
  project: string;
  /** The deploy user, named in preflight's errors. */
  user: string;
  /** The server's address as given (the SSH host): the Host header of a probe of a port route. */
  server: string;
  /** Credentials for the pull, when there are any. */
  login?: RegistryLogin | undefined;
  edge: EdgeOptions;
  /** Data snapshots, when given (a release that declares data needs them). */
  backup?: BackupOptions | undefined;
  healthTimeoutSeconds: number;
  /** A line of its own in the output (`deploy note …`): what the user should know. */
  note(line: string): void;
  /** Run one named step: the caller's step hook fires, then one progress line and one span. */
  step<T>(
    name: StepName,
    f: (span: StepSpan) => Promise<T>,
    detail?: (v: T) => string,
    attributes?: Attributes,
  ): Promise<T>;
}

/** A release on the server: its id, its rendered compose file and what it runs. */
export interface Release {
  id: string;
  compose: string;
  shape: ReleaseShape;
  /** The `.env` given with a deploy; absent when the release keeps the server's. */
  env?: string | undefined;
  /** Files from the repository it mounts, shipped with a deploy (a kept release has its own on the server). */
  files?: ShippedFile[] | undefined;
}

/** How a target words what happened (the flow's messages are the same otherwise). */
export interface TargetWords {
  /** Where things live: "VPS" or "manager". */
  where: string;
  /** The switch step's line when it went well. */
  switched(r: Release): string;
  /** The health step's line when the release runs. */
  healthy: string;
  /** "is not healthy" / "did not converge": a release that did not come up. */
  notUp: string;
  /** What a rolled-back previous release is: ", which is healthy and serving". */
  backUp: string;
  /** What it is when it did not come back: ", which is NOT healthy either". */
  backDown: string;
  /** Where to look when the first release of a project fails. */
  firstFailedHint: string;
  /** Where to look when a deploy was rolled back and the previous release serves. */
  rolledBackHint: string;
  /** Where to look when nothing healthy runs. */
  nothingUpHint: string;
  /** Where to look when a rollback's release does not come up. */
  rollbackFailedHint: string;
}

export interface Target {
  words: TargetWords;
  /** Before any connection: refuse what the target cannot run (naming the field); returns notes for the user. */
  admit(compose: string): string[];
  /** The host can run a release; nothing changes. Returns the step's line. */
  preflight(c: Context): Promise<string>;
  /**
   * The platform of the server, or of every node of a swarm (`linux/amd64`…), for the check of multi-platform images.
   */
  platforms(c: Context): Promise<ServerPlatform[]>;
  /** The target's own files beside a release's compose file and `.env`, for the `jobs` this run will run. */
  prepare(c: Context, r: Release, jobs: readonly JobSpec[]): Promise<void>;
  /** Checks that need the uploaded release, each a step of its own (compose: the edge's ports and routes). */
  check(c: Context, r: Release): Promise<void>;
  /**
   * The release's images pulled, or checked readable, with `previous`'s made present for a rollback. Returns the step's
   * line.
   */
  pull(c: Context, r: Release, previous?: Release): Promise<string>;
  /** Images a kept release lost, brought back before a rollback; absent where each node pulls its own. */
  pullBack?(c: Context, r: Release): Promise<string>;
  /** Release-phase jobs, one after the other; the first failure throws JOB_FAILED. */
  jobs(c: Context, r: Release, jobs: readonly JobSpec[]): Promise<string[]>;
  /** Make the release current and start it (`leaving`: the release it replaces); returns why that failed. */
  switch(c: Context, r: Release, leaving?: ReleaseShape): Promise<string | undefined>;
  /** Wait until the release runs as its shape says. */
  wait(c: Context, r: Release): Promise<HealthOutcome>;
}
