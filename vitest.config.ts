import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      // groups run in order (each project must name its own: an unset one runs beside every group)
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], sequence: { groupOrder: 0 } } },
      {
        test: {
          name: "module",
          include: ["test/module/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          sequence: { groupOrder: 0 },
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
          sequence: { groupOrder: 0 },
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
      {
        test: {
          name: "engine",
          include: ["test/engine/**/*.test.ts"],
          globalSetup: ["test/testbed/global-setup.ts"],
          // after the integration files: the engine's CPU would change their timings
          sequence: { groupOrder: 1 },
          testTimeout: 900_000,
          hookTimeout: 1_500_000,
        },
      },
    ],
  },
});
