/**
 * The history wrapper against the real graphile-worker: one job_run row per
 * attempt for success, retry and permanent failure, and the NOTIFY payloads.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkerHandle } from "../../src/worker/runner.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { until } from "../harness/wait.js";
import { startTestWorker } from "../harness/worker.js";

let db: TestDatabase;
let worker: WorkerHandle;
let log: JobEventLog;
const flaky = new Map<string, number>();

beforeAll(async () => {
  db = await createTestDatabase();
  worker = await startTestWorker(db.url, {
    extraTasks: {
      "test.ok": async () => {},
      "test.flaky": async (payload) => {
        const key = (payload as { key: string }).key;
        const n = (flaky.get(key) ?? 0) + 1;
        flaky.set(key, n);
        if (n === 1) throw new Error("first attempt fails");
      },
      "test.fail": async () => {
        throw new Error("always fails: postgres://u:topsecret@h/db " + "x".repeat(20_000));
      },
    },
  });
  log = await JobEventLog.listen(db.url);
});

afterAll(async () => {
  await log?.close();
  await worker?.stop();
});

async function addJob(task: string, payload: unknown, maxAttempts = 25): Promise<number> {
  const { rows } = await db.pool.query<{ id: number }>("select id from graphile_worker.add_job($1, $2::json, max_attempts => $3)", [
    task,
    JSON.stringify(payload),
    maxAttempts,
  ]);
  return rows[0]!.id;
}

async function runs(jobId: number) {
  const { rows } = await db.pool.query(
    `select attempt, max_attempts, status, error, worker_id, payload_summary, finished_at is not null as finished,
            duration >= interval '0' as has_duration
     from pmt_jobs.job_run where job_id = $1 order by attempt`,
    [jobId],
  );
  return rows;
}

/** graphile-worker retries after exp(attempts) seconds; once it has released the job, bring the retry forward. */
async function retryNow(jobId: number): Promise<void> {
  await until(async () => {
    const { rowCount } = await db.pool.query("update graphile_worker._private_jobs set run_at = now() where id = $1 and locked_at is null and run_at > now()", [
      jobId,
    ]);
    return rowCount === 1;
  }, `job ${jobId} to be released for retry`);
}

describe("job history", () => {
  it("records a successful attempt: running, then succeeded, with a redacted payload summary", async () => {
    const jobId = await addJob("test.ok", { email: "ann@example.org", password: "hunter2" });
    await log.waitFor((e) => e.job_id === jobId && e.status === "succeeded");
    expect(await runs(jobId)).toEqual([
      {
        attempt: 1,
        max_attempts: 25,
        status: "succeeded",
        error: null,
        worker_id: worker.workerId,
        payload_summary: { email: "ann@example.org", password: "***" },
        finished: true,
        has_duration: true,
      },
    ]);
    const events = log.events.filter((e) => e.job_id === jobId);
    expect(events.map((e) => [e.op, e.status])).toEqual([
      ["insert", "running"],
      ["update", "succeeded"],
    ]);
    expect(events[1]).toMatchObject({ task: "test.ok", attempt: 1, max_attempts: 25, worker_id: worker.workerId });
    expect(events[1]!.duration_ms).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify(events)).not.toContain("hunter2");
  });

  it("records a failed attempt and its successful retry as two rows", async () => {
    const jobId = await addJob("test.flaky", { key: "a" });
    await log.waitFor((e) => e.job_id === jobId && e.status === "failed");
    await retryNow(jobId);
    await log.waitFor((e) => e.job_id === jobId && e.status === "succeeded");
    const rows = await runs(jobId);
    expect(rows.map((r) => [r.attempt, r.status, r.error])).toEqual([
      [1, "failed", "first attempt fails"],
      [2, "succeeded", null],
    ]);
  });

  it("records a permanent failure; the job stays in the queue and job_status counts it", async () => {
    const jobId = await addJob("test.fail", {}, 2);
    await log.waitFor((e) => e.job_id === jobId && e.attempt === 1 && e.status === "failed");
    await retryNow(jobId);
    await log.waitFor((e) => e.job_id === jobId && e.attempt === 2 && e.status === "failed");
    const rows = await runs(jobId);
    expect(rows.map((r) => [r.attempt, r.max_attempts, r.status])).toEqual([
      [1, 2, "failed"],
      [2, 2, "failed"],
    ]);
    // The password in the error never reaches history; long errors are cut.
    expect(rows[0].error).toContain("postgres://u:***@h/db");
    expect(rows[0].error).not.toContain("topsecret");
    expect(rows[0].error.length).toBeLessThanOrEqual(10_010);
    // graphile-worker's own record of the error is redacted too.
    const queued = await db.pool.query("select last_error from graphile_worker.jobs where id = $1", [jobId]);
    expect(queued.rows[0].last_error).toContain("postgres://u:***@h/db");
    expect(queued.rows[0].last_error).not.toContain("topsecret");

    // History is written before graphile-worker records the failure; wait for the job to be released.
    await until(
      async () => (await db.pool.query("select 1 from graphile_worker.jobs where id = $1 and locked_at is null", [jobId])).rowCount,
      "the job to be released",
    );
    const status = await db.pool.query("select * from pmt_jobs.job_status where task = 'test.fail'");
    expect(status.rows[0]).toMatchObject({ task: "test.fail", queued: 0, running: 0, failed_permanently: 1, failed_24h: 2 });
    expect(status.rows[0].last_error).toContain("always fails");
  });

  it("keeps every NOTIFY payload well under PostgreSQL's 8000-byte limit", async () => {
    await log.waitFor((e) => e.task === "test.fail" && e.attempt === 2 && e.status === "failed");
    const sizes = log.raw.map((p) => Buffer.byteLength(p));
    expect(Math.max(...sizes)).toBeLessThan(2000);
    const failed = log.events.find((e) => e.task === "test.fail" && e.status === "failed")!;
    // Any role may LISTEN: the payload names the error's class, never its text;
    // the full error is read from job_run by id (as the worker's role).
    expect(failed.error_class).toBe("failed");
    expect(log.raw.filter((p) => p.includes("always fails"))).toEqual([]);
    expect(failed.error).toContain("always fails");
  });

  it("shows history newest first in pmt_jobs.job_history and queued work in job_status", async () => {
    const { rows } = await db.pool.query("select id from pmt_jobs.job_history");
    const ids = rows.map((r) => Number(r.id));
    expect(ids).toEqual([...ids].sort((a, b) => b - a));

    const later = await db.pool.query<{ id: number }>("select id from graphile_worker.add_job('test.ok', '{}'::json, run_at => now() + interval '1 hour')");
    const status = await db.pool.query("select queued, next_run_at from pmt_jobs.job_status where task = 'test.ok'");
    expect(status.rows[0].queued).toBe(1);
    expect(status.rows[0].next_run_at).toBeInstanceOf(Date);
    await db.pool.query("select graphile_worker.remove_job(id::text) from graphile_worker.jobs where id = $1", [later.rows[0]!.id]);
  });
});
