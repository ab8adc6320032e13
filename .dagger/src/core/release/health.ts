/**
 * Reading `docker compose ps --all --format json` and judging whether a release
 * is up: every long-running service running, healthy where it has a healthcheck;
 * run-once services exited 0; services under a profile judged only when present.
 */
import { parseJson } from "../errors.js";

/** The outcome of waiting for a release: it runs, or why it does not. */
export type HealthOutcome = { ok: true } | { ok: false; reasons: string[] };

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
  const from = "docker compose ps --format json";
  const rows: unknown[] = text.startsWith("[")
    ? parseJson<unknown[]>(text, from)
    : text
        .split("\n")
        .filter((l) => l.trim())
        .map((l) => parseJson<unknown>(l, from));
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
  { status: "ok" } | { status: "waiting"; pending: string[] } | { status: "failed"; reasons: string[] };

/**
 * One look at the stack. `failed` only for states that will not fix themselves
 * (unhealthy, exited, dead); a restart loop or a starting healthcheck is `waiting`,
 * and the caller's timeout turns a long wait into a failure.
 */
/** What a release expects, as its shape says (core/compose/compose.ts `ReleaseShape`). */
export interface ExpectedServices {
  long: readonly string[];
  once: readonly string[];
  optional: readonly string[];
  /** Long services compose does not restart (`restart` unset or "no"): an exit 0 is done, as compose sees it. */
  mayExit?: readonly string[];
}

export function assessHealth(shape: ExpectedServices, containers: readonly ContainerState[]): HealthVerdict {
  const pending: string[] = [];
  const reasons: string[] = [];
  for (const service of shape.once) {
    const mine = containers.filter((c) => c.service === service);
    if (mine.length === 0) pending.push(`${service}: has not run yet`);
    for (const c of mine) {
      if (c.state === "exited" && c.exitCode === 0) continue;
      if (c.state === "exited" || c.state === "dead")
        reasons.push(`${service}: run-once container ${c.name} ${c.state} with code ${c.exitCode}`);
      else pending.push(`${service}: ${c.state} (runs once, must exit 0)`);
    }
  }
  for (const service of [...shape.long, ...shape.optional]) {
    const mine = containers.filter((c) => c.service === service);
    if (mine.length === 0) {
      if (shape.long.includes(service)) pending.push(`${service}: no container yet`);
      continue;
    }
    for (const c of mine) {
      if (c.state === "exited" && c.exitCode === 0 && shape.mayExit?.includes(service)) continue;
      if (c.state === "exited" || c.state === "dead")
        reasons.push(`${service}: container ${c.name} ${c.state} with code ${c.exitCode}`);
      else if (c.health === "unhealthy")
        reasons.push(`${service}: container ${c.name} is unhealthy (its healthcheck keeps failing)`);
      else if (c.state !== "running") pending.push(`${service}: ${c.state}`);
      else if (c.health === "starting") pending.push(`${service}: health starting`);
    }
  }
  if (reasons.length > 0) return { status: "failed", reasons };
  if (pending.length > 0) return { status: "waiting", pending };
  return { status: "ok" };
}
