/**
 * Which compose file is production's when none is named: the first of a short list, in the order users name
 * them (a production file at the root first, then the root's only file, then this repository's example layout).
 */
import { PipelineError } from "../errors.js";

/** Looked for in this order at the source's root (the last one in its `compose/` folder). */
export const COMPOSE_FILE_CANDIDATES = [
  "docker-compose.prod.yml",
  "docker-compose.prod.yaml",
  "compose.prod.yaml",
  "compose.prod.yml",
  "docker-compose.production.yml",
  "docker-compose.production.yaml",
  "compose.production.yaml",
  "compose.production.yml",
  "compose.yaml",
  "compose.yml",
  "docker-compose.yml",
  "docker-compose.yaml",
  "compose/docker-compose.prod.yml",
] as const;

/**
 * The production compose file among the source's files (`has` says whether a path inside the source is a file).
 * None: COMPOSE_NOT_FOUND listing what was looked for.
 */
export function findComposeFile(has: (path: string) => boolean): string {
  const found = COMPOSE_FILE_CANDIDATES.find((f) => has(f));
  if (found) return found;
  throw new PipelineError(
    "COMPOSE_NOT_FOUND",
    `no compose file in the source directory: looked for ${COMPOSE_FILE_CANDIDATES.join(", ")}`,
    "pass --compose-file=<path inside --source>, or set compose-file in vps-pipeline.yml (and check that --source is your repository's checkout, e.g. --source=.)",
  );
}
