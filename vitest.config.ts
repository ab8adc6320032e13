import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
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
          globalSetup: ["test/testbed/global-setup.ts"],
          setupFiles: ["test/testbed/after-file.ts"],
          // One VPS, one Docker engine: scenarios run one file at a time.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
      {
        test: {
          name: "engine",
          include: ["test/engine/**/*.test.ts"],
          globalSetup: ["test/testbed/global-setup.ts"],
          // Beside the integration files (they have their own pool: one worker), on projects of its own (eng*):
          // in sequence CI would take ~9 min more than its budget allows. Measured on 2026-12-03: the integration
          // files' durations within the machine's noise of a run without it (README: Development).
          testTimeout: 900_000,
          hookTimeout: 1_500_000,
        },
      },
    ],
  },
});
