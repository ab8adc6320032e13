/**
 * The off-site copy of the data snapshots: a restic repository over SFTP
 * (`sftp:user@host:/path`, or `sftp://user@host:port//path`), reached with an
 * SSH key of its own and the host's key pinned, as the VPS itself is; or in
 * S3-compatible storage (`s3:https://host/bucket/path`: B2, R2, Wasabi, AWS…),
 * reached with an access key and its secret over TLS, verified against the
 * system's CAs or the one given.
 */
import { PipelineError } from "../errors.js";
import { parseDotenv } from "../compose/env-file.js";

export type OffsiteKind = "sftp" | "s3";

/** The kind of off-site repository, from restic's own syntax; anything else is refused. */
export function offsiteKind(repository: string): OffsiteKind {
  if (repository.startsWith("sftp:")) return "sftp";
  if (/^s3:http:\/\//.test(repository))
    throw new PipelineError(
      "INVALID_INPUT",
      `backupOffsite: \`${repository}\` is S3 over plain HTTP: the snapshots' credentials and data would travel unencrypted`,
      "write s3:https://host/bucket/path (give the CA with --backup-offsite-host-key when the certificate is not publicly trusted)",
    );
  if (/^s3:(https:\/\/)?[A-Za-z0-9.-]+(:\d+)?\/[a-z0-9][a-z0-9.-]{1,62}(\/\S*)?$/.test(repository)) return "s3";
  throw new PipelineError(
    "INVALID_INPUT",
    `backupOffsite: \`${repository}\` is neither an SFTP nor an S3 repository`,
    "write sftp:user@host:/path, or s3:https://host/bucket/path (S3-compatible storage)",
  );
}

/** An S3 repository's credentials: the key's id and its secret (and the region, where the storage wants one). */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  region?: string;
}

/**
 * The `--backup-offsite-key` secret of an S3 repository: `AWS_ACCESS_KEY_ID=…` and `AWS_SECRET_ACCESS_KEY=…` lines
 * (`AWS_DEFAULT_REGION=…` optional), as the storage's console shows them. Messages never carry a value.
 */
export function s3Credentials(text: string): S3Credentials {
  const v = parseDotenv(text);
  const id = v.get("AWS_ACCESS_KEY_ID")?.trim() ?? "";
  const secret = v.get("AWS_SECRET_ACCESS_KEY")?.trim() ?? "";
  const region = v.get("AWS_DEFAULT_REGION")?.trim();
  const bad = (x: string) => x === "" || /\s/.test(x);
  if (bad(id) || bad(secret))
    throw new PipelineError(
      "INVALID_INPUT",
      `backupOffsiteKey: an S3 repository's secret must hold AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=… lines (${bad(id) ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY"} is missing or empty)`,
      'make the secret from the storage\'s access key: printf \'AWS_ACCESS_KEY_ID=%s\\nAWS_SECRET_ACCESS_KEY=%s\\n\' "$ID" "$SECRET"',
    );
  return { accessKeyId: id, secretAccessKey: secret, ...(region ? { region } : {}) };
}

/** The CA an S3 endpoint's certificate is checked against: "" (the system's CAs) or one PEM certificate. */
export function offsiteCa(hostKey: string): string {
  const pem = hostKey.trim();
  if (pem === "") return "";
  if (!/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----$/.test(pem.replace(/\r\n/g, "\n")))
    throw new PipelineError(
      "INVALID_INPUT",
      "backupOffsiteHostKey: for an S3 repository it is the CA certificate (PEM) the endpoint's certificate is signed by, or empty for the system's CAs",
      "give the CA's certificate file's content (-----BEGIN CERTIFICATE-----…), not a key",
    );
  return `${pem.replace(/\r\n/g, "\n")}\n`;
}

/** Where restic's ssh goes: `host`, or `[host]:port` as known_hosts names a host on another port. */
export function offsiteHost(repository: string): string {
  const short = /^sftp:(?:[^@/:\s]+@)?([^@/:\s[\]]+):\/?\S+$/.exec(repository);
  if (short && !repository.startsWith("sftp://")) return short[1]!;
  const long = /^sftp:\/\/(?:[^@/:\s]+@)?([^@/:\s[\]]+)(?::(\d+))?\/\S+$/.exec(repository);
  if (long) return long[2] && long[2] !== "22" ? `[${long[1]}]:${long[2]}` : long[1]!;
  throw new PipelineError(
    "INVALID_INPUT",
    `backupOffsite: \`${repository}\` is not an SFTP repository`,
    "write sftp:user@host:/path (or sftp://user@host:port//path); the off-site host needs SSH and SFTP only",
  );
}

const KEY_TYPES =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)$/;

/**
 * The known_hosts line that pins the off-site host: given whole (`host type key`), or as its key alone
 * (`type key`, the host taken from the repository). One line: it is written in the restic container.
 */
export function offsiteKnownHosts(repository: string, hostKey: string): string {
  const host = offsiteHost(repository);
  const words = hostKey.trim().split(/\s+/);
  const [type, key] = KEY_TYPES.test(words[0] ?? "") ? [words[0], words[1]] : [words[1], words[2]];
  const named = KEY_TYPES.test(words[0] ?? "") ? host : words[0]!;
  if (!type || !KEY_TYPES.test(type) || !key || !/^[A-Za-z0-9+/]+={0,3}$/.test(key) || /[\r\n]/.test(hostKey.trim())) {
    throw new PipelineError(
      "INVALID_INPUT",
      "backupOffsiteHostKey: must be the off-site host's public key as a known_hosts line (`host ssh-ed25519 AAAA…`) or the key alone (`ssh-ed25519 AAAA…`)",
      `on a machine you trust: ssh-keyscan -t ed25519 ${host.replace(/^\[(.*)\]:(\d+)$/, "-p $2 $1")}, checked against the host's own /etc/ssh/ssh_host_ed25519_key.pub`,
    );
  }
  return `${named} ${type} ${key}`;
}

/**
 * An off-site restic repository: over SFTP (`sftp:user@host:/path`, the SSH key it takes, the host's key pinned), or
 * in S3-compatible storage (`s3:https://host/bucket/path`, an access key and its secret, the endpoint's CA when it
 * is not a public one). The key and the secret are secrets: they reach restic on its stdin only.
 */
export type OffsiteRepository =
  | {
      kind: "sftp";
      repository: string;
      sshKey: string;
      /** A known_hosts line for the off-site host. */
      knownHosts: string;
    }
  | {
      kind: "s3";
      repository: string;
      credentials: S3Credentials;
      /** PEM, or "" for the system's CAs. */
      ca: string;
    };

/** The second line of an off-site script's stdin (after the password): the repository's secret, base64, one line. */
export function offsiteSecretLine(o: OffsiteRepository): string {
  const text =
    o.kind === "sftp"
      ? o.sshKey
      : `${o.credentials.accessKeyId}\n${o.credentials.secretAccessKey}\n${o.credentials.region ?? ""}\n`;
  return Buffer.from(text).toString("base64");
}

/**
 * What the off-site scripts are given besides the secret (core/data/data-commands.ts): the repository, its kind, and
 * how its host is checked: the known_hosts line, or the CA as base64 ("" for the system's).
 */
export function offsiteTarget(o: OffsiteRepository): { kind: OffsiteKind; repository: string; pin: string } {
  const pin = o.kind === "sftp" ? o.knownHosts : o.ca ? Buffer.from(o.ca).toString("base64") : "";
  return { kind: o.kind, repository: o.repository, pin };
}
