/**
 * The console's actions, each one statement or transaction on graphile-worker's
 * queue (documented functions add_job and reschedule_jobs), and each recorded
 * in the history by the attempt it causes: who asked goes into the job's
 * payload (`requestedBy`, or `retriedBy` on a retry), which the capture
 * trigger summarises into that attempt's job_run.payload_summary.
 */
import type pg from "pg";
import { UserError } from "../errors.js";

/** The tasks the actions enqueue, named by the worker layer (jobs/ is above this folder). */
export interface ActionTasks {
  backup: string;
  testRestore: string;
}

/**
 * Gives a job that used up its attempts one more (run now): its attempt
 * numbers go on (attempt n+1 of n+1), so its history reads as one job. Only a
 * job that failed for good and is not locked; its payload, when an object,
 * gains `retriedBy`.
 */
export async function retryJob(pool: pg.Pool, jobId: number, who: string): Promise<{ attempt: number }> {
  const client = await pool.connect();
  try {
    await client.query("begin");
    const { rows } = await client.query<{ attempts: number }>(
      `update graphile_worker._private_jobs
       set payload = case when json_typeof(payload) = 'object' then (payload::jsonb || jsonb_build_object('retriedBy', $2::text))::json else payload end
       where id = $1 and attempts >= max_attempts and locked_at is null
       returning attempts`,
      [jobId, who],
    );
    if (!rows[0]) throw new UserError(`job ${jobId} is not a job that failed for good (it ran again, is running, or is gone): nothing to retry`);
    await client.query("select id from graphile_worker.reschedule_jobs(array[$1]::bigint[], run_at := now(), max_attempts := $2)", [
      jobId,
      rows[0].attempts + 1,
    ]);
    await client.query("commit");
    return { attempt: rows[0].attempts + 1 };
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** A backup of `database` now, in its queue (after any running one), one attempt. */
export async function enqueueBackup(pool: pg.Pool, tasks: ActionTasks, database: string, who: string): Promise<number> {
  const { rows } = await pool.query<{ id: string }>("select (graphile_worker.add_job($1, $2::json, queue_name => $3, max_attempts => 1)).id", [
    tasks.backup,
    JSON.stringify({ database, requestedBy: who }),
    `backup:${database}`,
  ]);
  return Number(rows[0]!.id);
}

/** The test restore of every database this instance backs up, now, one attempt. */
export async function enqueueTestRestore(pool: pg.Pool, tasks: ActionTasks, who: string): Promise<number> {
  const { rows } = await pool.query<{ id: string }>("select (graphile_worker.add_job($1, $2::json, max_attempts => 1)).id", [
    tasks.testRestore,
    JSON.stringify({ requestedBy: who }),
  ]);
  return Number(rows[0]!.id);
}
