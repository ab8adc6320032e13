/**
 * `vps … restore --rebuild`: a project back on a server that does not run it (a
 * new VPS after the old one died). The project's snapshots come from the
 * off-site repository (or the local one, when the folder survived); the
 * release the chosen snapshot's data belongs to comes from the record kept
 * with it (compose file, `.env`, shipped files, history); its images are
 * pulled, its data services made and filled, then the switch and the health
 * wait of any rollback. Everything is checked before the first change: a wrong
 * password or an empty backup leaves the server as it was.
 */
import { chooseRebuild, parseCatalog } from "../../core/data/backup-catalog.js";
import {
  copyFromOffsite,
  listSnapshots,
  prepareDataServices,
  projectPresence,
  restoreRecord,
  snapshotRecords,
} from "../../core/data/data-commands.js";
import { snapshotsFor, type SnapshotRecord } from "../../core/data/data.js";
import { offsiteSecretLine, offsiteTarget } from "../../core/data/offsite.js";
import { PipelineError, tail } from "../../core/errors.js";
import { loginForRelease } from "../../core/registry/images.js";
import { keptRelease, operation, targetFor } from "../flow.js";
import { dataError, dropReplaced, needBackup, restoreSnapshots, type BackupRequest } from "./data.js";
import { readCurrent, record } from "../releases.js";
import { withLock } from "../session.js";
import type { BackupOptions, DeployResult, RegistryLogin } from "../remote-target.js";
import type { Context, Release } from "../targets/target.js";

export interface RebuildRequest extends BackupRequest {
  /** The snapshot whose release and data come back (a prefix of its id); default: the newest. */
  snapshot?: string;
  /** Credentials the server pulls the release's images with (an empty host: the registry the images name). */
  registry?: RegistryLogin;
}

export interface RebuildResult extends DeployResult {
  /** `service:id` of each snapshot put back. */
  restored: string[];
}

export async function rebuild(req: RebuildRequest): Promise<RebuildResult> {
  if (req.orchestrator === "swarm")
    throw new PipelineError(
      "INVALID_INPUT",
      "rebuild: a swarm keeps no data snapshots (data services are refused there)",
      "rebuild on a compose VPS",
    );
  const t = targetFor(req.orchestrator);
  return operation(req, "restore", req.registry, {}, async (c, attribute) => {
    const b = needBackup(c);
    await c.step(
      "preflight",
      () => t.preflight(c),
      (line) => line,
    );
    const running = await readCurrent(c.s, c.l);
    if (running)
      throw new PipelineError(
        "INVALID_INPUT",
        `rebuild: ${c.project} runs release ${running} on this server; a rebuild is for a server without it, and nothing was changed`,
        "`restore --snapshot=<id>` puts data back under the running release; `rollback --restore-data` returns to an earlier release with its data",
      );
    // what runs decides, not a folder: the project deployed from another --dir has its containers and volumes (checked
    // before the lock, which would make the folder)
    const present = (await c.s.run(projectPresence(c.project), "looking for the project on this server"))
      .split("\n")
      .map((x) => x.trim())
      .filter(Boolean);
    if (present.length)
      throw new PipelineError(
        "INVALID_INPUT",
        `rebuild: ${c.project} has ${present.length} container(s) or volume(s) on this server (${present.slice(0, 3).join("; ")}${present.length > 3 ? "; …" : ""}); a rebuild is for a server without it, and nothing was changed`,
        "deployed with another --dir? give that one (`restore --snapshot=<id>` puts data back under a running release); to rebuild here, remove the project first (`docker compose -p <project> down -v` in its folder)",
      );
    return withLock(
      c.s,
      c.l,
      c.p,
      req.lockTimeoutSeconds,
      `${req.by} (rebuild, since ${new Date().toISOString()})`,
      async () => {
        const fetched = b.offsite
          ? await c.step(
              "fetch",
              () => fetchFromOffsite(c, b),
              () => `snapshots copied from ${b.offsite?.repository.replace(/^sftp:(\/\/)?[^@]*@/, "sftp:$1")}`,
            )
          : undefined;
        const listed = await c.s.exec(listSnapshots(c.l, b.image, c.project), { stdin: `${b.password}\n` });
        if (listed.code !== 0) throw dataError(listed, "the backup", "restore");
        const catalog = parseCatalog(listed.stdout, fetched !== undefined);
        const choice = chooseRebuild(catalog, req.snapshot);
        attribute("release.id", choice.release);
        await c.step(
          "read",
          async () => {
            const r = await c.s.exec(restoreRecord(c.l, b.image, c.project, choice.release, choice.record.id), {
              stdin: `${b.password}\n`,
            });
            if (r.code !== 0) {
              const err = dataError(r, "the record", "restore");
              throw err.code === "RESTORE_FAILED"
                ? new PipelineError(
                    "RESTORE_FAILED",
                    `putting release ${choice.release}'s record (compose file, .env, files) in place failed: ${tail(r.stderr, 3) || `exit code ${r.code}`}`,
                    "check that the deploy user owns the deploy folder; restore --rebuild again",
                  )
                : err;
            }
            // the server's records of the snapshots: status lists them, rollback and restore find them
            await c.s.upload(snapshotRecords(c.l), catalog.data.map((x) => `${JSON.stringify(x)}\n`).join(""), "600");
          },
          () => `release ${choice.release} from its record of ${choice.record.at}`,
        );
        const r = await keptRelease(c, choice.release);
        const snaps = snapshotsFor(
          catalog.data,
          r.id,
          r.shape.data.map((d) => d.service),
        ).map((x) => (x.service === choice.chosen.service ? choice.chosen : x));
        c.login = loginForRelease(req.registry, Object.values(r.shape.images).filter(Boolean));
        await t.check(c, r);
        const { pullBack } = t;
        if (pullBack)
          await c.step(
            "pull",
            () => pullBack(c, r),
            (line) => line,
          );
        const restored = await c.step(
          "restore-data",
          () => fillData(c, b, r, snaps),
          (x) => `${x.join(", ")} restored`,
        );
        await t.prepare(c, r, []);
        const health = await c.step(
          "switch",
          async (span) => {
            const failure = await t.switch(c, r, undefined);
            const h = failure ? { ok: false as const, reasons: [failure] } : await t.wait(c, r);
            if (!h.ok) span.fail(h.reasons.join("; "));
            return h;
          },
          (h) => (h.ok ? `${r.id}: ${t.words.healthy}` : h.reasons.join("; ")),
          { "release.id": r.id },
        );
        const sha = r.id.split("-").pop() ?? "";
        const why = health.ok ? "" : health.reasons.join("; ");
        const err = health.ok
          ? undefined
          : new PipelineError(
              "RESTORE_FAILED",
              `release ${r.id} was rebuilt with its data but ${t.words.notUp}: ${why}`,
              t.words.rollbackFailedHint,
            );
        await c.step("record", () =>
          record(c.s, c.l, {
            release: r.id,
            action: "restore",
            result: health.ok ? "ok" : "failed",
            at: new Date().toISOString(),
            by: req.by,
            sha,
            images: r.shape.images,
            restored,
            durations: c.p.durations,
            ...(err ? { reason: why, code: err.code, hint: err.hint } : {}),
          }),
        );
        if (err) throw err;
        return { release: r.id, images: r.shape.images, durations: c.p.durations, restored };
      },
    );
  });
}

/** The project's snapshots copied from the off-site repository into the server's (made here if it has none). */
async function fetchFromOffsite(c: Context, b: BackupOptions): Promise<void> {
  const o = b.offsite!;
  const r = await c.s.exec(copyFromOffsite(c.l, b.image, c.project, offsiteTarget(o)), {
    stdin: `${b.password}\n${offsiteSecretLine(o)}\n`,
  });
  if (r.code === 0) return;
  const err = dataError(r, "the backup", "restore");
  if (err.code === "BACKUP_PASSWORD") throw err;
  throw new PipelineError(
    "RESTORE_FAILED",
    `copying the snapshots from the off-site repository failed: ${tail(r.stderr, 3) || `exit code ${r.code}`}; nothing was changed`,
    "check the off-site host, its key (--backup-offsite-host-key) and the SSH key (--backup-offsite-key)",
  );
}

/**
 * The data services made (physical: their volumes, to be filled) or started (logical: a dump goes into a running
 * service), then their snapshots put back.
 */
async function fillData(c: Context, b: BackupOptions, r: Release, snaps: readonly SnapshotRecord[]): Promise<string[]> {
  const missing = r.shape.data.filter((d) => !snaps.some((x) => x.service === d.service)).map((d) => d.service);
  if (missing.length)
    c.note(
      `no snapshot of ${missing.join(", ")} was taken with release ${r.id}: ${missing.length > 1 ? "they start" : "it starts"} empty`,
    );
  for (const mode of ["create", "run"] as const) {
    const services = snaps.filter((x) => (x.capture === "physical") === (mode === "create")).map((x) => x.service);
    if (services.length === 0) continue;
    const p = await c.s.exec(
      prepareDataServices(c.l, b.image, c.project, r.id, mode, c.healthTimeoutSeconds, services),
      { stdin: `${b.password}\n` },
    );
    if (p.code !== 0)
      throw new PipelineError(
        "RESTORE_FAILED",
        `starting ${services.join(", ")} to put the data back failed: ${tail(p.stderr, 3) || `exit code ${p.code}`}`,
        `look at \`docker compose logs ${services.join(" ")}\` on the VPS; restore --rebuild again once it is fixed`,
      );
  }
  // a new server's volumes were empty: nothing replaced is worth keeping
  const restored = await restoreSnapshots(c.s, c.l, c.project, b, r.shape.data, snaps, r.id, false);
  await dropReplaced(c.s, c.l, c.project, b, restored);
  return restored.done;
}
