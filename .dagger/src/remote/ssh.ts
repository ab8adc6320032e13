/**
 * The only file that imports ssh2. One connection per deploy; ssh2's events are
 * wrapped in promises, listeners removed and channels closed when done.
 */
import { createHash } from "node:crypto";
import ssh2 from "ssh2";
import type { Client as SshClient, ClientChannel, ConnectConfig } from "ssh2";
import type { HostKeyPin } from "../core/config.js";
import { PipelineError, tail, type ErrorCode } from "../core/errors.js";
import { shellJoin } from "../core/shell.js";
import { writeFileAtomic } from "../core/server/server-commands.js";
import { type Argv } from "../core/shell.js";

export interface SshOptions {
  host: string;
  port: number;
  user: string;
  hostKey: HostKeyPin;
  /** Private key text, OpenSSH or PEM (ed25519, rsa, ecdsa). */
  privateKey: string;
  passphrase?: string;
  connectTimeoutMs?: number;
  /** Extra attempts after a refused or timed-out connection, with doubling backoff. */
  retries?: number;
  retryDelayMs?: number;
  keepaliveMs?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunningCommand {
  /** Resolves with the exit status once the remote command ends. */
  result: Promise<ExecResult>;
  /** Close the command's stdin (a lock holder then lets go). */
  closeStdin(): void;
}

/** `SHA256:…` as `ssh-keygen -lf` prints it. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

// ssh2 is CommonJS: Node's ESM loader cannot see its named exports, so take them off the default one.
const { Client, utils } = ssh2;

function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return "unknown";
  const len = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + len).toString("latin1");
}

/** Host key algorithms to ask for, so the server offers the kind of key that was pinned. */
function hostKeyAlgorithms(pin: HostKeyPin): string[] | undefined {
  if (pin.kind !== "key") return undefined;
  if (pin.keyType === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  return [pin.keyType];
}

function checkPrivateKey(key: string, passphrase: string | undefined): void {
  const parsed = utils.parseKey(key, passphrase);
  const first = Array.isArray(parsed) ? parsed[0] : parsed;
  if (first instanceof Error || first === undefined) {
    const why = first instanceof Error ? first.message : "no key found";
    const hint = /passphrase/i.test(why)
      ? "the key is encrypted: pass its passphrase, or give a key without one"
      : "pass the private key itself (the file that starts with `-----BEGIN OPENSSH PRIVATE KEY-----` or `-----BEGIN … PRIVATE KEY-----`), not the .pub file";
    throw new PipelineError("SSH_KEY_INVALID", `the SSH private key cannot be read: ${why}`, hint);
  }
  if (!first.isPrivateKey()) {
    throw new PipelineError(
      "SSH_KEY_INVALID",
      "the SSH key given is a public key",
      "pass the private key; the public one belongs in the server's authorized_keys",
    );
  }
}

const RETRYABLE = new Set(["ECONNREFUSED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET", "EAI_AGAIN"]);

function isRetryable(e: unknown): boolean {
  const err = e as { code?: string; level?: string; message?: string };
  return (
    (err.code !== undefined && RETRYABLE.has(err.code)) ||
    err.level === "client-timeout" ||
    /timed out/i.test(err.message ?? "")
  );
}

function explain(e: unknown, o: SshOptions, attempts: number): PipelineError {
  if (e instanceof PipelineError) return e;
  const err = e as { code?: string; level?: string; message?: string };
  const where = `${o.user}@${o.host}:${o.port}`;
  if (err.level === "client-authentication") {
    return new PipelineError(
      "SSH_AUTH_FAILED",
      `${where} refused the SSH key`,
      `add the public half of this key to ~${o.user}/.ssh/authorized_keys on the server, and check the user name`,
      { cause: e },
    );
  }
  if (isRetryable(e)) {
    return new PipelineError(
      "SSH_UNREACHABLE",
      `cannot reach ${where} after ${attempts} attempt(s): ${err.message ?? err.code}`,
      "check the host and port, that sshd runs, and that a firewall lets this runner in (GitHub-hosted runners connect from changing addresses)",
      { cause: e },
    );
  }
  return new PipelineError(
    "SSH_FAILED",
    `SSH to ${where} failed: ${err.message ?? String(e)}`,
    "run `ssh -v` with the same key to see where it stops",
    { cause: e },
  );
}

export class SshSession {
  private lost: Error | undefined;
  private readonly onLost = new Set<(e: Error) => void>();

  constructor(
    private readonly client: SshClient,
    readonly where: string,
  ) {
    const lose = (e: Error) => {
      if (this.lost) return;
      this.lost = e;
      for (const f of this.onLost) f(e);
    };
    client.on("error", (e) => lose(e));
    client.on("close", () => lose(new Error("connection closed")));
  }

  /** Start a command; the caller reads its output and decides what a non-zero code means. */
  start(
    command: Argv,
    opts: {
      stdin?: string | Buffer;
      keepStdinOpen?: boolean;
      /** Each chunk of stdout as it comes; the result's stdout is then empty (the caller keeps what it needs). */
      onStdout?: (chunk: string) => void;
    } = {},
  ): RunningCommand {
    let channel: ClientChannel | undefined;
    let stdinClosed = false;
    const closeStdin = () => {
      stdinClosed = true;
      channel?.end();
    };
    const result = new Promise<ExecResult>((resolve, reject) => {
      const lostError = (e: Error) =>
        new PipelineError(
          "SSH_CONNECTION_LOST",
          `the SSH connection to ${this.where} dropped while running \`${command[0]}\`: ${e.message}`,
          "run the same deploy again: it takes the lock anew and converges",
          { cause: e },
        );
      if (this.lost) return reject(lostError(this.lost));
      this.client.exec(shellJoin(command), (err, stream) => {
        if (err) return reject(lostError(err));
        channel = stream;
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let exit: { code: number | null; signal?: string } | undefined;
        const onLost = (e: Error) => finish(e);
        const finish = (lostWith?: Error) => {
          this.onLost.delete(onLost);
          stream.removeAllListeners();
          stream.stderr.removeAllListeners();
          stream.on("error", () => {}); // a late channel error must not crash the process
          const stdout = Buffer.concat(out).toString("utf8");
          const stderr = Buffer.concat(errOut).toString("utf8");
          if (exit === undefined || lostWith)
            return reject(lostError(lostWith ?? new Error("channel closed without an exit status")));
          const code = exit.code ?? 128;
          resolve({ code, stdout, stderr: exit.signal ? `${stderr}killed by signal ${exit.signal}\n` : stderr });
        };
        this.onLost.add(onLost);
        stream.on("data", (d: Buffer) => {
          if (opts.onStdout) opts.onStdout(d.toString("utf8"));
          else out.push(d);
        });
        stream.stderr.on("data", (d: Buffer) => errOut.push(d));
        stream.on("exit", (code: number | null, signal?: string) => {
          exit = signal ? { code, signal } : { code };
        });
        stream.on("close", () => finish());
        if (opts.stdin !== undefined) stream.write(opts.stdin);
        if (!opts.keepStdinOpen || stdinClosed) stream.end();
      });
    });
    return { result, closeStdin };
  }

  /** Run a command to its end: `{code, stdout, stderr}`; a non-zero code is the caller's call. */
  exec(command: Argv, opts: { stdin?: string | Buffer } = {}): Promise<ExecResult> {
    return this.start(command, opts).result;
  }

  /** Run a command that must succeed; otherwise an error in execa's shape with the stderr tail. */
  async run(
    command: Argv,
    what: string,
    opts: { stdin?: string | Buffer; hint?: string; code?: ErrorCode } = {},
  ): Promise<string> {
    const r = await this.exec(command, opts);
    if (r.code !== 0) {
      const tailText = tail(r.stderr.trim() || r.stdout, 8);
      throw new PipelineError(
        opts.code ?? "REMOTE_COMMAND_FAILED",
        `${what} failed on ${this.where} with exit code ${r.code}: ${command[0]}\n${tailText}`,
        opts.hint ?? "read the output above; the command ran as the deploy user",
      );
    }
    return r.stdout;
  }

  /** Write a file atomically with `mode` (e.g. "600"): temp file, mode first, then content, then rename. */
  async upload(path: string, content: string | Buffer, mode: string): Promise<void> {
    await this.run(writeFileAtomic(path, mode), `writing ${path}`, {
      stdin: content,
      hint: "check that the deploy user owns the deploy directory and the disk is not full",
    });
  }

  close(): void {
    this.client.removeAllListeners("ready");
    this.client.end();
  }
}

function connectOnce(o: SshOptions): Promise<SshClient> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let offered: { type: string; fp: string } | undefined;
    let refused = false;
    const done = () => {
      client.removeListener("ready", onReady);
      client.removeListener("error", onError);
    };
    const onReady = () => {
      done();
      resolve(client);
    };
    const onError = (e: Error) => {
      done();
      client.on("error", () => {}); // late errors of a connection we gave up on
      client.end();
      if (refused && offered) {
        // The pin as a fingerprint too: the first base64 characters of every ed25519 key are the same.
        const pinned =
          o.hostKey.kind === "fingerprint"
            ? o.hostKey.fingerprint
            : `${o.hostKey.keyType} ${fingerprint(Buffer.from(o.hostKey.keyBase64, "base64"))}`;
        reject(
          new PipelineError(
            "HOST_KEY_MISMATCH",
            `host key of ${o.host}:${o.port} does not match the pinned one: the server offered ${offered.type} ${offered.fp}, pinned was ${pinned}. Nothing was sent.`,
            "if the server was reinstalled, get its key on the server itself (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) and update the pin; otherwise someone may be in between: do not deploy",
            { cause: e },
          ),
        );
      } else reject(e);
    };
    client.once("ready", onReady);
    client.once("error", onError);
    const serverHostKey = hostKeyAlgorithms(o.hostKey);
    const config: ConnectConfig = {
      host: o.host,
      port: o.port,
      username: o.user,
      privateKey: o.privateKey,
      readyTimeout: o.connectTimeoutMs ?? 15_000,
      keepaliveInterval: o.keepaliveMs ?? 10_000,
      keepaliveCountMax: 3,
      // Fail closed: checked before authentication, a mismatch ends the handshake.
      hostVerifier: (key: Buffer) => {
        offered = { type: keyTypeOf(key), fp: fingerprint(key) };
        const ok =
          o.hostKey.kind === "fingerprint"
            ? offered.fp === o.hostKey.fingerprint
            : key.toString("base64") === o.hostKey.keyBase64;
        refused = !ok;
        return ok;
      },
    };
    if (o.passphrase !== undefined) config.passphrase = o.passphrase;
    if (serverHostKey)
      config.algorithms = { serverHostKey: serverHostKey as NonNullable<ConnectConfig["algorithms"]>["serverHostKey"] };
    client.connect(config);
  });
}

/** `SHA256:…` of the public half of a private key: names who deploys when nobody said (`--by`). */
export function publicKeyFingerprint(privateKey: string, passphrase?: string): string | undefined {
  const parsed = utils.parseKey(privateKey, passphrase);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return key && !(key instanceof Error) ? fingerprint(key.getPublicSSH()) : undefined;
}

/** Open the deploy's SSH connection: key checked first, host key pinned, retries on refused or timed-out connects. */
export async function connect(o: SshOptions): Promise<SshSession> {
  checkPrivateKey(o.privateKey, o.passphrase);
  const retries = o.retries ?? 3;
  let delay = o.retryDelayMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    try {
      const client = await connectOnce(o);
      return new SshSession(client, `${o.user}@${o.host}:${o.port}`);
    } catch (e) {
      if (!isRetryable(e) || attempt > retries) throw explain(e, o, attempt);
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
}
