/**
 * Writes of pmt_jobs.job_run from the worker (its only writer besides the
 * database's own functions). Starts, successes and abandoned attempts are
 * captured by a trigger on graphile-worker's own statements
 * (sql/functions/05_history_capture.sql); the worker records only what the
 * database cannot see: why an attempt failed; and it prunes old rows.
 */
import { sql } from "kysely";
import type pg from "pg";
import type { Db } from "../db/schema.js";

/**
 * Marks the running attempt failed with its (already redacted) error. Called
 * before graphile-worker records the failure, so the capture trigger then
 * finds the attempt finished and leaves it alone.
 */
export async function recordFailure(pool: pg.Pool, jobId: number, attempt: number, error: string): Promise<void> {
  await pool.query({
    name: "pmt_jobs.record_failure",
    text: `update pmt_jobs.job_run set status = 'failed', error = $3, finished_at = now()
           where job_id = $1 and attempt = $2 and status = 'running'`,
    values: [jobId, attempt, error],
  });
}

/**
 * As recordFailure, and makes this attempt the job's last: its max_attempts
 * (in the queue and in history) becomes this attempt, so graphile-worker keeps
 * it as permanently failed instead of retrying. One transaction. Only while
 * the job is still at this attempt: a stale attempt must not end a retry.
 */
export async function recordFinalFailure(pool: pg.Pool, jobId: number, attempt: number, error: string): Promise<void> {
  await pool.query({
    name: "pmt_jobs.record_final_failure",
    text: `with job as (
             update graphile_worker._private_jobs set max_attempts = attempts where id = $1 and attempts = $2 returning id
           )
           update pmt_jobs.job_run set status = 'failed', error = $3, finished_at = now(), max_attempts = $2
           where job_id = $1 and attempt = $2 and status = 'running'`,
    values: [jobId, attempt, error],
  });
}

/**
 * A fenced attempt (FencedJobError): it lost its job, which another attempt
 * now runs or ran, and stopped without acting. Its row, already `abandoned`
 * by the release, keeps the release's reason and gains what the attempt did
 * when it came back.
 */
export async function recordFenced(pool: pg.Pool, jobId: number, attempt: number, error: string): Promise<void> {
  await pool.query(
    `update pmt_jobs.job_run
     set status = 'abandoned', finished_at = coalesce(finished_at, now()), error = concat_ws('; then ', error, 'fenced: ' || $3)
     where job_id = $1 and attempt = $2 and status in ('running', 'abandoned')`,
    [jobId, attempt, error],
  );
}

export const PRUNE_BATCH_SIZE = 5000;

/**
 * Deletes finished history rows older than `retentionDays`, in batches of
 * PRUNE_BATCH_SIZE so no single statement holds locks for long. Running rows
 * are never pruned. Returns how many rows went.
 */
export async function pruneHistory(db: Db, retentionDays: number, batchSize = PRUNE_BATCH_SIZE): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await sql<{ n: number }>`
      with doomed as (
        select id from pmt_jobs.job_run
        where started_at < now() - make_interval(days => ${retentionDays})
          and status <> 'running'
        order by started_at
        limit ${batchSize}
      )
      delete from pmt_jobs.job_run r using doomed where r.id = doomed.id`.execute(db);
    const n = Number(result.numAffectedRows ?? 0);
    total += n;
    if (n < batchSize) return total;
    await new Promise((r) => setTimeout(r, 50));
  }
}
