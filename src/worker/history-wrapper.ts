/**
 * Every task runs through withHistory: a `running` row in pmt_jobs.job_run is
 * inserted before the body runs and updated to `succeeded` or `failed` after.
 * A crash leaves the row `running`; the next attempt of the job or the rescuer
 * marks it `abandoned`.
 */
import type { JobHelpers, Task } from "graphile-worker";
import { errorMessage } from "../errors.js";
import { errorText, summarizePayload } from "../history/summary.js";
import type { HistoryWriter } from "../history/writer.js";
import type { Logger } from "../log.js";
import type { Metrics } from "./metrics.js";

export interface HistoryContext {
  writer: HistoryWriter;
  logger: Logger;
  metrics: Metrics;
}

/** A failed history write after the task ran must not change the job's outcome: retry, then log. */
async function finishWithRetry(ctx: HistoryContext, id: number, status: "succeeded" | "failed", error: string | null): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await ctx.writer.finish({ id, status, error });
      return;
    } catch (e) {
      if (attempt >= 4) {
        ctx.logger.error({ runId: id, status, err: errorMessage(e) }, "could not record the end of a job attempt");
        return;
      }
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
}

export function withHistory(task: string, body: Task, ctx: HistoryContext): Task {
  return async (payload: unknown, helpers: JobHelpers) => {
    const { job } = helpers;
    const queue = job.job_queue_id === null ? null : await helpers.getQueueName();
    const runId = await ctx.writer.start({
      jobId: Number(job.id),
      task,
      attempt: job.attempts,
      maxAttempts: job.max_attempts,
      queue,
      workerId: job.locked_by ?? "unknown",
      payloadSummary: summarizePayload(payload),
    });
    ctx.metrics.jobsStarted.inc({ task });
    const endTimer = ctx.metrics.jobDuration.startTimer({ task });
    try {
      const result = await body(payload, helpers);
      endTimer({ status: "succeeded" });
      ctx.metrics.jobsSucceeded.inc({ task });
      await finishWithRetry(ctx, runId, "succeeded", null);
      return result;
    } catch (error) {
      endTimer({ status: "failed" });
      ctx.metrics.jobsFailed.inc({ task, final: String(job.attempts >= job.max_attempts) });
      await finishWithRetry(ctx, runId, "failed", errorText(error));
      throw error;
    }
  };
}
