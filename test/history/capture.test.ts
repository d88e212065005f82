/**
 * The capture triggers are statement-level (migration 0016): one statement of
 * graphile-worker that locks or completes many jobs writes all their history
 * rows and sends their events in as few NOTIFYs as the 8000-byte payload
 * limit allows (an object for one event, an array for several). Other
 * writers of job_run (the worker's failure records, a DBA) are stamped and
 * notified by job_run's own triggers. Driven here with graphile-worker's own
 * statements (src/sql/getJobs.ts, completeJobs.ts of 0.17.3) in a real database.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { parseJobEvents } from "../../src/history/queries.js";
import { createLogger } from "../../src/log.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";

let db: TestDatabase;
let log: JobEventLog;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  log = await JobEventLog.listen(db.url);
});

afterAll(async () => {
  await log.close();
});

/** Adds `n` jobs of `task` with `payload`; returns their ids. */
async function addJobs(task: string, n: number, payload: unknown = {}): Promise<number[]> {
  const { rows } = await db.pool.query<{ id: string }>(
    `select id from graphile_worker.add_jobs(array(
       select row($1, $2::json, null, null, null, null, null, null)::graphile_worker.job_spec from generate_series(1, $3)))
     order by id`,
    [task, JSON.stringify(payload), n],
  );
  return rows.map((r) => Number(r.id));
}

/** graphile-worker's get_jobs with a batch size, as its local queue sends it. */
async function lockJobs(ids: number[], worker = "pool-1"): Promise<void> {
  await db.pool.query(
    `with j as (select id from graphile_worker._private_jobs where id = any($2::bigint[]) for update skip locked)
     update graphile_worker._private_jobs as jobs set attempts = jobs.attempts + 1, locked_by = $1::text, locked_at = now()
     from j where jobs.id = j.id returning *`,
    [worker, ids],
  );
}

/** graphile-worker's batched complete_jobs. */
async function completeJobs(ids: number[]): Promise<void> {
  await db.pool.query("delete from graphile_worker._private_jobs as jobs using unnest($1::bigint[]) n(n) where id = n", [ids]);
}

async function runs(ids: number[]): Promise<{ job_id: string; status: string; attempt: number; payload_summary: unknown }[]> {
  const { rows } = await db.pool.query("select job_id, status, attempt, payload_summary from pmt_jobs.job_run where job_id = any($1) order by job_id", [ids]);
  return rows;
}

describe("the statement-level history capture", () => {
  it("writes every job's row and sends every event of a batch, in payloads below 8000 bytes", async () => {
    const ids = await addJobs("capture.batch", 60, { request: 7, password: "hunter2" });
    const rawBefore = log.raw.length;
    await lockJobs(ids);
    const started = await Promise.all(ids.map((id) => log.waitFor((e) => e.job_id === id && e.status === "running", 30_000, `job ${id} running`)));
    expect(started.map((e) => e.op)).toEqual(ids.map(() => "insert"));
    expect((await runs(ids)).map((r) => [r.status, r.attempt, r.payload_summary])).toEqual(ids.map(() => ["running", 1, { request: 7, password: "***" }]));

    await completeJobs(ids);
    await Promise.all(ids.map((id) => log.waitFor((e) => e.job_id === id && e.status === "succeeded", 30_000, `job ${id} succeeded`)));
    expect((await runs(ids)).map((r) => r.status)).toEqual(ids.map(() => "succeeded"));

    // 120 events in a few NOTIFYs: arrays, each within PostgreSQL's limit, none lost or repeated.
    const payloads = log.raw.slice(rawBefore);
    expect(payloads.length).toBeGreaterThan(2);
    expect(payloads.length).toBeLessThan(40);
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThan(8000);
    expect(payloads.some((p) => p.startsWith("["))).toBe(true);
    const events = payloads.flatMap((p) => parseJobEvents(p)).filter((e) => ids.includes(e.job_id));
    expect(events).toHaveLength(120);
    expect(new Set(events.map((e) => `${e.id}:${e.status}`)).size).toBe(120);
    expect(payloads.join("")).not.toContain("hunter2");
  });

  it("sends one job's event as a single JSON object, as before", async () => {
    const [id] = await addJobs("capture.one", 1);
    const rawBefore = log.raw.length;
    await lockJobs([id!]);
    await log.waitFor((e) => e.job_id === id && e.status === "running");
    const payload = log.raw.slice(rawBefore).find((p) => p.includes(`"job_id" : ${id},`) || p.includes(`"job_id":${id},`));
    expect(payload).toBeDefined();
    expect(payload!.startsWith("{")).toBe(true);
    expect(JSON.parse(payload!)).toMatchObject({ op: "insert", job_id: id, task: "capture.one", status: "running", attempt: 1 });
    expect((await runs([id!]))[0]!.payload_summary).toEqual({});
    await completeJobs([id!]);
    await log.waitFor((e) => e.job_id === id && e.status === "succeeded");
  });

  it("marks abandoned a lock released without an end and an earlier attempt when a job is locked again", async () => {
    const [released, retried] = await addJobs("capture.lost", 2);
    await lockJobs([released!, retried!], "pool-dead");
    // A lock released by graphile-worker's force_unlock_workers (a dead worker), with our reason.
    const client = await db.pool.connect();
    try {
      await client.query("begin");
      await client.query("select set_config('pmt_jobs.release_reason', 'worker pool-dead stopped heartbeating', true)");
      await client.query("select graphile_worker.force_unlock_workers(array['pool-dead'])");
      await client.query("commit");
    } finally {
      client.release();
    }
    for (const id of [released!, retried!]) {
      const e = await log.waitFor((ev) => ev.job_id === id && ev.status === "abandoned");
      expect(e).toMatchObject({ op: "update", attempt: 1, error_class: "failed" });
      expect(e.error).toBe("worker pool-dead stopped heartbeating");
    }
    // Attempt 2 of one of them starts: attempt 1 is already abandoned, so nothing else changes.
    await lockJobs([retried!], "pool-2");
    await log.waitFor((e) => e.job_id === retried && e.attempt === 2 && e.status === "running");
    expect((await runs([retried!])).map((r) => [r.attempt, r.status])).toEqual([
      [1, "abandoned"],
      [2, "running"],
    ]);
  });

  it("stamps and notifies the writes of other writers (a failure record, a DBA's update)", async () => {
    const [id] = await addJobs("capture.fail", 1);
    await lockJobs([id!]);
    const running = await log.waitFor((e) => e.job_id === id && e.status === "running");
    await db.pool.query("update pmt_jobs.job_run set status = 'failed', error = 'boom', finished_at = now() where id = $1", [running.id]);
    const failed = await log.waitFor((e) => e.job_id === id && e.status === "failed");
    expect(failed).toMatchObject({ op: "update", id: running.id, error_class: "failed", error: "boom" });
    expect(failed.seq).toBeGreaterThan(running.seq);
    await db.pool.query("update pmt_jobs.job_run set payload_summary = '{\"note\": 1}' where id = $1", [running.id]);
    const touched = await log.waitFor((e) => e.id === running.id && e.seq > failed.seq);
    expect(touched.status).toBe("failed");
  });
});
