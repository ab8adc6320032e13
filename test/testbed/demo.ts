/**
 * `npm run demo`: the main job on the embedded example, end to end on the test
 * bed — plan, deploy v1 (with its release-phase migration job), verify, plan and
 * upgrade to v2 under steady load (web is behind the edge: the failed-request
 * count is printed), try a broken v3 and watch the automatic rollback, then
 * print the report, the kept releases, the edge and the history.
 *
 * It starts with the user's path: the files `init` writes for the example laid
 * out as its own repository, and the settings every call then reads from them.
 * Images are built and pushed by the test bed with the docker CLI (the demo runs
 * without the Dagger engine; the engine suite runs the module's own publish).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const PROJECT = "gold-demo";
const PORT = 8080;

function banner(text: string): void {
  console.log(`\n=== ${text}`);
}

async function main(): Promise<void> {
  banner("bringing the test bed up (dockerd, registry with TLS+auth, VPS with sshd in a network namespace)");
  execFileSync("bash", [`${here}up.sh`], { stdio: "inherit" });

  const { isPipelineError } = await import("../../.dagger/src/core/errors.js");
  const { formatReport } = await import("../../.dagger/src/core/release/report.js");
  const { formatPlan } = await import("../../.dagger/src/core/release/plan.js");
  const { formatStatus } = await import("../../.dagger/src/core/release/summary.js");
  const { deploy } = await import("../../.dagger/src/remote/deploy.js");
  const { plan } = await import("../../.dagger/src/remote/plan.js");
  const { status, verify } = await import("../../.dagger/src/remote/verify.js");
  const { bed, deployRequest, freshProject, releaseCompose, steadyLoad, sshOptions, webStatus } =
    await import("./bed.js");

  // Start from an empty server so every run tells the same story.
  freshProject(PROJECT);
  const underLoad = async (what: string, f: () => Promise<unknown>) => {
    const load = steadyLoad(`http://${bed.vps.hostIp}:${PORT}/`, 50);
    await new Promise((r) => setTimeout(r, 500));
    try {
      return await f();
    } finally {
      await new Promise((r) => setTimeout(r, 500));
      const r = await load.stop();
      console.log(
        `  ${what} under 50 requests/s: ${r.failed} of ${r.sent} requests failed (${r.retried} sent again after a reset); answers: ${[...r.bodies].map(([v, n]) => `${v} ×${n}`).join(", ")}`,
      );
    }
  };

  // The user's path first: the example laid out as its own repository would be (compose file at the root), the
  // two files `init` writes for it, and the settings every later call of that repository reads from them.
  const [{ deployWorkflowText, settingsFileText }, { formatSettings, parseSettingsFile, settle, SETTINGS }] =
    await Promise.all([
      import("../../.dagger/src/core/settings/init-files.js"),
      import("../../.dagger/src/core/settings/settings.js"),
    ]);
  const init = {
    composeFile: "docker-compose.prod.yml",
    given: {
      imagePrefix: bed.registry.prefix,
      host: bed.vps.host,
      hostKey: readFileSync(bed.vps.hostKeyFile, "utf8").trim(),
      project: PROJECT,
    },
    moduleAddress: "github.com/your-org/vps-pipeline",
    defaultBranch: "main",
  };
  const settingsText = settingsFileText(init);
  banner("your repository: `dagger -m $VPS_PIPELINE call --source=. … init … export --path=.` writes vps-pipeline.yml");
  console.log(settingsText.replace(/^/gm, "  "));
  banner("… and .github/workflows/deploy.yml, whose one line is all CI runs");
  console.log(`  ${/args: (.*)/.exec(deployWorkflowText(init))![1]}`);
  banner("what every call of that repository then uses (`vps … config`)");
  const file = parseSettingsFile(settingsText, "vps-pipeline.yml");
  const settled = { ...settle("module", {}, file), vps: settle("vps", {}, file) };
  const from = { ...settled.from, ...settled.vps.from };
  const values = { ...settled.values, ...settled.vps.values };
  console.log(
    formatSettings(
      SETTINGS.map((d) => ({ name: d.name, value: values[d.name], from: from[d.name]! })),
      { sshKey: true },
      "vps-pipeline.yml",
    ).replace(/^/gm, "  "),
  );

  banner("published images (pushed with the docker CLI, as the module's publish would)");
  for (const [name, digest] of Object.entries(bed.images)) console.log(`  ${bed.registry.prefix}/${name} ${digest}`);

  const target = { ssh: sshOptions(), dir: `production/${PROJECT}`, project: PROJECT };
  const probe = [{ url: `http://${bed.vps.hostIp}:${PORT}/`, expectStatus: 200, retries: 5 }];
  const request = (version: "v1" | "v2" | "v3") =>
    deployRequest(PROJECT, PORT, {
      compose: releaseCompose(version),
      by: "npm run demo",
      sha: `${version === "v1" ? "1" : version === "v2" ? "2" : "3"}`.repeat(40),
      log: (l) => console.log(`  ${l}`),
      healthTimeoutSeconds: 60,
    });

  banner("plan v1 on an empty VPS (changes nothing)");
  console.log(formatPlan(await plan({ ...target, compose: releaseCompose("v1"), env: request("v1").env! })));

  banner("deploy v1 to an empty VPS: the migrate job runs before the switch");
  await deploy(request("v1"));
  console.log(formatReport(await verify(target, probe)));
  console.log(`  web says: ${(await webStatus(PORT)).body.match(/Version [^<]*/)?.[0]}`);

  banner("plan the upgrade to v2");
  console.log(formatPlan(await plan({ ...target, compose: releaseCompose("v2") })));

  banner("upgrade to v2 under steady load: web rolls over behind the edge");
  await underLoad("the upgrade", () => deploy(request("v2")));
  console.log(formatReport(await verify(target, probe)));
  console.log(`  web says: ${(await webStatus(PORT)).body.match(/Version [^<]*/)?.[0]}`);

  banner("deploy a broken v3 (its api never becomes healthy): expect an automatic rollback");
  try {
    await underLoad("the failed upgrade and its rollback", () => deploy(request("v3")));
    throw new Error("v3 was expected to fail and roll back, but it deployed");
  } catch (e) {
    if (!isPipelineError(e, "DEPLOY_ROLLED_BACK")) throw e;
    console.log(`  ${e.describe().replace(/\n/g, "\n  ")}`);
  }
  const after = await verify(target, probe);
  console.log(formatReport(after));
  const says = (await webStatus(PORT)).body.match(/Version [^<]*/)?.[0];
  console.log(`  web says: ${says}`);
  if (!after.ok || !says?.includes("v2")) throw new Error("after the rollback v2 should be serving");

  banner("status: current release, kept releases, history");
  const st = await status(target, 10);
  console.log(formatStatus(st));
  for (const h of st.history)
    console.log(
      `  ${h.release} steps: ${Object.entries(h.durations)
        .map(([k, v]) => `${k} ${v}s`)
        .join(", ")}`,
    );

  banner(
    `done: the example app runs at http://${bed.vps.hostIp}:${PORT}/ ; tear the test bed down with: bash test/testbed/down.sh`,
  );
}

main().catch((e: unknown) => {
  console.error(isPipelineErrorLike(e) ? e.describe() : e);
  process.exit(1);
});

function isPipelineErrorLike(e: unknown): e is { describe(): string } {
  return typeof (e as { describe?: unknown })?.describe === "function";
}
