/**
 * Every task runs through withHistory. The attempt's `running` row was
 * inserted when graphile-worker locked the job (capture trigger), and its
 * success is recorded when graphile-worker deletes the finished job; the
 * wrapper records failures (the error text, secrets removed; an attempt fenced
 * off its lost job only adds why to its abandoned row) before handing
 * them on, keeps the metrics, and makes sure the error graphile-worker stores
 * in graphile_worker.jobs.last_error carries no password either.
 */
import type { JobHelpers, Task } from "graphile-worker";
import type pg from "pg";
import { FencedJobError, PermanentJobError, errorMessage } from "../errors.js";
import { recordFailure, recordFenced, recordFinalFailure } from "../history/runs.js";
import { errorText } from "../redact.js";
import { untilDatabaseAnswers } from "../db/resilient.js";
import type { Logger } from "../log.js";
import type { Metrics } from "./metrics.js";

export interface HistoryContext {
  /** The served database (the metrics' `database` label). */
  database: string;
  pool: pg.Pool;
  logger: Logger;
  metrics: Metrics;
}

/**
 * A failed history write must not change the job's outcome: retry a little,
 * then log. A lost connection is waited out (graphile-worker cannot record
 * the failure before the database is back either), so the attempt shows as
 * failed with its error, not as abandoned.
 */
type Recorder = typeof recordFailure;

async function recordFailureWithRetry(ctx: HistoryContext, jobId: number, attempt: number, error: string, record: Recorder): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await untilDatabaseAnswers(() => record(ctx.pool, jobId, attempt, error), ctx.logger, "recording a failed job attempt");
      return;
    } catch (e) {
      if (i >= 4) {
        ctx.logger.error({ jobId, attempt, err: errorMessage(e) }, "could not record a failed job attempt");
        return;
      }
      await new Promise((r) => setTimeout(r, 250 * 2 ** i));
    }
  }
}

export function withHistory(task: string, body: Task, ctx: HistoryContext): Task {
  return async (payload: unknown, helpers: JobHelpers) => {
    const { job } = helpers;
    const labels = { task, database: ctx.database };
    ctx.metrics.jobsStarted.inc(labels);
    const endTimer = ctx.metrics.jobDuration.startTimer(labels);
    try {
      const result = await body(payload, helpers);
      endTimer({ status: "succeeded" });
      ctx.metrics.jobsSucceeded.inc(labels);
      return result;
    } catch (error) {
      endTimer({ status: "failed" });
      const final = error instanceof PermanentJobError || job.attempts >= job.max_attempts;
      ctx.metrics.jobsFailed.inc({ ...labels, final: String(final) });
      const text = errorText(error);
      const record = error instanceof FencedJobError ? recordFenced : error instanceof PermanentJobError ? recordFinalFailure : recordFailure;
      await recordFailureWithRetry(ctx, Number(job.id), job.attempts, text, record);
      throw new Error(text);
    }
  };
}
