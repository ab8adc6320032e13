/**
 * What a secret's text means, by kind. Values read with `file:` or `cmd:` end
 * with the newline the editor, `echo` or `pass` wrote: a token or password is
 * one word, so the whitespace around it is never part of it. A private key and
 * a `.env` are files and are used byte for byte. Messages never carry a value.
 */
import { PipelineError } from "./errors.js";

/** A token or registry password: one word, surrounding whitespace removed. */
export function tokenValue(raw: string, what: string): string {
  const v = raw.trim();
  if (v === "")
    throw new PipelineError(
      "INVALID_INPUT",
      `${what}: the secret is empty`,
      `check the secret behind ${what} (an unset or misnamed CI secret arrives as an empty string)`,
    );
  if (/\s/.test(v))
    throw new PipelineError(
      "INVALID_INPUT",
      `${what}: the secret holds more than one word or line`,
      `${what} must hold the token alone; a file with several lines or a command printing more than the token does not fit`,
    );
  return v;
}

/** A key's passphrase: only line breaks around it go (a space may belong to a passphrase). */
export function passphraseValue(raw: string): string {
  return raw.replace(/^[\r\n]+|[\r\n]+$/g, "");
}

/**
 * The backup repository's password: one line (it travels as the first line of a
 * script's stdin), the file's newline dropped, never empty (an empty secret
 * from CI would make a repository anyone can open with nothing).
 */
export function backupPasswordValue(raw: string): string {
  const v = raw.replace(/^[\r\n]+|[\r\n]+$/g, "");
  if (v === "")
    throw new PipelineError(
      "INVALID_INPUT",
      "backupPassword: the secret is empty",
      "set the backup password secret (CI passes an empty string for a missing one)",
    );
  if (/[\r\n\0]/.test(v))
    throw new PipelineError("INVALID_INPUT", "backupPassword: must be one line", "use a password without line breaks");
  return v;
}

/**
 * The production `.env`, used as given, but never empty: GitHub passes an
 * empty string for a missing or wrongly scoped secret, and uploading that
 * would replace the live configuration with nothing.
 */
export function envFileValue(raw: string, what = "envFile"): string {
  if (raw.trim() === "") {
    throw new PipelineError(
      "INVALID_INPUT",
      `${what}: the production .env secret is empty; nothing was uploaded and the server's .env is unchanged`,
      "check that the secret exists and this job may read it (in GitHub: the environment's secrets); to keep the server's .env, leave --env-file out",
    );
  }
  return raw;
}
