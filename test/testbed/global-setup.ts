/**
 * vitest global setup for the integration project: brings the test bed up (it is
 * idempotent) and tears it down at the end unless TESTBED_KEEP=1.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));

export function setup(): void {
  // test/run.sh brought it up once for both of its lanes: an up.sh at once in each would rewrite testbed.json while
  // the other lane's files read it
  if (process.env.TESTBED_UP !== "1") execFileSync("bash", [`${here}up.sh`], { stdio: "inherit" });
  // Node's fetch reads extra CAs only at start: test workers, forked after this, get the test bed's CA.
  process.env.NODE_EXTRA_CA_CERTS = `${process.env.TESTBED_DIR ?? "/tmp/vps-testbed"}/ca.crt`;
}

export function teardown(): void {
  if (process.env.TESTBED_KEEP === "1") return;
  execFileSync("bash", [`${here}down.sh`], { stdio: "inherit" });
}
