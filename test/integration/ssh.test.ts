/**
 * ssh.ts against the test bed's real OpenSSH server: key formats, host key pins,
 * failures that must be explained, exec and atomic upload.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseHostKeyPin } from "../../.dagger/src/core/config.js";
import { connect, fingerprint } from "../../.dagger/src/remote/ssh.js";
import { bed, sh, sshOptions } from "../testbed/bed.js";

const key = (name: keyof typeof bed.vps.keys) => readFileSync(bed.vps.keys[name], "utf8");

async function whoami(opts: Parameters<typeof sshOptions>[0]): Promise<string> {
  const s = await connect(sshOptions(opts));
  try {
    return (await s.exec(["id", "-un"])).stdout.trim();
  } finally {
    s.close();
  }
}

describe("ssh", () => {
  it("logs in with ed25519 (OpenSSH), rsa (PEM, with passphrase) and ecdsa keys", async () => {
    expect(await whoami({})).toBe("deploy");
    expect(await whoami({ privateKey: key("rsaPem"), passphrase: bed.vps.rsaPassphrase })).toBe("deploy");
    expect(await whoami({ privateKey: key("ecdsa") })).toBe("deploy");
  });

  it("accepts a SHA256 fingerprint pin equal to what ssh-keygen prints", async () => {
    const fp = sh(`ssh-keygen -lf ${bed.vps.hostKeyFile}`).split(" ")[1]!;
    expect(await whoami({ hostKey: parseHostKeyPin(fp)! })).toBe("deploy");
    expect(fingerprint(Buffer.from(readFileSync(bed.vps.hostKeyFile, "utf8").split(" ")[1]!, "base64"))).toBe(fp);
  });

  it("asks the server for the pinned key type, so a server with several host keys still matches", async () => {
    const ecdsa = readFileSync(`${bed.stateDir}/ssh_host_ecdsa_key.pub`, "utf8");
    const rsa = readFileSync(`${bed.stateDir}/ssh_host_rsa_key.pub`, "utf8");
    expect(await whoami({ hostKey: parseHostKeyPin(ecdsa)! })).toBe("deploy");
    expect(await whoami({ hostKey: parseHostKeyPin(rsa)! })).toBe("deploy");
  });

  it("explains a wrong passphrase, a public key given as private, an unknown key and an unreachable port", async () => {
    await expect(whoami({ privateKey: key("rsaPem"), passphrase: "wrong" })).rejects.toMatchObject({
      code: "SSH_KEY_INVALID",
      hint: expect.stringMatching(/passphrase/),
    });
    await expect(whoami({ privateKey: key("rsaPem") })).rejects.toMatchObject({ code: "SSH_KEY_INVALID" });
    await expect(whoami({ privateKey: readFileSync(`${bed.vps.keys.ed25519}.pub`, "utf8") })).rejects.toMatchObject({
      code: "SSH_KEY_INVALID",
    });
    await expect(whoami({ privateKey: key("stranger") })).rejects.toMatchObject({
      code: "SSH_AUTH_FAILED",
      hint: expect.stringMatching(/authorized_keys/),
    });
    const err = await whoami({ port: 2222, retries: 2, retryDelayMs: 50 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "SSH_UNREACHABLE" });
    expect(String((err as Error).message)).toMatch(/after 3 attempt\(s\)/);
  });

  it("runs commands with stdin and returns code, stdout and stderr without judging them", async () => {
    const s = await connect(sshOptions());
    try {
      expect(await s.exec(["sh", "-c", "cat; echo oops >&2; exit 3"], { stdin: "hello\n" })).toEqual({
        code: 3,
        stdout: "hello\n",
        stderr: "oops\n",
      });
      const hostile = ["", "it's", "$(id)", "`id`", "a\nb", "ünïcødé", "*", "~"];
      expect((await s.exec(["printf", "%s\\0", ...hostile])).stdout.split("\0").slice(0, -1)).toEqual(hostile);
      await expect(s.run(["false"], "the false command")).rejects.toMatchObject({
        code: "REMOTE_COMMAND_FAILED",
        message: expect.stringMatching(/the false command failed .* exit code 1/),
      });
    } finally {
      s.close();
    }
  });

  it("uploads atomically with the mode set before the content lands", async () => {
    const s = await connect(sshOptions());
    try {
      await s.upload("upload-test/secret.env", "A=1\n", "600");
      await s.upload("upload-test/secret.env", "A=2\n", "600");
      expect(sh("stat -c '%a %U' /home/deploy/upload-test/secret.env").trim()).toBe("600 deploy");
      expect(sh("cat /home/deploy/upload-test/secret.env")).toBe("A=2\n");
      expect(sh("ls -A /home/deploy/upload-test")).toBe("secret.env\n");
    } finally {
      s.close();
      sh("rm -rf /home/deploy/upload-test");
    }
  });
});
