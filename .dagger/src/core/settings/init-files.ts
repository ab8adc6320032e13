/**
 * What `init` writes into a repository: vps-pipeline.yml filled from its compose file and the values given, and a
 * deploy workflow whose one line carries the secrets, the function and the commit.
 */
import { SETTINGS, SETTINGS_FILE, kebab } from "./settings.js";
import { quoteYaml } from "./yaml-scalar.js";

/** The release this module is; `init` pins the workflows it writes to it. */
export const MODULE_VERSION = "v0.1.0";
/** Where the module is loaded from when `init` is not told (the README's example account). */
export const MODULE_ADDRESS = "github.com/your-org/vps-pipeline";
/** The dagger-for-github release the written workflow uses: the one this repository's own workflows pin. */
export const DAGGER_ACTION = "dagger/dagger-for-github@27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77 # v8.4.1";
export const CHECKOUT_ACTION = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2";
export const ENGINE_VERSION = "0.21.8";

export const WORKFLOW_FILE = ".github/workflows/deploy.yml";
export const PREVIEW_WORKFLOW_FILE = ".github/workflows/preview.yml";

export interface InitInput {
  composeFile: string;
  /** The compose file's own `name:`, the project's name when none is given. */
  composeName?: string | undefined;
  /** Values given to init, by setting name (`imagePrefix`, `host`…). */
  given: Readonly<Record<string, string | number | string[] | undefined>>;
  /** `github.com/<account>/vps-pipeline`, without a version. */
  moduleAddress: string;
  defaultBranch: string;
  /** The preview workflow is written too: the preview domain becomes required. */
  preview?: boolean;
}

const REQUIRED = ["host", "hostKey", "project"];

/** vps-pipeline.yml: what was given, the required ones left out as commented lines to fill in. */
export function settingsFileText(i: InitInput): string {
  const given: Record<string, string | number | string[] | undefined> = { ...i.given };
  if (given.project === undefined && i.composeName) given.project = i.composeName;
  const line = (name: string, indent: string) => {
    const v = given[name];
    if (v === undefined || v === "")
      return REQUIRED.includes(name) || (i.preview && name === "previewDomain")
        ? [`${indent}# ${kebab(name)}: …   # required: fill in`]
        : [];
    const shown = Array.isArray(v)
      ? `[${v.map(quoteYaml).join(", ")}]`
      : typeof v === "number"
        ? String(v)
        : quoteYaml(v);
    return [`${indent}${kebab(name)}: ${shown}`];
  };
  const module = SETTINGS.filter((d) => d.scope === "module").flatMap((d) =>
    d.name === "composeFile" ? [`compose-file: ${quoteYaml(i.composeFile)}`] : line(d.name, ""),
  );
  const vps = SETTINGS.filter((d) => d.scope === "vps").flatMap((d) => line(d.name, "  "));
  return [
    `# ${SETTINGS_FILE}: the settings of every vps-pipeline call from this repository (a flag given wins).`,
    "# Every setting is named as its flag; secrets never go here: they are given on the command line",
    "# (--ssh-key=env:SSH_KEY, file:…, cmd:…, op://…, vault://…). `… vps --ssh-key=… config` shows what a call uses.",
    ...module,
    "vps:",
    ...vps,
    "",
  ].join("\n");
}

/** .github/workflows/deploy.yml: ship on every push to the default branch. */
export function deployWorkflowText(i: InitInput): string {
  const args = [
    "--source=.",
    "--registry-user=$GITHUB_ACTOR",
    "--registry-token=env:GHCR_TOKEN",
    "vps",
    "--ssh-key=env:SSH_KEY",
    "--env-file=env:PRODUCTION_ENV",
    "ship",
    "--git-sha=$GITHUB_SHA",
    "--commit-time=$COMMIT_TIME",
  ].join(" ");
  return `# Written by vps-pipeline init: build, publish to GHCR, deploy to the VPS and verify, on every push to
# ${i.defaultBranch}. The settings are in ${SETTINGS_FILE}; the line carries the secrets, the function and the commit
# (add --git-ref=$GITHUB_REF to tag the images latest as well as sha-<7>).
name: deploy

on:
  push:
    branches: [${i.defaultBranch}]

permissions:
  contents: read
  packages: write

# never two deploys at once; a queued one waits
concurrency:
  group: deploy-production
  cancel-in-progress: false

jobs:
  deploy:
    runs-on: ubuntu-24.04
    environment: production
    timeout-minutes: 30
    env:
      GHCR_TOKEN: \${{ secrets.GITHUB_TOKEN }}
      SSH_KEY: \${{ secrets.VPS_SSH_KEY }}
      PRODUCTION_ENV: \${{ secrets.PRODUCTION_ENV }}
    steps:
      - uses: ${CHECKOUT_ACTION}
        with:
          persist-credentials: false
      - name: Commit time
        run: echo "COMMIT_TIME=$(git log -1 --format=%cI)" >> "$GITHUB_ENV"
      - name: Ship
        uses: ${DAGGER_ACTION}
        with:
          version: "${ENGINE_VERSION}"
          module: ${i.moduleAddress}@${MODULE_VERSION}
          verb: call
          args: ${args}
      # the same call on a laptop: this run's values, the secrets by reference only
      - name: How to reproduce
        if: failure()
        env:
          LINE: ${args}
        run: |
          {
            echo "**Reproduce it on a laptop** from a checkout of this commit, with GHCR_TOKEN, SSH_KEY and PRODUCTION_ENV set:"
            echo
            echo '\`\`\`sh'
            echo "git checkout $GITHUB_SHA"
            printf 'export GITHUB_ACTOR=%q GITHUB_SHA=%q COMMIT_TIME=%q\\n' "$GITHUB_ACTOR" "$GITHUB_SHA" "$COMMIT_TIME"
            echo "dagger -m ${i.moduleAddress}@${MODULE_VERSION} call $LINE"
            echo '\`\`\`'
          } >> "$GITHUB_STEP_SUMMARY"
`;
}

/** A dagger step of a written workflow: the module by version, one line. */
function daggerStep(i: InitInput, name: string, args: string): string {
  return `      - name: ${name}
        uses: ${DAGGER_ACTION}
        with:
          version: "${ENGINE_VERSION}"
          module: ${i.moduleAddress}@${MODULE_VERSION}
          verb: call
          args: ${args}`;
}

/**
 * .github/workflows/preview.yml: each pull request of the repository previewed at https://pr-N.<preview-domain>,
 * removed when it closes, idle ones every night. The pull request's files are data: the module is pinned by
 * version, its settings are the base branch's (checked out at the root), the pull request sits beside them.
 */
export function previewWorkflowText(i: InitInput): string {
  const guard =
    "github.event.pull_request.head.repo.full_name == github.repository && github.event.pull_request.user.login != 'dependabot[bot]'";
  const checkoutBase = `      - uses: ${CHECKOUT_ACTION}
        with:
          ref: \${{ github.event.pull_request.base.sha }}
          persist-credentials: false`;
  return `# Written by vps-pipeline init: a preview of each pull request beside production, at https://pr-<n>.<preview-domain>
# (vps.preview-domain in ${SETTINGS_FILE}). Forks and Dependabot get none: they have no secrets.
name: preview

on:
  pull_request_target:
    types: [opened, synchronize, reopened, closed]
  schedule:
    - cron: "17 3 * * *"

permissions:
  contents: read
  packages: write

# one run per pull request at a time; a push while its preview deploys waits
concurrency:
  group: preview-\${{ github.event.pull_request.number || 'expire' }}
  cancel-in-progress: false

jobs:
  preview:
    if: github.event_name == 'pull_request_target' && github.event.action != 'closed' && ${guard}
    runs-on: ubuntu-24.04
    timeout-minutes: 30
    environment: preview
    env:
      GHCR_TOKEN: \${{ secrets.GITHUB_TOKEN }}
      SSH_KEY: \${{ secrets.VPS_PREVIEW_SSH_KEY }}
      PREVIEW_ENV: \${{ secrets.PREVIEW_ENV }}
      PR: \${{ github.event.pull_request.number }}
      HEAD_SHA: \${{ github.event.pull_request.head.sha }}
    steps:
      # the base branch's files (its ${SETTINGS_FILE}) at the root; the pull request's beside them, as the source
${checkoutBase}
      - uses: ${CHECKOUT_ACTION}
        with:
          ref: \${{ github.event.pull_request.head.sha }}
          path: pull-request
          persist-credentials: false
      - name: Commit time
        run: echo "COMMIT_TIME=$(git -C pull-request log -1 --format=%cI)" >> "$GITHUB_ENV"
${daggerStep(i, "Preview", "--source=./pull-request --settings=./vps-pipeline.yml --registry-user=$GITHUB_ACTOR --registry-token=env:GHCR_TOKEN vps --ssh-key=env:SSH_KEY --preview-env=env:PREVIEW_ENV preview --pr=$PR --git-sha=$HEAD_SHA --commit-time=$COMMIT_TIME")}

  preview-down:
    if: github.event_name == 'pull_request_target' && github.event.action == 'closed' && ${guard}
    runs-on: ubuntu-24.04
    timeout-minutes: 10
    environment: preview
    env:
      SSH_KEY: \${{ secrets.VPS_PREVIEW_SSH_KEY }}
      PR: \${{ github.event.pull_request.number }}
    steps:
${checkoutBase}
${daggerStep(i, "Remove the preview", "--source=. vps --ssh-key=env:SSH_KEY preview-down --pr=$PR")}

  expire:
    if: github.event_name == 'schedule'
    runs-on: ubuntu-24.04
    timeout-minutes: 10
    environment: preview
    env:
      SSH_KEY: \${{ secrets.VPS_PREVIEW_SSH_KEY }}
    steps:
      - uses: ${CHECKOUT_ACTION}
        with:
          persist-credentials: false
${daggerStep(i, "Remove previews idle longer than the TTL", "--source=. vps --ssh-key=env:SSH_KEY preview-down --expired")}
`;
}
