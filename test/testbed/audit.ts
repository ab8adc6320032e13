/**
 * The secret audit every integration scenario ends with. Kept apart from bed.ts,
 * which the bench and the demo load too, so that they do not load vitest.
 */
import { afterAll, afterEach, beforeAll, beforeEach, expect } from "vitest";
import { bed, filesContaining, printed, privateKey, registryPassword, sampleProcesses, sh } from "./bed.js";

const HOME = bed.vps.home;

/**
 * Every scenario of a file that calls this ends with the same audit: the registry
 * password was on no process command line while it ran (the VPS shares this
 * machine's process table), the password and the SSH private key are in no file
 * under the deploy user's home, nothing we printed holds them, and no throwaway
 * docker config is left behind. `scope: "file"` audits once around the whole
 * file, for files whose scenarios run concurrently (one would see another's
 * throwaway config mid-deploy).
 */
export function auditSecrets(
  secrets: () => string[] = () => [registryPassword],
  scope: "each" | "file" = "each",
): void {
  let sampler: ReturnType<typeof sampleProcesses> | undefined;
  (scope === "each" ? beforeEach : beforeAll)(() => {
    sampler = sampleProcesses(...secrets());
  });
  (scope === "each" ? afterEach : afterAll)(async () => {
    const ps = await sampler!.stop();
    expect(ps.samples).toBeGreaterThan(0);
    expect(ps.hits).toEqual([]);
    const keyBody = privateKey.split("\n")[1]!;
    for (const needle of [...secrets(), keyBody]) {
      expect(filesContaining(HOME, needle)).toEqual([]);
      expect(printed.join("\n")).not.toContain(needle);
    }
    expect(sh(`ls -a ${HOME} ${HOME}/production/*/.releases 2>/dev/null || true`)).not.toMatch(/vps-pipeline-auth/);
    printed.length = 0;
  });
}
