/**
 * Retrying a job that failed for good, one way for every caller
 * (`pmt-worker jobs retry <job id>`, the console's Retry button): the job
 * (graphile-worker keeps it in its queue with attempts = max_attempts) gets
 * one more attempt, now (graphile_worker.reschedule_jobs with max_attempts
 * one higher, as sql/job_queries.sql shows for psql), so its history goes on
 * as attempt n+1 of n+1 of the same job, and its payload, when an object,
 * gains `retriedBy` (who asked), which the history's payload summary shows.
 * The id is the job's, the `job` column of `pmt-worker jobs`; an attempt's id
 * (the `id` column) is recognised and refused with the job's id to give
 * instead. Anything but a job that failed for good is refused with what it
 * is: one still being retried or running needs no retry, and a finished job
 * is gone from the queue.
 */
import type pg from "pg";
import { inTransaction } from "../db/transaction.js";
import { UserError } from "../errors.js";

/** graphile_worker.jobs.max_attempts is a smallint. */
const MAX_ATTEMPTS_LIMIT = 32_767;

export interface Retried {
  id: number;
  task: string;
  /** The attempts it had used up. */
  attempts: number;
  /** The number of the attempt it runs now (attempts + 1, of as many). */
  attempt: number;
  lastError: string | null;
  runAt: Date;
}

interface QueuedJob {
  id: number;
  task_identifier: string;
  attempts: number;
  max_attempts: number;
  run_at: Date;
  locked_at: Date | null;
  last_error: string | null;
}

/** What the history knows of a job id that is not in the queue: why, in one clause. */
async function notQueued(pool: pg.Pool, id: number): Promise<string> {
  const { rows } = await pool.query<{ task: string; status: string; finished_at: Date | null; attempt_job: number | null }>(
    `select (select task from pmt_jobs.job_run where job_id = $1 order by started_at desc limit 1) as task,
            (select status from pmt_jobs.job_run where job_id = $1 order by started_at desc limit 1) as status,
            (select finished_at from pmt_jobs.job_run where job_id = $1 order by started_at desc limit 1) as finished_at,
            (select job_id from pmt_jobs.job_run where id = $1) as attempt_job`,
    [id],
  );
  const r = rows[0]!;
  if (r.status === "succeeded") return `job ${id} (${r.task}) succeeded${r.finished_at ? ` at ${r.finished_at.toISOString()}` : ""}: there is nothing to retry`;
  if (r.attempt_job !== null && r.attempt_job !== id) {
    return `there is no job ${id} in the queue; ${id} is the id of an attempt of job ${r.attempt_job}: give the job's id (the job column of pmt-worker jobs), pmt-worker jobs retry ${r.attempt_job}`;
  }
  if (r.task) return `job ${id} (${r.task}) is no longer in the queue (last attempt ${r.status}): only a job that failed for good stays there to be retried`;
  return `there is no job ${id}: give the id in the job column of pmt-worker jobs --status failed`;
}

/** Retries job `id` for `who` ("console user admin from 10.0.0.5", "pmt-worker jobs retry as root"). */
export async function retryJob(pool: pg.Pool, id: number, who: string): Promise<Retried> {
  const { rows } = await pool.query<QueuedJob>(
    "select id, task_identifier, attempts, max_attempts, run_at, locked_at, last_error from graphile_worker.jobs where id = $1",
    [id],
  );
  const job = rows[0];
  if (!job) throw new UserError(await notQueued(pool, id));
  if (job.locked_at) throw new UserError(`job ${id} (${job.task_identifier}) is running now (since ${job.locked_at.toISOString()}): nothing to retry`);
  if (job.attempts < job.max_attempts) {
    throw new UserError(
      `job ${id} (${job.task_identifier}) has not failed for good (${job.attempts} of ${job.max_attempts} attempts used): the worker runs it ${
        job.run_at.getTime() <= Date.now() ? "as soon as a slot is free" : `again at ${job.run_at.toISOString()}`
      }`,
    );
  }
  if (job.attempts >= MAX_ATTEMPTS_LIMIT) {
    // graphile-worker keeps max_attempts in a smallint: attempts + 1 would be out of range.
    throw new UserError(`job ${id} (${job.task_identifier}) has had ${job.attempts} attempts, graphile-worker's most: add it again as a new job instead`);
  }
  return inTransaction(pool, async (client) => {
    // Row-locked until commit: a worker's fetch skips it, and one that took it meanwhile makes this match nothing.
    const { rows: marked } = await client.query<{ attempts: number }>(
      `update graphile_worker._private_jobs
       set payload = case when json_typeof(payload) = 'object' then (payload::jsonb || jsonb_build_object('retriedBy', $2::text))::json else payload end
       where id = $1 and attempts >= max_attempts and locked_at is null
       returning attempts`,
      [id, who],
    );
    const attempts = marked[0]?.attempts;
    if (attempts === undefined) {
      throw new UserError(`job ${id} (${job.task_identifier}) changed while being retried (a worker took it, or it is gone): see pmt-worker jobs`);
    }
    const { rows: done } = await client.query<{ run_at: Date }>(
      "select run_at from graphile_worker.reschedule_jobs(array[$1]::bigint[], run_at := now(), max_attempts := $2)",
      [id, attempts + 1],
    );
    return { id, task: job.task_identifier, attempts, attempt: attempts + 1, lastError: job.last_error, runAt: done[0]!.run_at };
  });
}
