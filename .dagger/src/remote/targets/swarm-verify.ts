/**
 * verify and status on a swarm: what every node runs, read from the manager.
 * Neither takes the lock.
 */
import { releaseShape } from "../../core/compose/compose.js";
import { layout, readOptionalFile, releaseDir } from "../../core/server/server-commands.js";
import {
  buildReport,
  type ProbeResult,
  type ProbeSpec,
  type ServiceCheck,
  type VerifyReport,
} from "../../core/release/report.js";
import { serviceTasks, stackDrift, type ServiceTasks, type SwarmNode } from "../../core/swarm/swarm-state.js";
import type { SshSession } from "../ssh.js";
import { readCurrent, releaseCompose, releaseEnv } from "../releases.js";
import { expectedServices, readStack } from "./swarm.js";

export interface SwarmView {
  services: ServiceTasks[];
  nodes: SwarmNode[];
}

/**
 * Judge the stack against the release record: each service defined with the
 * release's digest, every task on it, all replicas running on ready nodes, no
 * update paused, no service the release lacks, no hand edit of the live file.
 */
export async function swarmVerify(
  s: SshSession,
  dir: string,
  project: string,
  probe: (p: ProbeSpec) => Promise<ProbeResult>,
  probes: ProbeSpec[],
): Promise<VerifyReport> {
  const l = layout(dir);
  const release = (await readCurrent(s, l)) ?? null;
  if (!release) return buildReport(null, [], []);
  const recordFile = `${releaseDir(l, release)}/docker-compose.yml`;
  const [recorded, live, env] = await Promise.all([
    releaseCompose(s, l, release),
    s.run(readOptionalFile(l.compose), "reading the live compose file"),
    releaseEnv(s, l, release),
  ]);
  if (recorded === "")
    return buildReport(release, [], [], [`the record of release ${release} (${recordFile}) is missing: deploy again`]);
  const drift: string[] = [];
  if (live !== recorded)
    drift.push(
      `the live ${l.compose} differs from the record of release ${release} (edited by hand?): deploy, or \`rollback --to ${release}\`, to make them one again`,
    );
  const expected = expectedServices(releaseShape(recorded, env));
  const st = await readStack(s, project);
  const problems = stackDrift(release, expected, st);
  const views = serviceTasks(st);
  const services: ServiceCheck[] = expected.map((e) => {
    const v = views.find((x) => x.service === e.service);
    const mine = problems.filter((x) => x.startsWith(`${e.service}: `)).map((x) => x.slice(e.service.length + 2));
    const base = {
      service: e.service,
      container: v ? [...new Set(v.tasks.map((t) => t.node))].join(",") : "",
      state: v ? `${v.running}/${v.desired} ${v.mode.endsWith("job") ? "completed" : "running"}` : "missing",
      health: "",
      expectedImage: e.image,
      runningImage: v?.image ?? "",
      repoDigests: [],
      ...(v ? { tasks: v.tasks } : {}),
    };
    return mine.length ? { ...base, ok: false, problem: mine.join("; ") } : { ...base, ok: true };
  });
  drift.push(...problems.filter((x) => !expected.some((e) => x.startsWith(`${e.service}: `))));
  const probeResults: ProbeResult[] = [];
  for (const pr of probes) probeResults.push(await probe(pr));
  return buildReport(release, services, probeResults, drift);
}

export async function swarmView(s: SshSession, project: string): Promise<SwarmView> {
  const st = await readStack(s, project);
  return { services: serviceTasks(st), nodes: st.nodes };
}
