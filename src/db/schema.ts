/** Kysely table types for schema pmt_jobs (see migrations/). */
import type { ColumnType, Generated, Kysely } from "kysely";

export type JobStatus = "running" | "succeeded" | "failed" | "abandoned";

export interface JobRunTable {
  id: Generated<number>;
  job_id: number;
  task: string;
  attempt: number;
  max_attempts: number;
  queue: string | null;
  status: ColumnType<JobStatus, JobStatus | undefined, JobStatus>;
  started_at: ColumnType<Date, Date | undefined, never>;
  finished_at: ColumnType<Date | null, never, Date | null | ReturnType<typeof Object>>;
  duration: ColumnType<unknown, never, never>;
  error: string | null;
  worker_id: string;
  payload_summary: ColumnType<Record<string, unknown>, string, string>;
  updated_at: ColumnType<Date, never, never>;
}

export interface WorkerTable {
  id: string;
  hostname: string;
  pid: number;
  version: string;
  concurrency: number;
  tasks: string[];
  started_at: ColumnType<Date, never, never>;
  last_seen_at: ColumnType<Date, never, never>;
}

export interface PmtJobsDatabase {
  "pmt_jobs.job_run": JobRunTable;
  "pmt_jobs.worker": WorkerTable;
}

export type Db = Kysely<PmtJobsDatabase>;
