/**
 * The task list, from the duties in jobs/: each is registered under its task
 * name and wrapped by withHistory in worker/runner.ts.
 */
import type { Task } from "graphile-worker";
import { DUTIES, JOBS, type JobContext } from "../jobs/index.js";

/** What every task body is given (one served database's). */
export type TaskContext = JobContext;

type Names = { [K in keyof typeof DUTIES]: (typeof DUTIES)[K]["task"] };

/** The task names: the SQL and queue interface (`graphile_worker.add_job` calls, cron rows, job_run.task). */
export const TASK = Object.fromEntries(Object.entries(DUTIES).map(([key, job]) => [key, job.task])) as Names;

/**
 * Run by the maintenance runner, in slots of their own (MAINTENANCE_CONCURRENCY),
 * so a backup never waits behind exports; every other task (exports, noop,
 * an embedding application's) runs in WORKER_CONCURRENCY's slots.
 */
export const MAINTENANCE_TASKS: ReadonlySet<string> = new Set(JOBS.filter((job) => job.maintenance).map((job) => job.task));

export function buildTasks(ctx: TaskContext): Record<string, Task> {
  return Object.fromEntries(JOBS.map((job) => [job.task, job.taskFor(ctx)]));
}
