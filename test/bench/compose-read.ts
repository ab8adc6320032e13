/**
 * `npm run bench:compose`: how long reading a large compose file takes — 60 services, each taking its settings
 * from anchors with merge keys (hundreds of aliases), every image and a replica count a variable of the `.env` —
 * from the text to the rendered release: resolve (extends, include), parse and check, repository files, render,
 * and the release's shape with its `.env`. No test bed needed.
 *
 * `CORE=<path to another checkout's .dagger/src>` runs the same file through that checkout's core, so a change can be
 * measured against the code before it in one sitting (e.g. `git worktree add /tmp/before <commit>`); the steps
 * that checkout lacks are skipped. Prints the median of RUNS (default 15) after 3 warm-ups, in milliseconds.
 */
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { median } from "./common.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const CORE = resolve(process.env.CORE ?? ".dagger/src");
const load = async (m: string) => (await import(pathToFileURL(`${CORE}/${m}`).href).catch(() => undefined)) as Record<string, unknown> | undefined;

type Fn = (...a: unknown[]) => unknown;
const compose = (await load("core/compose/compose.ts"))!;
const files = (await load("core/release/release-files.ts"))!;
const resolver = await load("core/compose/resolve.ts");

/** 60 services over 6 anchors, each service merging two of them and aliasing a shared healthcheck and labels. */
function largeFile(): string {
  const out = ["x-health: &health", "  interval: 5s", "  timeout: 2s", "  retries: 3", "x-labels: &labels", "  team: platform", "  tier: app"];
  for (let a = 0; a < 6; a++)
    out.push(
      `x-base${a}: &base${a}`,
      "  restart: unless-stopped",
      "  init: true",
      "  logging: { driver: json-file, options: { max-size: 10m } }",
      `  environment: { SHARED_${a}: "1", LOG_LEVEL: info }`,
    );
  out.push("services:");
  for (let i = 0; i < 60; i++) {
    const built = i % 4 === 0;
    out.push(
      `  svc${i}:`,
      `    <<: [*base${i % 6}, *base${(i + 1) % 6}]`,
      built
        ? `    build: { context: ./app, args: { VARIANT: "\${VARIANT_${i}:-v${i}}" } }`
        : `    image: \${REGISTRY:-ghcr.io/acme}/svc${i}:\${TAG_${i}:-1.${i}}`,
      "    labels: *labels",
      "    healthcheck:",
      "      <<: *health",
      `      test: ["CMD", "true"]`,
      `    deploy: { replicas: "\${REPLICAS_${i}:-1}" }`,
      ...(i % 10 === 0 ? [`    volumes: ["./conf/svc${i}.conf:/etc/svc.conf:ro", "data${i}:/data"]`] : []),
    );
  }
  out.push("volumes:", ...Array.from({ length: 6 }, (_, i) => `  data${i * 10}: {}`));
  return `${out.join("\n")}\n`;
}

const text = largeFile();
const aliases = (text.match(/\*\w+/g) ?? []).length;
const env = Array.from({ length: 60 }, (_, i) => `TAG_${i}=2.${i}\nREPLICAS_${i}=${(i % 3) + 1}\n`).join("");
const vars = new Map(env.trim().split("\n").map((l) => l.split("=") as [string, string]));

const steps: [string, () => unknown][] = [];
let stack: { doc: { toJS(): unknown }; builds: { service: string }[] } | undefined;
let resolved = text;
if (resolver) steps.push(["resolve (extends, include)", () => (resolved = (resolver.resolveComposeText as Fn)("compose.yaml", text, () => undefined, compose.COMPOSE_YAML) as string)]);
steps.push(["parse and check", () => (stack = (compose.parseComposeStack as Fn)(resolved, "compose.yaml", "ghcr.io/acme/app") as typeof stack)]);
steps.push(["repository files", () => (files.fileRefs as Fn)(stack!.doc.toJS(), "compose.yaml", vars)]);
let release = "";
steps.push([
  "render the release",
  () => (release = (compose.renderRelease as Fn)(stack, Object.fromEntries(stack!.builds.map((b) => [b.service, `sha256:${"0".repeat(64)}`]))) as string),
]);
steps.push(["the release's shape, with its .env", () => (compose.releaseShape as Fn)(release, env)]);

// the same services written with `extends:` (a base service each), which only a resolving core reads
if (resolver) {
  const extended = text
    .replace(/ {4}<<: \[\*base(\d), \*base\d\]\n/g, "    extends: base$1\n")
    .replace("services:\n", `services:\n${Array.from({ length: 6 }, (_, a) => `  base${a}:\n    <<: *base${a}\n    image: busybox\n`).join("")}`);
  steps.push(["resolve the same, written with extends", () => (resolver.resolveComposeText as Fn)("compose.yaml", extended, () => undefined, compose.COMPOSE_YAML)]);
}

const times = new Map<string, number[]>(steps.map(([n]) => [n, []]));
const totals: number[] = [];
for (let run = 0; run < RUNS + 3; run++) {
  let total = 0;
  for (const [name, f] of steps) {
    const t0 = performance.now();
    f();
    const ms = performance.now() - t0;
    if (!name.includes("written with extends")) total += ms;
    if (run >= 3) times.get(name)!.push(ms);
  }
  if (run >= 3) totals.push(total);
}
console.log(`compose-read: ${CORE}\n  a file of ${text.length} bytes, 60 services, ${aliases} aliases; median of ${RUNS}`);
for (const [name, t] of times) console.log(`  ${name.padEnd(40)} ${median(t).toFixed(1).padStart(7)} ms`);
console.log(`  ${"total (but the extends file)".padEnd(40)} ${median(totals).toFixed(1).padStart(7)} ms`);
