/**
 * The off-site copy of the data snapshots: a restic repository over SFTP
 * (`sftp:user@host:/path`, or `sftp://user@host:port//path`), reached with an
 * SSH key of its own and the host's key pinned, as the VPS itself is.
 */
import { PipelineError } from "../errors.js";

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
