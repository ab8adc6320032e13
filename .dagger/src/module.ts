/**
 * What every function of the module layer needs: errors shown with their code
 * and hint. (Reading the module's own API for `dagger check` is module-api.ts.)
 */
import { dag, type JSON as DaggerJson } from "@dagger.io/dagger";
import { asPipelineError, exitCodeOf, failureJson, type PipelineError } from "./core/errors.js";

/** Functions calling functions (ship's deploy): only the outermost answers the call. */
let depth = 0;

/**
 * Errors reach the Dagger TUI and CI logs with their code and hint (one JSON object with `--format=json`); anything
 * unexpected gets a code too.
 */
export async function explained<T>(f: () => Promise<T>, format = "text"): Promise<T> {
  depth++;
  try {
    return await f();
  } catch (e) {
    if (e instanceof Explained) throw e;
    const err = asPipelineError(e, "running the function");
    const message = format === "json" ? failureJson(err) : err.describe();
    if (depth === 1) await answerWithExitCode(err, message);
    throw new Explained(message, err);
  } finally {
    depth--;
  }
}

class Explained extends Error {
  constructor(message: string, cause: PipelineError) {
    super(message, { cause });
  }
}

/**
 * The call's error as an exec error carrying the class's exit code (core/errors.ts EXIT_CLASSES), which is what
 * `dagger call` takes its own exit code from; then the runtime ends, as the SDK's entrypoint does after an error.
 * Outside the engine (tests), nothing: the error is thrown.
 */
async function answerWithExitCode(err: PipelineError, message: string): Promise<void> {
  if (!process.env.DAGGER_SESSION_PORT) return;
  const exitCode = exitCodeOf(err.code);
  const json = (v: unknown) => JSON.stringify(v) as unknown as DaggerJson;
  try {
    await dag.currentFunctionCall().returnError(
      dag
        .error(message)
        .withValue("_type", json("EXEC_ERROR"))
        .withValue("exitCode", json(exitCode))
        .withValue("cmd", json(["vps-pipeline", err.code])),
    );
  } catch {
    return; // the SDK's own path answers instead
  }
  process.exit(1);
}
