/**
 * Writes of pmt_jobs.job_run from the worker. Starts, successes and abandoned
 * attempts are captured by a trigger on graphile-worker's own statements
 * (migrations/0002_history_capture.sql); the worker records only what the
 * database cannot see: why an attempt failed.
 */
import type pg from "pg";

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
 * Releases the jobs locked by dead workers for retry; the capture trigger marks
 * their running attempts abandoned with `reason`. One transaction.
 */
export async function releaseWorkers(pool: pg.Pool, workerIds: string[], reason: string): Promise<void> {
  if (workerIds.length === 0) return;
  const client = await pool.connect();
  try {
    await client.query("begin");
    await client.query("select set_config('pmt_jobs.release_reason', $1, true)", [reason]);
    await client.query("select graphile_worker.force_unlock_workers($1::text[])", [workerIds]);
    await client.query("commit");
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
