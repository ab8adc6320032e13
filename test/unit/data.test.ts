import { describe, expect, it } from "vitest";
import { parseComposeStack, releaseShape } from "../../.dagger/src/core/compose/compose.js";
import {
  findSnapshot,
  mustCapture,
  parseSnapshots,
  snapshotsFor,
  specsToCapture,
  type SnapshotRecord,
} from "../../.dagger/src/core/data/data.js";
import { parseServiceExtension } from "../../.dagger/src/core/compose/extension.js";
import { backupPasswordValue } from "../../.dagger/src/core/secret-values.js";
import { renderSwarmRelease } from "../../.dagger/src/core/swarm/swarm-release.js";

const D = `sha256:${"a".repeat(64)}`;
const stack = (data: string, extra = "") => `services:
  db:
    image: postgres@${D}
    volumes: ["dbdata:/var/lib/postgresql/data", "./init:/docker-entrypoint-initdb.d:ro"]
    x-vps-pipeline:
      data: ${data}
  api:
    image: api@${D}${extra}
volumes:
  dbdata: {}
  other: {}
`;

describe("x-vps-pipeline data", () => {
  it("takes volumes and the capture mode, with defaults; a string command runs in the service's shell", () => {
    expect(parseServiceExtension("db", { data: { volumes: ["dbdata"] } }).data).toEqual({
      service: "db",
      volumes: ["dbdata"],
      capture: "physical",
      restoreOnFailedDeploy: false,
    });
    expect(
      parseServiceExtension("db", {
        data: {
          capture: "logical",
          dump: "pg_dump -U app app",
          restore: ["psql", "-U", "app"],
          "on-failed-deploy": "restore",
        },
      }).data,
    ).toEqual({
      service: "db",
      volumes: [],
      capture: "logical",
      dump: ["sh", "-c", "pg_dump -U app app"],
      restore: ["psql", "-U", "app"],
      restoreOnFailedDeploy: true,
    });
  });

  it("names the field of every misspelt or contradictory setting", () => {
    const problems = (data: unknown) => parseServiceExtension("db", { data }).problems;
    expect(problems({ volume: ["x"] })[0]).toMatch(
      /^services\.db\.x-vps-pipeline\.data: .*volume.*known keys: job, http, data/,
    );
    expect(problems({})[0]).toMatch(/^services\.db\.x-vps-pipeline\.data\.volumes: name at least one volume/);
    expect(problems({ capture: "logical", dump: "pg_dump" })[0]).toMatch(
      /^services\.db\.x-vps-pipeline\.data\.restore: is required with capture: logical/,
    );
    expect(problems({ volumes: ["v"], dump: "pg_dump" })[0]).toMatch(/data\.dump: goes with capture: logical/);
    expect(problems({ volumes: ["v"], capture: "snapshot" })[0]).toMatch(
      /data\.capture: must be physical .* or logical/,
    );
    expect(problems({ volumes: ["v"], "on-failed-deploy": "yes" })[0]).toMatch(
      /on-failed-deploy: must be restore or keep/,
    );
    expect(problems({ volumes: ["v", "v"] })[0]).toMatch(/names a volume twice/);
    expect(parseServiceExtension("web", { data: { volumes: ["v"] }, http: { port: 80 } }).problems[0]).toMatch(
      /neither a job nor behind the edge/,
    );
  });

  it("refuses a volume the file does not declare, or the service does not mount", () => {
    expect(() => parseComposeStack(stack("{ volumes: [nothere] }"), "c.yml")).toThrow(
      /services\.db\.x-vps-pipeline\.data\.volumes\.0: `nothere` is not a named volume of the file/,
    );
    expect(() => parseComposeStack(stack("{ volumes: [other] }"), "c.yml")).toThrow(
      /`other` is not mounted by this service/,
    );
    expect(parseComposeStack(stack("{ volumes: [dbdata] }"), "c.yml").data).toEqual([
      expect.objectContaining({ service: "db", volumes: ["dbdata"] }),
    ]);
  });

  it("is refused on a swarm, by field", () => {
    expect(() => renderSwarmRelease(stack("{ volumes: [dbdata] }"))).toThrow(
      /services\.db\.x-vps-pipeline\.data: data snapshots are not supported on a swarm yet/,
    );
  });
});

describe("when to capture, and what a rollback restores", () => {
  const v1 = releaseShape(stack("{ volumes: [dbdata] }"));
  const withJob = releaseShape(
    `${stack("{ volumes: [dbdata] }")}`.replace(
      "  api:\n",
      "  migrate:\n    image: api@" +
        D +
        "\n    profiles: [vps-pipeline-jobs]\n    x-vps-pipeline: { job: true }\n  api:\n",
    ),
  );
  const newDb = releaseShape(
    stack("{ volumes: [dbdata] }").replace(`postgres@${D}`, `postgres@sha256:${"b".repeat(64)}`),
  );
  const plain = releaseShape(`services:\n  api:\n    image: api@${D}\n`);

  it("captures before jobs, or when a data service's image changes; never without data or on a first deploy", () => {
    const specs = specsToCapture(v1, withJob);
    expect(specs.map((d) => d.service)).toEqual(["db"]);
    expect(mustCapture(v1, withJob, specs)).toBe(true);
    expect(mustCapture(v1, newDb, specsToCapture(v1, newDb))).toBe(true);
    expect(mustCapture(v1, v1, specsToCapture(v1, v1))).toBe(false);
    expect(mustCapture(undefined, withJob, specsToCapture(undefined, withJob))).toBe(false);
    expect(specsToCapture(plain, plain)).toEqual([]);
    // a declaration added by the next release covers a service that already runs
    expect(
      specsToCapture(
        releaseShape(stack("{ volumes: [dbdata] }").replace(/\n    x-vps-pipeline:\n      data: .*\n/, "\n")),
        v1,
      ).map((d) => d.service),
    ).toEqual(["db"]);
  });

  const rec = (id: string, release: string, at: string, service = "db"): SnapshotRecord => ({
    id: id.repeat(64 / id.length),
    service,
    capture: "physical",
    release,
    before: "x",
    at,
    bytes: 1,
    seconds: 1,
  });
  const records = [
    rec("a", "R1", "2026-01-01T00:00:00Z"),
    rec("b", "R1", "2026-01-02T00:00:00Z"),
    rec("c", "R2", "2026-01-03T00:00:00Z"),
    rec("d", "R1", "2026-01-01T00:00:00Z", "cache"),
  ];

  it("returns to the newest snapshot of each data service taken while the release was current", () => {
    expect(snapshotsFor(records, "R1", ["db", "cache"]).map((r) => r.id[0])).toEqual(["b", "d"]);
    expect(snapshotsFor(records, "R3", ["db"])).toEqual([]);
  });

  it("finds a snapshot by a prefix of at least 8 digits; reads records, skipping what is not one", () => {
    expect(findSnapshot(records, "cccccccc").map((r) => r.release)).toEqual(["R2"]);
    expect(() => findSnapshot(records, "abc")).toThrow(/snapshot: `abc` is not a snapshot id/);
    expect(() => findSnapshot(records, "eeeeeeee")).toThrow(/no snapshot eeeeeeee/);
    expect(parseSnapshots(`${JSON.stringify(records[0])}\nnot json\n{"id":"zz"}\n`)).toEqual([records[0]]);
  });

  it("takes the backup password as one line, never empty", () => {
    expect(backupPasswordValue("s3cret pass\n")).toBe("s3cret pass");
    expect(() => backupPasswordValue("\n")).toThrow(/backupPassword: the secret is empty/);
    expect(() => backupPasswordValue("a\nb")).toThrow(/backupPassword: must be one line/);
  });
});

describe("the off-site repository", () => {
  it("names the host restic's ssh goes to, and pins it by the key given whole or alone", async () => {
    const { offsiteHost, offsiteKnownHosts } = await import("../../.dagger/src/core/data/offsite.js");
    expect(offsiteHost("sftp:backup@203.0.113.9:/srv/restic/gold")).toBe("203.0.113.9");
    expect(offsiteHost("sftp://backup@backups.example.com:2222//srv/restic")).toBe("[backups.example.com]:2222");
    expect(offsiteHost("sftp://backup@backups.example.com//srv/restic")).toBe("backups.example.com");
    expect(() => offsiteHost("s3:https://s3.example.com/bucket")).toThrow(
      /backupOffsite: `s3:https:\/\/s3.example.com\/bucket` is not an SFTP repository/,
    );
    const key = "AAAAC3NzaC1lZDI1NTE5AAAAIGq0vI2d8v1vZ0x8b0Q1c3d4e5f6g7h8i9j0k1l2m3n4";
    expect(offsiteKnownHosts("sftp:backup@203.0.113.9:/srv", `ssh-ed25519 ${key}`)).toBe(
      `203.0.113.9 ssh-ed25519 ${key}`,
    );
    expect(offsiteKnownHosts("sftp:backup@203.0.113.9:/srv", `backup-host ssh-ed25519 ${key} comment\n`)).toBe(
      `backup-host ssh-ed25519 ${key}`,
    );
    expect(() => offsiteKnownHosts("sftp:backup@203.0.113.9:/srv", "SHA256:abc")).toThrow(
      /backupOffsiteHostKey: must be the off-site host's public key/,
    );
    expect(() =>
      offsiteKnownHosts("sftp:backup@203.0.113.9:/srv", `ssh-ed25519 ${key}\nother ssh-ed25519 ${key}`),
    ).toThrow(/backupOffsiteHostKey/);
  });
});

describe("an S3 off-site repository", () => {
  it("is told apart from SFTP by restic's syntax; plain HTTP and other schemes are refused", async () => {
    const { offsiteKind } = await import("../../.dagger/src/core/data/offsite.js");
    expect(offsiteKind("sftp:backup@203.0.113.9:/srv/restic/gold")).toBe("sftp");
    expect(offsiteKind("s3:https://s3.eu-central-003.backblazeb2.com/gold-backups/vps")).toBe("s3");
    expect(offsiteKind("s3:https://10.200.0.1:9443/backups")).toBe("s3");
    expect(offsiteKind("s3:s3.amazonaws.com/gold-backups")).toBe("s3");
    expect(() => offsiteKind("s3:http://10.200.0.1:9000/backups")).toThrow(/plain HTTP/);
    expect(() => offsiteKind("rclone:remote:backups")).toThrow(/neither an SFTP nor an S3 repository/);
  });

  it("takes its key as the storage shows it, and never says a value in an error", async () => {
    const { s3Credentials, offsiteCa, offsiteSecretLine } = await import("../../.dagger/src/core/data/offsite.js");
    expect(s3Credentials("AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=s3cr3t/x+y\n")).toEqual({
      accessKeyId: "AKIAEXAMPLE",
      secretAccessKey: "s3cr3t/x+y",
    });
    expect(s3Credentials("export AWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY='b'\nAWS_DEFAULT_REGION=eu\n")).toEqual({
      accessKeyId: "a",
      secretAccessKey: "b",
      region: "eu",
    });
    let said = "";
    try {
      s3Credentials("AWS_ACCESS_KEY_ID=only-the-id-value\n");
    } catch (e) {
      said = `${(e as Error).message} ${(e as { hint?: string }).hint ?? ""}`;
    }
    expect(said).toMatch(/backupOffsiteKey: .*AWS_SECRET_ACCESS_KEY is missing/);
    expect(said).not.toContain("only-the-id-value");
    expect(offsiteCa("")).toBe("");
    expect(() => offsiteCa("ssh-ed25519 AAAA")).toThrow(/backupOffsiteHostKey: for an S3 repository it is the CA/);
    const line = offsiteSecretLine({
      kind: "s3",
      repository: "s3:https://h/b",
      credentials: { accessKeyId: "id", secretAccessKey: "se cret" },
      ca: "",
    });
    expect(line).toMatch(/^[A-Za-z0-9+/=]+$/);
    expect(Buffer.from(line, "base64").toString()).toBe("id\nse cret\n\n");
  });
});

describe("a new server, from what the backup holds", () => {
  const id = (c: string) => c.repeat(64);
  const R1 = "20261201T010000.000Z-aaaaaaa";
  const R2 = "20261201T020000.000Z-bbbbbbb";
  const restic = JSON.stringify([
    {
      id: id("1"),
      time: "2026-12-01T01:30:00.1+00:00",
      paths: ["/data"],
      tags: ["vps-pipeline", "project=gold", "service=db", "capture=physical", `release=${R1}`, `before=${R2}`],
    },
    {
      id: id("2"),
      time: "2026-12-01T01:30:01Z",
      paths: ["/vps-pipeline"],
      tags: ["vps-pipeline", "project=gold", "record", `release=${R1}`],
    },
    {
      id: id("3"),
      time: "2026-12-01T02:30:00Z",
      paths: ["/db.dump"],
      tags: ["vps-pipeline", "project=gold", "service=db", `release=${R2}`, "before=manual"],
    },
    {
      id: id("4"),
      time: "2026-12-01T02:30:01Z",
      paths: ["/vps-pipeline"],
      tags: ["vps-pipeline", "project=gold", "record", `release=${R2}`],
    },
    { id: "short", time: "2026-12-01T03:00:00Z", tags: ["service=db", `release=${R2}`] },
    { id: id("5"), time: "2026-12-01T03:00:00Z", tags: ["a snapshot someone made by hand"] },
  ]);

  it("reads restic's list: data snapshots by their tags (a dump without the capture tag by its path), release records apart", async () => {
    const { parseCatalog } = await import("../../.dagger/src/core/data/backup-catalog.js");
    const c = parseCatalog(restic, true);
    expect(c.data.map((x) => [x.id[0], x.capture, x.release, x.before, x.offsite])).toEqual([
      ["1", "physical", R1, R2, true],
      ["3", "logical", R2, "manual", true],
    ]);
    expect(c.records.map((x) => [x.id[0], x.release])).toEqual([
      ["2", R1],
      ["4", R2],
    ]);
    expect(parseCatalog("", false)).toEqual({ data: [], records: [] });
    expect(() => parseCatalog("Fatal: unable to open", false)).toThrow(/not JSON/);
  });

  it("rebuilds the release of the newest snapshot (or the one named), with that release's record", async () => {
    const { chooseRebuild, parseCatalog } = await import("../../.dagger/src/core/data/backup-catalog.js");
    const c = parseCatalog(restic, false);
    expect(chooseRebuild(c)).toMatchObject({ release: R2, record: { id: id("4") }, chosen: { id: id("3") } });
    expect(chooseRebuild(c, "11111111")).toMatchObject({ release: R1, record: { id: id("2") } });
    expect(() => chooseRebuild(c, "99999999")).toThrow(/snapshot: no snapshot 99999999 in the backup/);
    expect(() => chooseRebuild(c, "xyz")).toThrow(/snapshot: `xyz` is not a snapshot id/);
    expect(() => chooseRebuild({ data: c.data, records: [] })).toThrow(/no record of release .* nothing was changed/);
    expect(() => chooseRebuild({ data: [], records: [] })).toThrow(/holds no data snapshot of this project/);
  });
});
