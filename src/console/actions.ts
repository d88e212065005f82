/**
 * The console's actions, each one statement or transaction on graphile-worker's
 * queue (documented functions add_job and reschedule_jobs), and each recorded
 * in the history by the attempt it causes: who asked goes into the job's
 * payload (`requestedBy`, or `retriedBy` on a retry: history/retry.ts, which
 * `pmt-worker jobs retry` shares), which the capture trigger summarises into
 * that attempt's job_run.payload_summary.
 */
import type pg from "pg";
import { UserError } from "../errors.js";

/** The tasks the actions enqueue, named by the worker layer (jobs/ is above this folder). */
export interface ActionTasks {
  backup: string;
  testRestore: string;
  /** The test restores' named queue (shared with the scheduled one: one at a time). */
  testRestoreQueue: string;
}

/**
 * A backup of `database` now, in its queue (after any running one), one
 * attempt. A job key per database: a second click (or a second operator)
 * before the worker takes the job finds it queued and changes nothing but
 * who asked (graphile-worker's preserve_run_at), instead of queueing a
 * second backup; once it runs, a click queues the next.
 */
export async function enqueueBackup(pool: pg.Pool, tasks: ActionTasks, database: string, who: string): Promise<number> {
  return keyedJob(
    pool,
    "select (graphile_worker.add_job($1, $2::json, queue_name => $3, max_attempts => 1, job_key => $4, job_key_mode => 'preserve_run_at')).id",
    [tasks.backup, JSON.stringify({ database, requestedBy: who }), `backup:${database}`, `console:backup:${database}`],
  );
}

/**
 * The test restore of every database this instance backs up, now, one
 * attempt, in the test restores' queue (after a scheduled one that is
 * running); a second click while it waits is the same job.
 */
export async function enqueueTestRestore(pool: pg.Pool, tasks: ActionTasks, who: string): Promise<number> {
  return keyedJob(
    pool,
    "select (graphile_worker.add_job($1, $2::json, queue_name => $3, max_attempts => 1, job_key => 'console:test-restore', job_key_mode => 'preserve_run_at')).id",
    [tasks.testRestore, JSON.stringify({ requestedBy: who }), tasks.testRestoreQueue],
  );
}

/**
 * add_job with a key answers no job when a worker locked the keyed job
 * between graphile-worker's two statements (it just started): asked once
 * more, that queues the next one.
 */
async function keyedJob(pool: pg.Pool, text: string, values: unknown[]): Promise<number> {
  for (let tries = 0; tries < 2; tries++) {
    const { rows } = await pool.query<{ id: string | null }>(text, values);
    if (rows[0]?.id != null) return Number(rows[0].id);
  }
  throw new UserError("the job was taken by a worker as it was being queued (it has just started): see the Jobs page, and click again to queue another");
}
