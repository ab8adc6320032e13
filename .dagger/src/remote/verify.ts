/**
 * Read-only looks at the VPS: `verify` (is the current release really what runs,
 * healthy, answering?) and `status` (current release, services, history tail).
 */
import { releaseImages } from "../core/compose.js";
import { parseHistory, type HistoryRecord } from "../core/release.js";
import { buildReport, checkService, type ProbeResult, type ProbeSpec, type VerifyReport } from "../core/report.js";
import { httpStatus, imageRepoDigests, inspectContainers, layout, readOptionalFile, tailHistory } from "../core/remote-commands.js";
import type { ContainerState } from "../core/health.js";
import { connect } from "./ssh.js";
import type { SshSession } from "./ssh.js";
import type { RemoteTarget } from "./deploy.js";
import { composePs, readCurrent } from "./steps.js";

async function probe(s: SshSession, p: ProbeSpec): Promise<ProbeResult> {
  let status = 0;
  let attempts = 0;
  for (let i = 0; i <= p.retries; i++) {
    attempts++;
    const r = await s.exec(httpStatus(p.url, 5));
    status = Number(r.stdout.trim()) || 0;
    if (status === p.expectStatus) break;
    if (i < p.retries) await new Promise((res) => setTimeout(res, 1000));
  }
  return { url: p.url, expectStatus: p.expectStatus, status, attempts, ok: status === p.expectStatus };
}

async function inspect(s: SshSession, containers: ContainerState[]): Promise<Map<string, { configured: string; repoDigests: string[] }>> {
  const out = new Map<string, { configured: string; repoDigests: string[] }>();
  if (containers.length === 0) return out;
  const text = await s.run(inspectContainers(containers.map((c) => c.name)), "docker inspect");
  for (const line of text.trim().split("\n")) {
    const [name, configured, imageId] = line.trim().split(" ");
    if (!name || !configured || !imageId) continue;
    const digests = await s.exec(imageRepoDigests(imageId));
    const repoDigests = digests.code === 0 ? (JSON.parse(digests.stdout.trim() || "[]") as string[] | null) ?? [] : [];
    out.set(name.replace(/^\//, ""), { configured, repoDigests });
  }
  return out;
}

export async function verify(target: Pick<RemoteTarget, "ssh" | "dir" | "project">, probes: ProbeSpec[]): Promise<VerifyReport> {
  const l = layout(target.dir);
  const s = await connect(target.ssh);
  try {
    const release = (await readCurrent(s, l)) ?? null;
    if (!release) return buildReport(null, [], []);
    const expected = releaseImages(await s.run(readOptionalFile(l.compose), "reading the current compose file"));
    const containers = await composePs(s, l, target.project);
    const seen = await inspect(s, containers.filter((c) => c.state === "running"));
    const services = Object.entries(expected).map(([service, image]) => {
      const c = containers.find((x) => x.service === service && x.state === "running") ?? containers.find((x) => x.service === service);
      const i = c ? seen.get(c.name) : undefined;
      return checkService(service, image, c, i?.configured ?? "", i?.repoDigests ?? []);
    });
    const probeResults: ProbeResult[] = [];
    for (const p of probes) probeResults.push(await probe(s, p));
    return buildReport(release, services, probeResults);
  } finally {
    s.close();
  }
}

export interface StatusReport {
  release: string | null;
  services: ContainerState[];
  history: HistoryRecord[];
}

export async function status(target: Pick<RemoteTarget, "ssh" | "dir" | "project">, historyLines = 10): Promise<StatusReport> {
  const l = layout(target.dir);
  const s = await connect(target.ssh);
  try {
    const release = (await readCurrent(s, l)) ?? null;
    const services = release ? await composePs(s, l, target.project) : [];
    const history = parseHistory(await s.run(tailHistory(l, historyLines), "reading the history"));
    return { release, services, history };
  } finally {
    s.close();
  }
}
