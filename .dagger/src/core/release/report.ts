/**
 * The verify report: what was checked on the VPS, whether it passed, and a
 * text rendering for logs. Built from plain observations so it is testable.
 */
import type { ContainerState } from "./health.js";

export interface ProbeSpec {
  url: string;
  expectStatus: number;
  retries: number;
}

/** `URL`, `URL=STATUS` or `URL=STATUS*RETRIES` (e.g. `http://127.0.0.1:8080/health=200*10`). */
export function parseProbe(spec: string): ProbeSpec {
  const m = /^(https?:\/\/\S+?)(?:=(\d{3}))?(?:\*(\d+))?$/.exec(spec.trim());
  if (!m || !m[1])
    throw new Error(`probe \`${spec}\` must be URL[=STATUS][*RETRIES], e.g. http://127.0.0.1:8080/health=200*5`);
  return { url: m[1], expectStatus: m[2] ? Number(m[2]) : 200, retries: m[3] ? Number(m[3]) : 3 };
}

export interface ServiceCheck {
  service: string;
  container: string;
  state: string;
  health: string;
  expectedImage: string;
  runningImage: string;
  /** Digests the running image is known by in registries. */
  repoDigests: string[];
  /** On a swarm: each task of the service, where it runs and which image. */
  tasks?: { node: string; state: string; image: string; error?: string }[];
  ok: boolean;
  problem?: string;
}

export interface ProbeResult {
  url: string;
  expectStatus: number;
  status: number;
  attempts: number;
  ok: boolean;
}

export interface VerifyReport {
  ok: boolean;
  release: string | null;
  services: ServiceCheck[];
  probes: ProbeResult[];
  problems: string[];
}

/**
 * Judge one service: running (or, for a run-once service, exited 0), healthy
 * when it has a check, and made from exactly the pinned image.
 */
export function checkService(
  service: string,
  expectedImage: string,
  c: ContainerState | undefined,
  configuredImage: string,
  repoDigests: string[],
  runsOnce = false,
): ServiceCheck {
  const base = {
    service,
    container: c?.name ?? "",
    state: c?.state ?? "missing",
    health: c?.health ?? "",
    expectedImage,
    runningImage: configuredImage,
    repoDigests,
  };
  const problems: string[] = [];
  if (!c) problems.push("no container");
  else {
    if (runsOnce) {
      if (c.state !== "exited" || c.exitCode !== 0)
        problems.push(
          c.state === "exited"
            ? `ran once and exited with code ${c.exitCode}`
            : `is ${c.state}; it should have run once and exited 0`,
        );
    } else if (c.state !== "running") problems.push(`container is ${c.state}`);
    if (c.health !== "" && c.health !== "healthy") problems.push(`health is ${c.health}`);
    if (expectedImage.includes("@sha256:")) {
      // RepoDigests holds `repo@sha256:…` for every registry the image came from.
      const known = repoDigests.includes(expectedImage);
      if (configuredImage !== expectedImage || !known)
        problems.push(
          `runs ${configuredImage || "an unknown image"}${known ? "" : " (not the pinned digest)"}, release pins ${expectedImage}`,
        );
    } else if (configuredImage !== expectedImage)
      problems.push(`runs ${configuredImage}, release says ${expectedImage}`);
  }
  const problem = problems.join("; ");
  return problem ? { ...base, ok: false, problem } : { ...base, ok: true };
}

export function buildReport(
  release: string | null,
  services: ServiceCheck[],
  probes: ProbeResult[],
  drift: string[] = [],
): VerifyReport {
  const problems = [
    ...(release ? [] : ["no current release on the server"]),
    ...drift,
    ...services.filter((s) => !s.ok).map((s) => `${s.service}: ${s.problem}`),
    ...probes
      .filter((p) => !p.ok)
      .map(
        (p) =>
          `probe ${p.url}: got ${p.status === 0 ? "no answer" : p.status}, expected ${p.expectStatus} (${p.attempts} attempts)`,
      ),
  ];
  return { ok: problems.length === 0, release, services, probes, problems };
}

export function formatReport(r: VerifyReport): string {
  const lines = [`verify: ${r.ok ? "OK" : "FAILED"}  release ${r.release ?? "(none)"}`];
  for (const s of r.services) {
    lines.push(
      `  ${s.ok ? "ok  " : "FAIL"} ${s.service.padEnd(12)} ${s.state}${s.health ? `/${s.health}` : ""}  ${s.runningImage}${s.problem ? `  — ${s.problem}` : ""}`,
    );
    for (const t of s.tasks ?? [])
      lines.push(
        `         ${t.node.padEnd(12)} ${t.state}  ${t.image === s.runningImage ? "(same image)" : t.image}${t.error ? `  ${t.error}` : ""}`,
      );
  }
  for (const p of r.probes)
    lines.push(
      `  ${p.ok ? "ok  " : "FAIL"} GET ${p.url} → ${p.status || "no answer"} (want ${p.expectStatus}, ${p.attempts} attempt(s))`,
    );
  const listed = new Set([
    ...r.services.filter((s) => !s.ok).map((s) => `${s.service}: ${s.problem}`),
    ...r.probes.filter((p) => !p.ok).map((p) => p.url),
  ]);
  for (const p of r.problems) if (!listed.has(p) && !r.probes.some((x) => p.includes(x.url))) lines.push(`  FAIL ${p}`);
  return lines.join("\n");
}

/** The same report as Markdown, for a GitHub job summary. */
export function markdownReport(r: VerifyReport): string {
  const lines = [
    `### verify: ${r.ok ? "✅ OK" : "❌ FAILED"} — release \`${r.release ?? "(none)"}\``,
    "",
    "| service | state | image | result |",
    "|---|---|---|---|",
  ];
  for (const s of r.services)
    lines.push(
      `| ${s.service} | ${s.state}${s.health ? `/${s.health}` : ""} | \`${s.runningImage || "-"}\` | ${s.ok ? "ok" : `**${s.problem}**`} |`,
    );
  for (const p of r.probes)
    lines.push(
      `| GET ${p.url} | ${p.status || "no answer"} | want ${p.expectStatus} | ${p.ok ? "ok" : "**failed**"} |`,
    );
  if (!r.ok) lines.push("", ...r.problems.map((p) => `- ${p}`));
  return lines.join("\n");
}
