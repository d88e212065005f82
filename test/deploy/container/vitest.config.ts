// The container test: needs root and a running dockerd, so it is not part of
// `npm test`; .ci/container builds the images and runs it with this config.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "container",
    include: ["test/deploy/container/*.docker.ts"],
    globalSetup: ["test/harness/global-setup.ts"],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: "forks",
    maxWorkers: 1,
  },
});
