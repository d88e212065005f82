/**
 * Writes of pmt_jobs.job_run, one statement each. The history writer calls
 * startRuns before task bodies and finishRuns after; the rescuer calls the
 * abandon functions for attempts whose worker died or lost its lock.
 */
import { sql } from "kysely";
import type pg from "pg";
import type { Db, JobStatus } from "../db/schema.js";

export interface StartRun {
  jobId: number;
  task: string;
  attempt: number;
  maxAttempts: number;
  queue: string | null;
  workerId: string;
  payloadSummary: Record<string, unknown>;
}

/**
 * Inserts the `running` rows of these attempts. For retries, earlier attempts
 * of the same jobs still `running` are first marked `abandoned`: they belonged
 * to a worker that died before recording their end.
 * Returns the new row ids in input order.
 *
 * The hot path of every job: a named (prepared) statement over arrays, so the
 * history writer can send many attempts in one round trip.
 */
export async function startRuns(pool: pg.Pool, runs: StartRun[]): Promise<number[]> {
  const retries = runs.filter((r) => r.attempt > 1);
  if (retries.length) {
    await pool.query({
      name: "pmt_jobs.abandon_earlier_runs",
      text: `
        update pmt_jobs.job_run r
        set status = 'abandoned', finished_at = now(),
            error = coalesce(r.error, 'worker ' || r.worker_id || ' stopped before the attempt finished; retried as attempt ' || i.attempt)
        from unnest($1::bigint[], $2::int[]) as i(job_id, attempt)
        where r.job_id = i.job_id and r.status = 'running' and r.attempt < i.attempt`,
      values: [retries.map((r) => r.jobId), retries.map((r) => r.attempt)],
    });
  }
  const { rows } = await pool.query<{ id: number; job_id: number; attempt: number }>({
    name: "pmt_jobs.start_runs",
    text: `
      insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, queue, worker_id, payload_summary)
      select * from unnest($1::bigint[], $2::text[], $3::int[], $4::int[], $5::text[], $6::text[], $7::jsonb[])
      returning id, job_id, attempt`,
    values: [
      runs.map((r) => r.jobId),
      runs.map((r) => r.task),
      runs.map((r) => r.attempt),
      runs.map((r) => r.maxAttempts),
      runs.map((r) => r.queue),
      runs.map((r) => r.workerId),
      runs.map((r) => JSON.stringify(r.payloadSummary)),
    ],
  });
  const ids = new Map(rows.map((r) => [`${r.job_id}:${r.attempt}`, r.id]));
  return runs.map((r) => ids.get(`${r.jobId}:${r.attempt}`)!);
}

export interface FinishRun {
  id: number;
  status: Exclude<JobStatus, "running">;
  error: string | null;
}

/** Records the end of these attempts (one round trip; only rows still `running` change). */
export async function finishRuns(pool: pg.Pool, runs: FinishRun[]): Promise<void> {
  await pool.query({
    name: "pmt_jobs.finish_runs",
    text: `
      update pmt_jobs.job_run r
      set status = u.status, error = u.error, finished_at = now()
      from unnest($1::bigint[], $2::text[], $3::text[]) as u(id, status, error)
      where r.id = u.id and r.status = 'running'`,
    values: [runs.map((r) => r.id), runs.map((r) => r.status), runs.map((r) => r.error)],
  });
}

/** Running attempts of the given (dead) workers become abandoned. Returns how many. */
export async function abandonRunsOfWorkers(db: Db, workerIds: string[], reason: string): Promise<number> {
  if (workerIds.length === 0) return 0;
  const rows = await db
    .updateTable("pmt_jobs.job_run")
    .set({ status: "abandoned", finished_at: sql`now()`, error: reason })
    .where("status", "=", "running")
    .where("worker_id", "in", workerIds)
    .returning("id")
    .execute();
  return rows.length;
}

/**
 * Running attempts whose job no longer exists or is no longer locked by the
 * attempt's worker (graphile-worker's 4-hour lock expiry, force_unlock_workers,
 * a manual unlock) cannot finish: mark them abandoned. Only rows older than
 * `minAgeSeconds` are considered, so a row inserted a moment ago by a live
 * worker is never raced.
 */
export async function abandonOrphanRuns(db: Db, minAgeSeconds: number): Promise<number> {
  const rows = await db
    .updateTable("pmt_jobs.job_run as r")
    .set({
      status: "abandoned",
      finished_at: sql`now()`,
      error: sql`coalesce(r.error, 'the job lock of worker ' || r.worker_id || ' was released before the attempt finished')`,
    })
    .where("r.status", "=", "running")
    .where("r.started_at", "<", sql<Date>`now() - make_interval(secs => ${minAgeSeconds})`)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom(sql`graphile_worker.jobs`.as("j"))
            .select(sql`1`.as("one"))
            .where(sql`j.id`, "=", sql.ref("r.job_id"))
            .where(sql`j.locked_by`, "=", sql.ref("r.worker_id")),
        ),
      ),
    )
    .returning("r.id")
    .execute();
  return rows.length;
}
