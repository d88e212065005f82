/**
 * Two worker processes on one database: every job runs once (SKIP LOCKED),
 * a cron item fires once per schedule across both (one backup per database
 * per run), and both stop cleanly.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { BIN, ChildHandle } from "../harness/cli.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { until } from "../harness/wait.js";

let db: TestDatabase;
const workers: ChildHandle[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
});

afterAll(() => {
  for (const w of workers) w.kill("SIGKILL");
});

describe("two workers", () => {
  it("share the queue, run each job once, fire each cron item once, and stop cleanly", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-two-"));
    const env = {
      DATABASE_URL: db.url,
      PMT_HOME: home,
      BACKUP_DIR: path.join(home, "backups"),
      BACKUP_CRON: "* * * * *",
      HTTP_PORT: "0",
      WORKER_CONCURRENCY: "2",
      LOG_LEVEL: "info",
    };
    for (let i = 0; i < 2; i++) workers.push(ChildHandle.spawn(BIN, ["start"], env));
    await Promise.all(workers.map((w) => w.waitForOutput(/"msg":"worker started"/)));

    await db.pool.query(
      "select graphile_worker.add_jobs(array(select row('pmt_jobs.noop', json_build_object('sleepMs', 5), null, null, null, null, null, null)::graphile_worker.job_spec from generate_series(1, 200)))",
    );
    const runs = await until(
      async () => {
        const { rows } = await db.pool.query<{ job_id: number; worker_id: string; status: string }>(
          "select job_id, worker_id, status from pmt_jobs.job_run where task = 'pmt_jobs.noop'",
        );
        return rows.length === 200 && rows.every((r) => r.status === "succeeded") ? rows : undefined;
      },
      "200 no-op jobs to succeed",
      60_000,
    );
    expect(new Set(runs.map((r) => r.job_id)).size).toBe(200);
    expect(new Set(runs.map((r) => r.worker_id)).size).toBe(2);

    // The next minute's cron tick: both workers see it, one backup runs.
    const backup = await until(
      async () => {
        const { rows } = await db.pool.query("select id, status, started_at from pmt_jobs.backup where status <> 'running' order by id limit 1");
        return rows.length ? rows : undefined;
      },
      "the cron backup",
      90_000,
      250,
    );
    // Give a duplicate, if any, the time to show up.
    await until(
      async () => (await db.pool.query("select 1 from pmt_jobs.job_run where task = 'pmt_jobs.backup' and status = 'running'")).rowCount === 0,
      "no backup running",
      30_000,
    );
    // One backup for that minute's tick (a later minute may legitimately add its own).
    const all = await db.pool.query(
      "select count(*)::int as n from pmt_jobs.backup where date_trunc('minute', started_at) = date_trunc('minute', $1::timestamptz)",
      [backup[0].started_at],
    );
    expect(all.rows[0].n).toBe(1);
    expect(backup[0].status).toBe("succeeded");

    for (const w of workers) w.kill("SIGTERM");
    const exits = await Promise.all(workers.map((w) => w.exited));
    expect(exits).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
  }, 150_000);
});
