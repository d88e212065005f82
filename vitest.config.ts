import { defineConfig } from "vitest/config";

/**
 * Two projects: `unit` (test/unit/: the pure cores, no PostgreSQL, seconds;
 * `npm run test:unit`) and `integration` (the rest, against a real PostgreSQL
 * the global setup starts, with real SMTP and S3 servers in-process).
 * `npm test` runs both.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 10_000,
          // First, on its own: seconds, and a broken core shows before the long run.
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          exclude: ["test/unit/**", "**/node_modules/**"],
          globalSetup: ["test/harness/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          pool: "forks",
          // Each file gets its own database; two at a time suits a 2-core machine.
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
