/**
 * vitest global setup for the engine project: the last engine file to end stops the engine (suite.ts); this stops it
 * at the end of the whole run when a file started it and could not (it failed before its afterAll), unless
 * TEST_ENGINE_KEEP=1 (the next run reuses it warm).
 */
import { existsSync, rmSync } from "node:fs";
import { RUNNING, STARTED, stopEngine } from "./cli.js";

export function setup(): void {
  rmSync(STARTED, { force: true });
  rmSync(RUNNING, { recursive: true, force: true });
}

export function teardown(): void {
  if (!existsSync(STARTED)) return;
  rmSync(STARTED, { force: true });
  if (process.env.TEST_ENGINE_KEEP !== "1") stopEngine();
}
