/**
 * Fault: the S3 store is down while backups run, then comes back. The
 * uploads complete by their own retries; meanwhile local retention, set to
 * keep only the newest backup, kept every backup that had no offsite copy.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { recordFault, Workers } from "../harness/faults.js";
import { S3RVER_CREDENTIALS, S3Sink } from "../harness/s3.js";
import { until } from "../harness/wait.js";

let db: TestDatabase;
let s3: S3Sink;
const workers: Workers = new Workers(() => ({
  ...S3RVER_CREDENTIALS,
  DATABASE_URL: db.url,
  BACKUP_DIR: path.join(workers.home, "b"),
  OFFSITE_URL: "s3://fault/pmt",
  S3_ENDPOINT: s3.endpoint,
  S3_FORCE_PATH_STYLE: "true",
  RETAIN_DAILY: "1",
  RETAIN_WEEKLY: "0",
  RETAIN_MONTHLY: "0",
  RETAIN_MIN_SUCCESSFUL: "1",
  BACKUP_MIN_FREE_MB: "0",
}));

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  await db.pool.query("create table public.sample as select g as id from generate_series(1, 1000) g");
  s3 = await S3Sink.start(["fault"]);
  await s3.down();
});

afterAll(async () => {
  await s3?.close();
});

describe("S3 store down, then up", () => {
  it("keeps every un-copied backup locally, then completes the uploads by itself", async () => {
    const worker = await workers.start();
    const log = await JobEventLog.listen(db.url);
    const backups = 3;
    for (let i = 0; i < backups; i++) {
      const { rows } = await db.pool.query("select id from graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text))", [db.name]);
      await log.waitFor((e) => e.job_id === Number(rows[0].id) && e.status === "succeeded", 60_000, `backup ${i + 1}`);
    }
    await until(async () => {
      const { rows } = await db.pool.query<{ n: number }>(
        "select count(distinct job_id)::int as n from pmt_jobs.job_run where task = 'pmt_jobs.offsite_upload' and status = 'failed'",
      );
      return rows[0]!.n === backups;
    }, "every upload to fail while the store is down");
    // Retention would keep one; without offsite copies it pruned none.
    const local = (await db.pool.query("select id, local_path from pmt_jobs.backup where status = 'succeeded' order by id")).rows;
    expect(local).toHaveLength(backups);
    for (const b of local) expect(fs.existsSync(b.local_path)).toBe(true);

    await s3.up();
    const copies = await until(
      async () => {
        const { rows } = await db.pool.query("select backup_id, status from pmt_jobs.backup_copy where status = 'verified' order by backup_id");
        return rows.length === backups ? rows : undefined;
      },
      "every upload to complete after the store came back",
      60_000,
      200,
    );
    expect(copies.map((c) => c.backup_id)).toEqual(local.map((b) => b.id));

    // With the copies safe, the next backup's retention prunes the older local files.
    const { rows } = await db.pool.query("select id from graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text))", [db.name]);
    await log.waitFor((e) => e.job_id === Number(rows[0].id) && e.status === "succeeded", 60_000, "the backup after recovery");
    const after = (await db.pool.query("select count(*)::int as n from pmt_jobs.backup where status = 'succeeded'")).rows[0].n;
    expect(after).toBe(1);
    expect(await Workers.stop(worker)).toBe(0);
    await log.close();
    recordFault({
      scenario: "S3 outage",
      fault: `store down during ${backups} backups (retention set to keep 1), then up`,
      outcome: `${backups} kept locally while un-copied; uploads retried to ${backups} verified copies; then pruned locally`,
      lost: 0,
    });
  });
});
