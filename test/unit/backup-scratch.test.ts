/**
 * check-backup's scratch copy shares nothing with the real service: its named volumes are fresh ones of its own
 * project, a host folder it would mount is an empty volume instead, a file the release ships stays read-only, its
 * network leads nowhere.
 */
import { describe, expect, it } from "vitest";
import { scratchCompose } from "../../.dagger/src/core/data/backup-check.js";

const release = `services:
  db:
    image: postgres@sha256:${"a".repeat(64)}
    ports: ["5432:5432"]
    volumes:
      - dbdata:/var/lib/postgresql/data
      - ./uploads:/uploads
      - /srv/shared:/shared:ro
      - \${EXTRA:-./extra}:/extra
      - ./.releases/files/0123456789abcdef/pg.conf:/etc/pg.conf
      - { type: bind, source: /var/log/app, target: /logs }
      - { type: tmpfs, target: /tmp }
      - /anonymous
volumes:
  dbdata: {}
`;

describe("check-backup's scratch copy", () => {
  it("mounts fresh volumes only: no host folder, shipped files read-only", () => {
    const out = JSON.parse(
      scratchCompose(
        release,
        { service: "db", capture: "physical", volumes: ["dbdata"], restoreOnFailedDeploy: false },
        "gold",
      ),
    ) as {
      services: { db: { volumes: unknown[]; ports?: unknown } };
      volumes: Record<string, unknown>;
      networks: { default: { internal?: boolean } };
    };
    expect(out.services.db.ports).toBeUndefined();
    expect(out.networks.default.internal).toBe(true);
    expect(out.services.db.volumes).toEqual([
      "dbdata:/var/lib/postgresql/data",
      { type: "volume", target: "/uploads" },
      { type: "volume", target: "/shared" },
      { type: "volume", target: "/extra" },
      { type: "bind", source: "./.releases/files/0123456789abcdef/pg.conf", target: "/etc/pg.conf", read_only: true },
      { type: "volume", target: "/logs" },
      { type: "tmpfs", target: "/tmp" },
      "/anonymous",
    ]);
    expect(Object.keys(out.volumes)).toEqual(["dbdata"]);
  });
});
