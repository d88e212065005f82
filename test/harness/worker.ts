import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Task } from "graphile-worker";
import { loadConfig, type Config } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import type { Mailer } from "../../src/mail/transport.js";
import { startWorker, type WorkerHandle } from "../../src/worker/runner.js";

/** Configuration for tests: defaults, fast polling, a free HTTP port, plus overrides. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig(
    {
      PMT_HOME: fs.mkdtempSync(path.join(os.tmpdir(), "pmt-worker-home-")),
      HTTP_PORT: "0",
      WORKER_POLL_INTERVAL_MS: "100",
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
      ...env,
    },
    "/nonexistent/.env",
  );
}

export async function startTestWorker(
  url: string,
  options: { extraTasks?: Record<string, Task>; env?: Record<string, string>; mailer?: Mailer } = {},
): Promise<WorkerHandle> {
  const config = testConfig(options.env);
  return startWorker({ config, databaseUrl: url, logger: createLogger(config.logLevel), extraTasks: options.extraTasks, mailer: options.mailer });
}
