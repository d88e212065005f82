/**
 * A worker killed with SIGKILL mid-job: its attempt stays `running` until the
 * rescuer of a live worker sees the dead heartbeat, releases the job and marks
 * the attempt `abandoned`; the retry then succeeds.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkerHandle } from "../../src/worker/runner.js";
import { ChildHandle, ROOT } from "../harness/cli.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { startTestWorker } from "../harness/worker.js";

let db: TestDatabase;
let log: JobEventLog;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

describe("a worker killed mid-job", () => {
  it("leaves a running attempt that is abandoned, then retried to success by another worker", async () => {
    const env = { DATABASE_URL: db.url, HTTP_PORT: "0", WORKER_DEAD_AFTER_SECONDS: "2", WORKER_POLL_INTERVAL_MS: "100", LOG_LEVEL: "warn" };
    const doomed = ChildHandle.spawn(path.join(ROOT, "test/fixtures/worker.mjs"), [], env);
    cleanup.push(async () => doomed.kill("SIGKILL"));
    await doomed.waitForOutput(/READY pool-/);
    const doomedId = /READY (pool-\S+)/.exec(doomed.stdout)![1]!;

    log = await JobEventLog.listen(db.url);
    cleanup.push(() => log.close());
    const { rows } = await db.pool.query<{ id: number }>("select id from graphile_worker.add_job('test.block', '{}'::json)");
    const jobId = rows[0]!.id;
    await log.waitFor((e) => e.job_id === jobId && e.status === "running", 30_000, "the first attempt to start");

    doomed.kill("SIGKILL");
    expect((await doomed.exited).signal).toBe("SIGKILL");
    const stuck = await db.pool.query("select status, worker_id from pmt_jobs.job_run where job_id = $1", [jobId]);
    expect(stuck.rows).toEqual([{ status: "running", worker_id: doomedId }]);

    const rescuer: WorkerHandle | undefined = await startTestWorker(db.url, {
      env: { WORKER_DEAD_AFTER_SECONDS: "2" },
      extraTasks: { "test.block": async () => {} },
    });
    cleanup.push(() => rescuer!.stop());

    await log.waitFor((e) => e.job_id === jobId && e.attempt === 2 && e.status === "succeeded", 30_000, "the retry to succeed");
    const history = await db.pool.query("select attempt, status, error, worker_id from pmt_jobs.job_run where job_id = $1 order by attempt", [jobId]);
    expect(history.rows).toEqual([
      {
        attempt: 1,
        status: "abandoned",
        error: expect.stringMatching(new RegExp(`^worker ${doomedId} \\(.+ pid \\d+\\) stopped heartbeating for over 2s; the job was released for retry$`)),
        worker_id: doomedId,
      },
      { attempt: 2, status: "succeeded", error: null, worker_id: rescuer.workerId },
    ]);
    const workers = await db.pool.query("select id from pmt_jobs.worker");
    expect(workers.rows.map((r) => r.id)).toEqual([rescuer.workerId]);
  });

  it("marks a running attempt abandoned when the next attempt of its job starts", async () => {
    const worker = await startTestWorker(db.url, { extraTasks: { "test.later": async () => {} } });
    cleanup.push(() => worker.stop());
    // As if attempt 1 ran on a worker that vanished and its lock then expired.
    const { rows } = await db.pool.query<{ id: number }>(
      "select id from graphile_worker.add_job('test.later', '{}'::json, run_at => now() + interval '1 hour')",
    );
    const jobId = rows[0]!.id;
    await db.pool.query(`insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, worker_id) values ($1, 'test.later', 1, 25, 'pool-gone')`, [jobId]);
    await db.pool.query("update graphile_worker._private_jobs set attempts = 1, run_at = now() where id = $1", [jobId]);
    await log.waitFor((e) => e.job_id === jobId && e.status === "succeeded", 30_000, "attempt 2 to succeed");
    const history = await db.pool.query("select attempt, status, error from pmt_jobs.job_run where job_id = $1 order by attempt", [jobId]);
    expect(history.rows).toEqual([
      { attempt: 1, status: "abandoned", error: "worker pool-gone stopped before the attempt finished; retried as attempt 2" },
      { attempt: 2, status: "succeeded", error: null },
    ]);
  });

  it("marks the attempt abandoned when its lock is released without an end (lock expiry, force unlock)", async () => {
    const { rows } = await db.pool.query<{ id: number }>(
      "select id from graphile_worker.add_job('test.nobody', '{\"password\": \"x\"}'::json, run_at => now() + interval '1 hour')",
    );
    const jobId = rows[0]!.id;
    // What get_job does when a worker takes the job.
    await db.pool.query("update graphile_worker._private_jobs set attempts = attempts + 1, locked_by = 'pool-lost', locked_at = now() where id = $1", [jobId]);
    const running = await db.pool.query("select status, worker_id, payload_summary from pmt_jobs.job_run where job_id = $1", [jobId]);
    expect(running.rows).toEqual([{ status: "running", worker_id: "pool-lost", payload_summary: { password: "***" } }]);
    await db.pool.query("select graphile_worker.force_unlock_workers(array['pool-lost'])");
    const after = await db.pool.query("select status, error from pmt_jobs.job_run where job_id = $1", [jobId]);
    expect(after.rows).toEqual([{ status: "abandoned", error: "the job lock of worker pool-lost was released before the attempt finished" }]);
  });
});
