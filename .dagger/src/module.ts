/**
 * What every function of the module layer needs: errors shown with their code
 * and hint. (Reading the module's own API for `dagger check` is module-api.ts.)
 */
import { asPipelineError } from "./core/errors.js";

/** Errors reach the Dagger TUI and CI logs with their code and hint; anything unexpected gets a code too. */
export async function explained<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const err = asPipelineError(e, "running the function");
    throw new Error(err.describe(), { cause: err });
  }
}
