/**
 * The module's closed choices as Dagger enums, so that `--help` lists their values. Each member is named as its
 * value: the CLI takes member names, and `--format=json` stays what it always was.
 */

/** How a function's result is printed. */
export enum Format {
  /** Lines for a terminal. */
  text = "text",
  /** One JSON document, for scripts (a failure too, as the CLI's Error: line). */
  json = "json",
  /** Markdown, for a GitHub job summary. */
  markdown = "markdown",
}

/** What runs the release on the host. */
export enum Orchestrator {
  /** One VPS with Docker Compose. */
  compose = "compose",
  /** A Docker Swarm manager: docker stack deploy. */
  swarm = "swarm",
}

/** What a new preview does when the limit of live previews is reached. */
export enum PreviewWhenFull {
  /** Remove the preview pushed longest ago. */
  evict = "evict",
  /** Refuse the new one. */
  refuse = "refuse",
}
