/** Kysely table types for schema pmt_jobs (see migrations/). */
import type { ColumnType, Kysely } from "kysely";

export type JobStatus = "running" | "succeeded" | "failed" | "abandoned";

/** Written only by SQL (the capture trigger, the wrapper's failure record): read-only here. */
export interface JobRunTable {
  id: number;
  job_id: number;
  task: string;
  attempt: number;
  max_attempts: number;
  queue: string | null;
  status: JobStatus;
  started_at: Date;
  finished_at: Date | null;
  duration: unknown;
  error: string | null;
  worker_id: string;
  payload_summary: Record<string, unknown>;
  updated_at: Date;
}

export interface WorkerTable {
  id: string;
  hostname: string;
  pid: number;
  version: string;
  concurrency: number;
  tasks: string[];
  /** The process's other runners (maintenance), released with it. */
  runner_ids: ColumnType<string[], string[] | undefined, string[]>;
  started_at: ColumnType<Date, never, never>;
  last_seen_at: ColumnType<Date, never, never>;
}

export interface PmtJobsDatabase {
  "pmt_jobs.job_run": JobRunTable;
  "pmt_jobs.worker": WorkerTable;
}

export type Db = Kysely<PmtJobsDatabase>;
