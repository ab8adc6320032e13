/** Writes the workflows `init` writes into `<repo>/.github/workflows`, for .ci/lint-workflows to lint. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deployWorkflowText, previewWorkflowText } from "../../.dagger/src/core/settings/init-files.js";

const repo = process.argv[2];
if (!repo) throw new Error("usage: tsx test/module/write-init-workflows.ts <repository>");
const input = {
  composeFile: "docker-compose.prod.yml",
  given: {},
  moduleAddress: "github.com/acme/vps-pipeline",
  defaultBranch: "main",
};
mkdirSync(join(repo, ".github/workflows"), { recursive: true });
writeFileSync(join(repo, ".github/workflows/deploy.yml"), deployWorkflowText(input));
writeFileSync(join(repo, ".github/workflows/preview.yml"), previewWorkflowText(input));
