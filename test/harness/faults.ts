/**
 * The fault-injection suite's shared parts: worker processes that can be
 * killed, and the summary table. Each scenario records one row (scenario,
 * injected fault, outcome, data lost) after its assertions passed; the
 * global setup prints the table at the end of the run.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, inject } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { seedDemo } from "../../src/exports/demo.js";
import { createLogger } from "../../src/log.js";
import { BIN, ChildHandle } from "./cli.js";
import { createTestDatabase, type TestDatabase } from "./db.js";
import type { FaultRow } from "./fault-table.js";
import { SmtpSink } from "./smtp.js";

export function recordFault(row: FaultRow): void {
  fs.appendFileSync(inject("faultLog"), JSON.stringify(row) + "\n");
}

/** Worker processes (`pmt-worker start`) of one test file; any left running are killed after it. */
export class Workers {
  readonly home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-fault-"));
  private readonly children: ChildHandle[] = [];

  /** `env`: the workers' settings, read when each starts (so it may use values known only in beforeAll). */
  constructor(private readonly env: () => Record<string, string | undefined>) {
    afterAll(() => {
      for (const c of this.children) c.kill("SIGKILL");
    });
  }

  /** Starts one and waits until it takes jobs. Dead workers are found within 2 s; the queue is polled every 200 ms. */
  async start(extra: Record<string, string | undefined> = {}): Promise<ChildHandle> {
    const child = ChildHandle.spawn(BIN, ["start"], {
      PMT_HOME: this.home,
      HTTP_PORT: "0",
      WORKER_DEAD_AFTER_SECONDS: "2",
      WORKER_POLL_INTERVAL_MS: "200",
      ...this.env(),
      ...extra,
    });
    this.children.push(child);
    await child.waitForOutput(/"msg":"worker started"/);
    return child;
  }

  /** kill -9, and wait until it is gone. */
  static async crash(child: ChildHandle): Promise<void> {
    child.kill("SIGKILL");
    await child.exited;
  }

  /** A clean stop: SIGTERM, exit code 0 expected by the caller. */
  static async stop(child: ChildHandle): Promise<number | null> {
    child.kill("SIGTERM");
    return (await child.exited).code;
  }
}

/** The export scenarios' world: a migrated database with `activities` demo activities, an SMTP sink, and workers wired to both. */
export function exportWorld(activities: number): { db: TestDatabase; smtp: SmtpSink; workers: Workers } {
  const world = { workers: new Workers(() => ({ DATABASE_URL: world.db.url, SMTP_URL: world.smtp.url })) } as {
    db: TestDatabase;
    smtp: SmtpSink;
    workers: Workers;
  };
  beforeAll(async () => {
    world.db = await createTestDatabase();
    await migrate(world.db.pool, createLogger("silent"));
    await seedDemo(world.db.pool, activities);
    world.smtp = await SmtpSink.start();
  });
  afterAll(async () => {
    await world.smtp?.down();
  });
  return world;
}
