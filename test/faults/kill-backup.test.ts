/**
 * Fault: the worker is killed (SIGKILL, its pg_dump with it) in the middle of
 * a backup. After a restart the backup completes; the interrupted run is a
 * failed row with no file, its .partial is gone, and the history shows the
 * abandoned attempt followed by the successful one.
 */
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { recordFault, Workers } from "../harness/faults.js";
import { until } from "../harness/wait.js";

let db: TestDatabase;
const workers: Workers = new Workers(() => ({ DATABASE_URL: db.url, BACKUP_DIR: path.join(workers.home, "b") }));

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  await db.pool.query("create table public.sample as select g as id from generate_series(1, 1000) g");
});

describe("kill -9 during a backup", () => {
  it("loses nothing: the retry completes, the interrupted run leaves no backup", async () => {
    const backupDir = path.join(workers.home, "b");
    const first = await workers.start();

    // A lock pg_dump must wait for: it is surely mid-run when the worker dies.
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query("begin; lock table public.sample in access exclusive mode");
    const log = await JobEventLog.listen(db.url);
    const { rows } = await db.pool.query<{ id: number }>("select id from graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text))", [
      db.name,
    ]);
    const jobId = Number(rows[0]!.id);
    const dumper = await until(async () => {
      const r = await db.pool.query<{ pid: number }>(
        "select pid from pg_stat_activity where application_name = 'pmt-worker backup' and wait_event_type = 'Lock'",
      );
      return r.rows[0];
    }, "pg_dump to be waiting");
    expect(fs.readdirSync(backupDir).filter((f) => f.endsWith(".dump.partial"))).toHaveLength(1);

    // The crash: the worker, and with it its pg_dump's session.
    await Workers.crash(first);
    await db.pool.query("select pg_terminate_backend($1)", [dumper.pid]);
    await locker.query("rollback");
    await locker.end();

    const second = await workers.start();
    await log.waitFor((e) => e.job_id === jobId && e.status === "succeeded", 60_000, "the retried backup to succeed");

    const history = await db.pool.query("select attempt, status from pmt_jobs.job_run where job_id = $1 order by attempt", [jobId]);
    expect(history.rows).toEqual([
      { attempt: 1, status: "abandoned" },
      { attempt: 2, status: "succeeded" },
    ]);
    const catalog = await db.pool.query("select status, file, error from pmt_jobs.backup order by id");
    expect(catalog.rows).toEqual([
      { status: "failed", file: null, error: "interrupted: the worker stopped during the backup" },
      { status: "succeeded", file: expect.stringMatching(/\.dump$/), error: null },
    ]);
    const files = fs.readdirSync(backupDir).sort();
    expect(files).toEqual([catalog.rows[1].file, `${catalog.rows[1].file}.globals.json`, `${catalog.rows[1].file}.json`]);

    expect(await Workers.stop(second)).toBe(0);
    await log.close();
    recordFault({
      scenario: "backup",
      fault: "kill -9 of the worker while pg_dump runs",
      outcome: "retried: 1 backup catalogued, interrupted run failed with no file, history abandoned -> succeeded",
      lost: 0,
    });
  });
});
