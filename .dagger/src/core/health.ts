/**
 * Reading `docker compose ps --all --format json` and judging whether a release
 * is up: every service running, healthy where it has a healthcheck.
 */

export interface ContainerState {
  service: string;
  name: string;
  /** running, exited, restarting, created, paused, dead */
  state: string;
  /** healthy, unhealthy, starting, or "" when the service has no healthcheck */
  health: string;
  exitCode: number;
  image: string;
}

/** compose ≥ 2.21 prints one JSON object per line; older v2 printed one array. Accept both. */
export function parseComposePs(stdout: string): ContainerState[] {
  const text = stdout.trim();
  if (text === "") return [];
  const rows: unknown[] = text.startsWith("[") ? (JSON.parse(text) as unknown[]) : text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as unknown);
  return rows.map((r) => {
    const o = r as Record<string, unknown>;
    return {
      service: String(o.Service ?? ""),
      name: String(o.Name ?? ""),
      state: String(o.State ?? "").toLowerCase(),
      health: String(o.Health ?? "").toLowerCase(),
      exitCode: Number(o.ExitCode ?? 0),
      image: String(o.Image ?? ""),
    };
  });
}

export type HealthVerdict =
  | { status: "ok" }
  | { status: "waiting"; pending: string[] }
  | { status: "failed"; reasons: string[] };

/**
 * One look at the stack. `failed` only for states that will not fix themselves
 * (unhealthy, exited, dead); a restart loop or a starting healthcheck is `waiting`,
 * and the caller's timeout turns a long wait into a failure.
 */
export function assessHealth(expected: readonly string[], containers: readonly ContainerState[]): HealthVerdict {
  const pending: string[] = [];
  const reasons: string[] = [];
  for (const service of expected) {
    const mine = containers.filter((c) => c.service === service);
    if (mine.length === 0) {
      pending.push(`${service}: no container yet`);
      continue;
    }
    for (const c of mine) {
      if (c.state === "exited" || c.state === "dead") reasons.push(`${service}: container ${c.name} ${c.state} with code ${c.exitCode}`);
      else if (c.health === "unhealthy") reasons.push(`${service}: container ${c.name} is unhealthy (its healthcheck keeps failing)`);
      else if (c.state !== "running") pending.push(`${service}: ${c.state}`);
      else if (c.health === "starting") pending.push(`${service}: health starting`);
    }
  }
  if (reasons.length > 0) return { status: "failed", reasons };
  if (pending.length > 0) return { status: "waiting", pending };
  return { status: "ok" };
}
