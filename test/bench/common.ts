/** What both halves of `npm run bench` start with: the test bed up, its CA trusted, and medians. */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("../..", import.meta.url));
export const here = fileURLToPath(new URL(".", import.meta.url));

/** Bring the test bed up (idempotent); Node's fetch reads extra CAs at start, so a child process gets them. */
export function startTestbed(): void {
  execFileSync("bash", [`${root}test/testbed/up.sh`], { stdio: ["ignore", "ignore", "inherit"] });
  process.env.NODE_EXTRA_CA_CERTS ??= `${process.env.TESTBED_DIR ?? "/tmp/vps-testbed"}/ca.crt`;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
