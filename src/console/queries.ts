/**
 * The console's reads for the Overview, Backups and Exports pages (the Jobs
 * page's are in jobs-query.ts). Read-only SQL over pmt_jobs and
 * graphile_worker.jobs, run through read.ts's READ ONLY transactions.
 */
import type { Query } from "./read.js";

export interface WorkerRow {
  id: string;
  hostname: string;
  pid: number;
  version: string;
  concurrency: number;
  started_at: string;
  since_heartbeat_s: number;
}

export async function workers(q: Query): Promise<WorkerRow[]> {
  return q(`select id, hostname, pid, version, concurrency, started_at::text,
                   round(extract(epoch from now() - last_seen_at))::int as since_heartbeat_s
            from pmt_jobs.worker order by started_at`);
}

export interface QueueRow {
  task: string;
  ready: number;
  scheduled: number;
  running: number;
  failed: number;
}

export async function queueDepth(q: Query): Promise<QueueRow[]> {
  return q(`select task_identifier as task,
                   count(*) filter (where locked_at is null and attempts < max_attempts and run_at <= now())::int as ready,
                   count(*) filter (where locked_at is null and attempts < max_attempts and run_at > now())::int as scheduled,
                   count(*) filter (where locked_at is not null)::int as running,
                   count(*) filter (where locked_at is null and attempts >= max_attempts)::int as failed
            from graphile_worker.jobs group by 1 order by 1`);
}

/** Attempts per task per bucket ('hour' over the last 24 h, 'day' over 30 days): [bucket epoch seconds, task, count]. */
export async function jobCounts(q: Query, unit: "hour" | "day"): Promise<{ t: number; task: string; n: number }[]> {
  const span = unit === "hour" ? "24 hours" : "30 days";
  return q(`select extract(epoch from date_trunc('${unit}', started_at))::float8 as t, task, count(*)::int as n
            from pmt_jobs.job_run where started_at > now() - interval '${span}'
            group by 1, 2 order by 1, 2`);
}

export interface FailedJob {
  id: number;
  task: string;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  updated_at: string;
}

/** Jobs that used up their attempts: graphile-worker keeps them until retried or removed. */
export async function failedJobs(q: Query, limit = 50): Promise<FailedJob[]> {
  return q(
    `select id::float8 as id, task_identifier as task, attempts, max_attempts, last_error, updated_at::text
            from graphile_worker.jobs where attempts >= max_attempts and locked_at is null
            order by updated_at desc limit $1`,
    [limit],
  );
}

export interface RecentFailure {
  id: number;
  job_id: number;
  task: string;
  attempt: number;
  max_attempts: number;
  status: string;
  started_at: string;
  error: string | null;
}

export async function recentFailures(q: Query, limit = 20): Promise<RecentFailure[]> {
  return q(
    `select id::float8 as id, job_id::float8 as job_id, task, attempt, max_attempts, status, started_at::text, error
            from pmt_jobs.job_run where status in ('failed', 'abandoned') and started_at > now() - interval '24 hours'
            order by started_at desc, id desc limit $1`,
    [limit],
  );
}

export interface AlertRow {
  condition: string;
  subject: string;
  first_seen_at: string;
  last_seen_at: string;
  last_sent_at: string | null;
  times_seen: number;
}

export async function alerts(q: Query, limit = 20): Promise<AlertRow[]> {
  return q(
    `select condition, subject, first_seen_at::text, last_seen_at::text, last_sent_at::text, times_seen
            from pmt_jobs.alert order by last_seen_at desc limit $1`,
    [limit],
  );
}

export interface BackupStatusRow {
  database: string;
  last_success_at: string | null;
  last_success_age: string | null;
  last_success_bytes: number | null;
  kept: number;
  failed_7d: number;
  last_error: string | null;
  running: boolean;
  offsite_copies: number | null;
  offsite_lag: string | null;
  corrupt: number;
}

export async function backupStatus(q: Query): Promise<BackupStatusRow[]> {
  return q(`select database, last_success_at::text, last_success_age::text, last_success_bytes::float8, kept::int, failed_7d::int, last_error,
                   running, offsite_copies::int, offsite_lag::text, corrupt::int
            from pmt_jobs.backup_status`);
}

export interface BackupDay {
  id: number;
  status: string;
  tiers: string[];
  bytes: number | null;
  started_at: string;
  finished_at: string | null;
  error: string | null;
  file: string | null;
  final: boolean;
  restore_tested_at: string | null;
  restore_test_ok: boolean | null;
  restore_test_error: string | null;
  /** started_at in seconds since the epoch (the size chart's x). */
  t: number;
}

/** One database's backups since `since`, oldest first: the calendar and the size chart. */
export async function backupsSince(q: Query, database: string, since: Date): Promise<BackupDay[]> {
  return q(
    `select id::float8 as id, status, tiers, bytes::float8 as bytes, started_at::text, finished_at::text, error, file, final,
            restore_tested_at::text, restore_test_ok, restore_test_error, extract(epoch from started_at)::float8 as t
     from pmt_jobs.backup where database = $1 and started_at >= $2 order by started_at, id`,
    [database, since],
  );
}

/** The succeeded backups of a database (retention's candidates), with whether their offsite copy is done. */
export async function retentionCandidates(
  q: Query,
  database: string,
): Promise<{ id: number; started_at: Date; final: boolean; file: string | null; bytes: number | null; tiers: string[]; offsite_done: boolean }[]> {
  return q(
    `select b.id::float8 as id, b.started_at, b.final, b.file, b.bytes::float8 as bytes, b.tiers,
            exists (select 1 from pmt_jobs.backup_offsite_done d where d.backup_id = b.id) as offsite_done
     from pmt_jobs.backup b where b.database = $1 and b.status = 'succeeded' order by b.started_at desc`,
    [database],
  );
}

export interface CopyRow {
  backup_id: number;
  file: string | null;
  target: string;
  key: string;
  status: string;
  bytes: number | null;
  uploaded_at: string | null;
  verified_at: string | null;
  error: string | null;
  lag: string | null;
}

/** The offsite copies of a database's latest backups, with how long each waited for its copy. */
export async function offsiteCopies(q: Query, database: string, limit = 30): Promise<CopyRow[]> {
  return q(
    `select c.backup_id::float8 as backup_id, b.file, c.target, c.key, c.status, c.bytes::float8 as bytes,
            c.uploaded_at::text, c.verified_at::text, c.error,
            date_trunc('second', greatest(coalesce(c.verified_at, now()) - b.finished_at, interval '0'))::text as lag
     from pmt_jobs.backup_copy c join pmt_jobs.backup b on b.id = c.backup_id
     where b.database = $1 order by b.started_at desc, c.id desc limit $2`,
    [database, limit],
  );
}

/** The databases this catalog has backups of. */
export async function catalogDatabases(q: Query): Promise<string[]> {
  return (await q<{ database: string }>("select distinct database from pmt_jobs.backup order by 1")).map((r) => r.database);
}

export interface ExportRow {
  id: number;
  format: string;
  recipient: string;
  instance: string;
  requested_by: string;
  requested_at: string;
  status: string;
  rows: number | null;
  bytes: number | null;
  attachment: string | null;
  compressed: boolean | null;
  offsite_key: string | null;
  link_expires_at: string | null;
  sent_at: string | null;
  error: string | null;
  commit_to_mail_s: number | null;
}

export const EXPORT_STATUSES = ["queued", "rendering", "sending", "sent", "failed"] as const;

/** Export requests, newest first, keyset-paginated by id. */
export async function exportRequests(q: Query, filter: { status?: string; beforeId?: number; limit: number }): Promise<ExportRow[]> {
  return q(
    `select id::float8 as id, format, recipient, instance, requested_by, requested_at::text, status, rows::float8 as rows, bytes::float8 as bytes,
            attachment, compressed, offsite_key, link_expires_at::text, sent_at::text, error,
            extract(epoch from sent_at - requested_at)::float8 as commit_to_mail_s
     from pmt_jobs.export_request
     where ($1::text is null or status = $1) and ($2::bigint is null or id < $2)
     order by id desc limit $3`,
    [filter.status ?? null, filter.beforeId ?? null, filter.limit],
  );
}
