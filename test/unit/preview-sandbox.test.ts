/**
 * Issue 33: the preview's sandbox is an allow-list on the resolved release (core/preview/sandbox.ts). Every leak
 * the review found is refused with its field, written out and behind a variable (set by the preview's .env to the
 * bad value, or left to a default the server would choose); what a preview needs is allowed.
 */
import { describe, expect, it } from "vitest";
import { composeData } from "../../.dagger/src/core/compose/compose.js";
import { sandbox } from "../../.dagger/src/core/preview/sandbox.js";
import { previewRelease } from "../../.dagger/src/core/preview/preview-release.js";

/** A service `s` with these lines (YAML, indented under it), and top-level sections after. */
const file = (svc: string, top = "") => `services:\n  s:\n    image: app\n${svc}\n  other:\n    image: app\n${top}`;
const judge = (text: string, env: Record<string, string> = {}) =>
  sandbox(composeData(text), new Map(Object.entries(env))).problems;

/** [what, service lines, top-level lines, the field the refusal names] */
const LEAKS: [string, string, string, RegExp][] = [
  [
    "a writable bind out of its folder",
    "    volumes: ['../app:/prod']",
    "",
    /services\.s\.volumes\[0\]: `\.\.\/app` leaves/,
  ],
  [
    "the Docker socket through ..",
    "    volumes: ['../../../../var/run/docker.sock:/s']",
    "",
    /services\.s\.volumes\[0\]: .*leaves/,
  ],
  [
    "/var/run read-only",
    "    volumes: ['/var/run:/r:ro']",
    "",
    /services\.s\.volumes\[0\]: the host path `\/var\/run`/,
  ],
  ["production's .env read-only", "    volumes: ['/home/deploy/production/app/.env:/e:ro']", "", /host path/],
  [
    "/ read-only, long syntax",
    "    volumes: [{ type: bind, source: /, target: /host, read_only: true }]",
    "",
    /volumes\[0\]\.source: the host path `\/`/,
  ],
  [
    "an env file at an absolute path",
    "    env_file: [/home/deploy/production/app/.env]",
    "",
    /services\.s\.env_file\[0\]: the host path/,
  ],
  [
    "an env file out of its folder",
    "    env_file: ../app/.env",
    "",
    /services\.s\.env_file: `\.\.\/app\/\.env` leaves/,
  ],
  [
    "a secret file at an absolute path",
    "    secrets: [k]",
    "secrets:\n  k: { file: /etc/shadow }\n",
    /secrets\.k\.file: the host path/,
  ],
  [
    "a config file out of its folder",
    "    configs: [c]",
    "configs:\n  c: { file: ../app/c.conf }\n",
    /configs\.c\.file: .*leaves/,
  ],
  ["privileged", "    privileged: true", "", /services\.s\.privileged: gives the container every device/],
  ["cap_add", "    cap_add: [SYS_ADMIN]", "", /services\.s\.cap_add:/],
  ["devices", "    devices: ['/dev/sda:/dev/sda']", "", /services\.s\.devices:/],
  ["pid: host", "    pid: host", "", /services\.s\.pid:/],
  ["ipc: host", "    ipc: host", "", /services\.s\.ipc: `host`/],
  ["userns_mode: host", "    userns_mode: host", "", /services\.s\.userns_mode:/],
  ["cgroup: host", "    cgroup: host", "", /services\.s\.cgroup:/],
  ["security_opt unconfined", "    security_opt: ['seccomp:unconfined']", "", /services\.s\.security_opt\[0\]:/],
  ["network_mode: host", "    network_mode: host", "", /services\.s\.network_mode: `host`/],
  [
    "network_mode of a production container",
    "    network_mode: container:app-web-1",
    "",
    /network_mode: `container:app-web-1`/,
  ],
  [
    "volumes_from a production container",
    "    volumes_from: ['container:app-db-1']",
    "",
    /volumes_from\[0\]: `container:app-db-1`/,
  ],
  [
    "a named volume binding a host path",
    "    volumes: ['v:/v']",
    "volumes:\n  v: { driver_opts: { type: none, o: bind, device: /home/deploy/production } }\n",
    /volumes\.v\.driver_opts:/,
  ],
  ["the API socket key", "    use_api_socket: true", "", /services\.s\.use_api_socket: mounts the Docker API socket/],
  ["a key off the list", "    runtime: runc", "", /services\.s\.runtime:/],
  [
    "GPUs through deploy",
    "    deploy: { resources: { reservations: { devices: [{ capabilities: [gpu] }] } } }",
    "",
    /reservations\.devices/,
  ],
  ["a logging driver that ships logs away", "    logging: { driver: syslog }", "", /logging\.driver: `syslog`/],
  // what the pipeline keeps in the folder: a container reaching it changes the next deploy (or the server's compose)
  ["a bind of the folder itself", "    volumes: ['.:/app']", "", /volumes\[0\]: `\.` is the preview's folder itself/],
  ["a bind of the releases", "    volumes: ['./.releases:/r:ro']", "", /`\.\/\.releases` is what the pipeline keeps/],
  [
    "a writable bind of the compose file the server runs",
    "    volumes: [{ type: bind, source: ./docker-compose.yml, target: /c }]",
    "",
    /source: `\.\/docker-compose\.yml` is what the pipeline keeps/,
  ],
  ["a writable bind of its .env", "    volumes: ['./.env:/app/.env']", "", /`\.\/\.env` is what the pipeline keeps/],
  // a container that may write a folder could swap what lies inside it for a symlink before it is mounted or read
  [
    "a bind inside a writable bind",
    "    volumes: ['./data:/data', './data/conf:/etc/conf:ro']",
    "",
    /volumes\[1\]: `data\/conf` lies inside `data`, which services\.s\.volumes\[0\] lets a container write/,
  ],
  [
    "an env file inside a writable bind",
    "    volumes: ['./data:/data']\n    env_file: ./data/app.env",
    "",
    /env_file: `data\/app\.env` lies inside `data`, which services\.s\.volumes\[0\] lets a container write/,
  ],
];

describe("the preview's sandbox: an allow-list on the resolved release", () => {
  it.each(LEAKS)("refuses %s", (_what, svc, top, field) => {
    expect(judge(file(svc, top)).join("\n")).toMatch(field);
  });

  // every leak again with each of its values behind a variable the preview's .env sets to it (JSON is YAML)
  it.each(LEAKS)("refuses %s behind variables", (_what, svc, top, field) => {
    const env: Record<string, string> = {};
    const hide = (v: unknown): unknown => {
      if (typeof v === "string") {
        const name = `V${Object.keys(env).length}`;
        env[name] = v;
        return `\${${name}}`;
      }
      if (Array.isArray(v)) return v.map(hide);
      if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hide(x)]));
      return v;
    };
    const hidden = JSON.stringify(hide(composeData(file(svc, top))));
    expect(hidden).toContain("${V");
    expect(judge(hidden, env).join("\n")).toMatch(field);
  });

  // the same leaks behind a variable: the preview's .env sets it to the bad value, or the server would pick it
  const variable: [string, string, Record<string, string>, RegExp][] = [
    [
      "the socket by default",
      "    volumes: ['${SOCK:-/var/run/docker.sock}:/s']",
      {},
      /uses `SOCK`, which the preview's \.env does not set/,
    ],
    [
      "the socket from the .env",
      "    volumes: ['${SOCK}:/s']",
      { SOCK: "/var/run/docker.sock" },
      /host path `\/var\/run\/docker\.sock`/,
    ],
    [
      "a path from the server's session",
      "    volumes: ['${HOME}/x:/x']",
      { HOME: "." },
      /uses `HOME`, which the server's session sets/,
    ],
    [
      "out of its folder from the .env",
      "    volumes: [{ type: bind, source: '${D}', target: /d }]",
      { D: "../prod" },
      /source: `\.\.\/prod` leaves/,
    ],
    ["network_mode from the .env", "    network_mode: ${NET}", { NET: "host" }, /network_mode: `host`/],
    ["an env file by default", "    env_file: ${ENVF:-/etc/environment}", {}, /uses `ENVF`/],
  ];
  it.each(variable)("refuses %s", (_what, svc, env, field) => {
    expect(judge(file(svc), env).join("\n")).toMatch(field);
  });

  it("allows what a preview needs: its volumes, binds and files inside its folder, its networks, its services", () => {
    const ok = file(
      [
        "    volumes: ['data:/data', './conf/app.conf:/etc/app.conf:ro', '.releases/files/0123456789abcdef/x.conf:/x', '/anon', { type: tmpfs, target: /t }]",
        "    env_file: [.env, { path: ./extra.env, required: false }]",
        "    networks: [back]",
        "    cap_drop: [ALL]",
        "    security_opt: [no-new-privileges:true]",
        "    volumes_from: [other]",
        "    logging: { driver: json-file, options: { max-size: 10m } }",
        "    deploy: { replicas: 2, resources: { limits: { memory: 256m } } }",
        "    healthcheck: { test: [CMD, 'true'] }",
        "    x-anything: yes",
        "    ports: ['8080:80']",
      ].join("\n"),
      "volumes:\n  data: {}\nnetworks:\n  back: {}\nconfigs:\n  c: { file: ./c.conf }\n",
    );
    expect(judge(ok)).toEqual([]);
    expect(judge(file("    volumes: ['${DATA:-./data}:/d']"), { DATA: "./mine" })).toEqual([]);
    // its own .env read-only; a path inside a read-only bind (no container can write the folder on the way)
    const readOnly = file(
      "    volumes: ['./.env:/app/.env:ro', './conf:/c:ro', { type: bind, source: ./conf/x, target: /x }]",
    );
    expect(judge(readOnly)).toEqual([]);
    // the host paths the server then checks (resolved there: no symlink on the way out)
    expect(sandbox(composeData(readOnly), new Map()).hostPaths).toEqual([".env", "conf", "conf/x"]);
  });

  it("is what previewRelease refuses, every problem at once; a service's own pids and cpus are carried into its caps", () => {
    expect(() =>
      previewRelease(file("    privileged: true\n    pid: host"), 4, {
        domain: "p.example.com",
        memory: "512m",
        cpus: "1",
        project: "app",
      }),
    ).toThrow(/services\.s\.privileged: .*\n {2}services\.s\.pid:/);
    const p = previewRelease(file("    pids_limit: 100\n    cpus: 0.5"), 4, {
      domain: "p.example.com",
      memory: "512m",
      cpus: "1",
      project: "app",
    });
    expect((composeData(p.compose) as { services: { s: { deploy: unknown } } }).services.s.deploy).toEqual({
      resources: { limits: { memory: "512m", cpus: 0.5, pids: 100 } },
    });
  });
});
