/**
 * A workflow that a pull request triggers must never run the pull request's code with a deploy secret (issue 33):
 * on `pull_request` the workflow file and everything checked out are the branch's, so a collaborator's branch could
 * act on the server with the key. The rules, per job of a workflow triggered by `pull_request` or
 * `pull_request_target`:
 *   - on `pull_request`, no secret but GITHUB_TOKEN (the branch decides what runs);
 *   - the pull request's head is never checked out where the module is loaded from (`module: .` at the root);
 *   - production's SSH key (`VPS_SSH_KEY`) is never used: a preview has a key of its own;
 *   - a job that holds secrets skips forks and Dependabot (they get no secrets: a red job for nothing).
 */
import { parse } from "yaml";

type Step = { uses?: string; with?: Record<string, unknown> };
type Job = { if?: string; env?: Record<string, unknown>; steps?: Step[] };

const secretsOf = (v: unknown): string[] =>
  [...JSON.stringify(v ?? "").matchAll(/secrets\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);

export function pullRequestProblems(file: string, yamlText: string): string[] {
  const wf = (parse(yamlText) ?? {}) as { on?: unknown; jobs?: Record<string, Job> };
  const on = wf.on;
  const triggers =
    typeof on === "string"
      ? [on]
      : Array.isArray(on)
        ? on.map(String)
        : on && typeof on === "object"
          ? Object.keys(on)
          : [];
  const plain = triggers.includes("pull_request");
  if (!plain && !triggers.includes("pull_request_target")) return [];
  const problems: string[] = [];
  for (const [name, job] of Object.entries(wf.jobs ?? {})) {
    const where = `${file}: jobs.${name}`;
    const secrets = [...new Set(secretsOf(job))].filter((s) => s !== "GITHUB_TOKEN");
    if (secrets.length === 0) continue;
    // a job that runs only for another event (the nightly expiry) never sees a pull request
    const event = /github\.event_name\s*==\s*'(\w+)'/.exec(job.if ?? "")?.[1];
    if (event !== undefined && !event.startsWith("pull_request")) continue;
    if (plain)
      problems.push(
        `${where} reads ${secrets.map((s) => `secrets.${s}`).join(", ")} on \`pull_request\`, where the workflow and the module are the pull request's own: run it on \`pull_request_target\` with the base branch's module`,
      );
    const steps = job.steps ?? [];
    const headAtRoot = steps.some(
      (s) =>
        /^actions\/checkout@/.test(s.uses ?? "") &&
        /pull_request\.head\./.test(String(s.with?.ref ?? "")) &&
        (s.with?.path === undefined || s.with.path === "." || s.with.path === ""),
    );
    const moduleAtRoot = steps.some(
      (s) => /dagger-for-github/.test(s.uses ?? "") && [".", "./"].includes(String(s.with?.module ?? "")),
    );
    if (headAtRoot && moduleAtRoot)
      problems.push(
        `${where} checks out the pull request's head where it loads the module (\`module: .\`): the pull request's code would run with ${secrets.join(", ")}; check the base branch out at the root and the pull request beside it (\`path:\`)`,
      );
    if (secrets.includes("VPS_SSH_KEY"))
      problems.push(
        `${where} uses production's SSH key (VPS_SSH_KEY) for a pull request: give previews their own (VPS_PREVIEW_SSH_KEY)`,
      );
    const guard = job.if ?? "";
    if (!/head\.repo\.full_name\s*==\s*github\.repository/.test(guard) || !/dependabot\[bot\]/.test(guard))
      problems.push(
        `${where} holds secrets but runs for forks or Dependabot, which get none (a red job for nothing): add \`github.event.pull_request.head.repo.full_name == github.repository\` and a Dependabot exclusion to its \`if\``,
      );
  }
  return problems;
}
