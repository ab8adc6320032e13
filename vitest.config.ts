import { defineConfig } from "vitest/config";

/** Integration files that deploy to the test bed's second VPS (TESTBED_VPS=2, test/testbed/vps2.sh). */
const SECOND_VPS_FILES = "test/integration/data.test.ts";

export default defineConfig({
  test: {
    // two at once where a group allows it (unit, module and engine): on two cores vitest would run one
    maxWorkers: 2,
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
      {
        test: {
          name: "module",
          include: ["test/module/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          exclude: [SECOND_VPS_FILES],
          globalSetup: ["test/testbed/global-setup.ts"],
          setupFiles: ["test/testbed/after-file.ts"],
          // One VPS, one Docker engine: scenarios run one file at a time.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
      // The second VPS's lane (test/run.sh runs it beside the one above, in a vitest of its own: vitest runs every
      // project without file parallelism in one queue): the real engine's suite, then the data scenarios.
      {
        test: {
          name: "data",
          include: [SECOND_VPS_FILES],
          env: { TESTBED_VPS: "2" },
          globalSetup: ["test/testbed/global-setup.ts"],
          setupFiles: ["test/testbed/after-file.ts"],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
      {
        test: {
          name: "engine",
          include: ["test/engine/**/*.test.ts"],
          env: { TESTBED_VPS: "2" },
          globalSetup: ["test/testbed/global-setup.ts", "test/engine/global-setup.ts"],
          // On projects of its own (eng*), its two files at once on one engine.
          testTimeout: 900_000,
          hookTimeout: 1_500_000,
        },
      },
    ],
  },
});
