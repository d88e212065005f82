import { beforeAll, describe, expect, it } from "vitest";
import { createDb } from "../../src/db/kysely.js";
import { migrate } from "../../src/db/migrate.js";
import { pruneHistory } from "../../src/history/runs.js";
import { createLogger } from "../../src/log.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
});

describe("pruneHistory", () => {
  it("deletes finished rows older than the retention, in batches, keeping running and recent ones", async () => {
    await db.pool.query(`
      insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, worker_id, status, started_at, finished_at)
      select g, 'old', 1, 1, 'w', 'succeeded', now() - interval '100 days', now() - interval '100 days'
      from generate_series(1, 25) g;
      insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, worker_id, status, started_at)
      values (100, 'old-running', 1, 1, 'w', 'running', now() - interval '100 days');
      insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, worker_id, status, started_at, finished_at)
      values (101, 'recent', 1, 1, 'w', 'failed', now() - interval '89 days', now() - interval '89 days');`);
    expect(await pruneHistory(createDb(db.pool), 90, 10)).toBe(25);
    const { rows } = await db.pool.query("select task from pmt_jobs.job_run order by task");
    expect(rows.map((r) => r.task)).toEqual(["old-running", "recent"]);
  });
});

describe("the daily prune task", () => {
  it("is in the crontab built from configuration", async () => {
    const { buildCronItems } = await import("../../src/worker/crontab.js");
    const { testConfig } = await import("../harness/worker.js");
    const [item] = buildCronItems(testConfig({ HISTORY_PRUNE_CRON: "15 2 * * *" }));
    expect(item).toMatchObject({ task: "pmt_jobs.history_prune", identifier: "history_prune" });
    expect((item!.match as unknown as { parsedCronMatch: unknown }).parsedCronMatch).toMatchObject({ minutes: [15], hours: [2] });
  });

  it("runs through the history wrapper like any job", async () => {
    const { startTestWorker } = await import("../harness/worker.js");
    const { JobEventLog } = await import("../harness/events.js");
    const log = await JobEventLog.listen(db.url);
    const worker = await startTestWorker(db.url, { env: { HISTORY_RETENTION_DAYS: "1" } });
    try {
      await db.pool.query("select graphile_worker.add_job('pmt_jobs.history_prune')");
      await log.waitFor((e) => e.task === "pmt_jobs.history_prune" && e.status === "succeeded");
      const { rows } = await db.pool.query("select task from pmt_jobs.job_run where task <> 'pmt_jobs.history_prune'");
      expect(rows).toEqual([{ task: "old-running" }]);
    } finally {
      await worker.stop();
      await log.close();
    }
  });
});
