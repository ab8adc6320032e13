import { defineConfig } from "vitest/config";

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
          globalSetup: ["test/testbed/global-setup.ts", "test/engine/global-setup.ts"],
          // On projects of its own (eng*), its two files at once on one engine. Not beside the integration files:
          // vitest runs a project without file parallelism in a group of its own after the others (README:
          // Development).
          testTimeout: 900_000,
          hookTimeout: 1_500_000,
        },
      },
    ],
  },
});
