/**
 * vitest global setup for the engine project: its files run at once on one engine, so none of them stops it; the
 * engine stops here, after both, when a file started it (unless TEST_ENGINE_KEEP=1: the next run reuses it warm).
 */
import { existsSync, rmSync } from "node:fs";
import { STARTED, stopEngine } from "./cli.js";

export function setup(): void {
  rmSync(STARTED, { force: true });
}

export function teardown(): void {
  if (!existsSync(STARTED)) return;
  rmSync(STARTED, { force: true });
  if (process.env.TEST_ENGINE_KEEP !== "1") stopEngine();
}
