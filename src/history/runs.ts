/**
 * Writes of pmt_jobs.job_run, one statement each. The history wrapper calls
 * startRun before a task body and finishRun after; the rescuer calls the
 * abandon functions for attempts whose worker died or lost its lock.
 */
import { sql } from "kysely";
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
 * Inserts the `running` row of this attempt and, in the same statement, marks
 * earlier attempts of the job that are still `running` as `abandoned`: they
 * belonged to a worker that died before recording their end.
 */
export async function startRun(db: Db, run: StartRun): Promise<number> {
  const row = await db
    .with("abandoned", (qb) =>
      qb
        .updateTable("pmt_jobs.job_run")
        .set({
          status: "abandoned",
          finished_at: sql`now()`,
          error: sql`coalesce(error, 'worker ' || worker_id || ' stopped before the attempt finished; retried as attempt ' || ${run.attempt}::int)`,
        })
        .where("job_id", "=", run.jobId)
        .where("status", "=", "running")
        .where("attempt", "<", run.attempt)
        .returning("id"),
    )
    .insertInto("pmt_jobs.job_run")
    .values({
      job_id: run.jobId,
      task: run.task,
      attempt: run.attempt,
      max_attempts: run.maxAttempts,
      queue: run.queue,
      worker_id: run.workerId,
      payload_summary: JSON.stringify(run.payloadSummary),
    })
    .returning("id")
    .executeTakeFirstOrThrow();
  return row.id;
}

export async function finishRun(db: Db, id: number, status: Exclude<JobStatus, "running">, error: string | null): Promise<void> {
  await db
    .updateTable("pmt_jobs.job_run")
    .set({ status, error, finished_at: sql`now()` })
    .where("id", "=", id)
    .where("status", "=", "running")
    .execute();
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
