/** vitest setup file of the integration project: each test file leaves an empty VPS and swarm behind it. */
import { afterAll } from "vitest";
import { removeLeftovers } from "./bed.js";

afterAll(removeLeftovers, 300_000);
