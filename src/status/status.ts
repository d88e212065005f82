/**
 * What `pmt-worker status` shows of one database: workers alive, the queue,
 * the last 24 hours of jobs, when each cron entry runs next, backups with
 * their totals and offsite state, the latest test restores, pending exports.
 * Read-only. Ages and durations in seconds, sizes in bytes, times as Dates:
 * the CLI makes them human or JSON.
 */
import type pg from "pg";
import { lastTestRestores, type TestRestoreState } from "../backups/catalog.js";
import { nextRun, type ScheduleEntry } from "./schedule.js";

export interface BackupState {
  database: string;
  last_success_at: Date | null;
  last_success_age_s: number | null;
  /** Successful backups kept, and their size. */
  kept: number;
  kept_bytes: number;
  failed_7d: number;
  /** Proven offsite copies, and their size in the store. */
  offsite_copies: number | null;
  offsite_bytes: number | null;
  /** How long the oldest successful backup without a done copy has waited for it. */
  offsite_lag_s: number | null;
}

export interface Status {
  workers: { id: string; hostname: string; pid: number; concurrency: number; since_heartbeat_s: number }[];
  queue: { task: string; ready: number; scheduled: number; failed: number; running: number }[];
  last_24h: { task: string; succeeded: number; failed: number; abandoned: number; running: number }[];
  /** The crontab entries of a worker with this configuration, with their next firing (null: none within five years), soonest first. */
  /** With the last attempt of each entry's task (of its database, for a backup), scheduled or run by hand. */
  schedule: (ScheduleEntry & { next_run: Date | null; last_run: { started_at: Date; status: string } | null })[];
  backups: BackupState[];
  /** Over every database of this catalog. */
  totals: { backups: number; backup_bytes: number; offsite_copies: number; offsite_bytes: number };
  /** The latest test restore of each database: a failed one must show here, not only in the log. */
  test_restores: TestRestoreState[];
  exports_pending: { status: string; count: number; oldest: Date }[];
  /** Sent in the last 7 days without the server's 250: the recipient may or may not have them. */
  exports_unconfirmed: { count: number; newest_id: number | null }[];
}

/** `schedule`: the crontab entries to show (status/schedule.ts scheduleOf); none by default. */
export async function collectStatus(pool: pg.Pool, schedule: ScheduleEntry[] = [], now = new Date()): Promise<Status> {
  const q = async <T extends pg.QueryResultRow>(sql: string) => (await pool.query<T>(sql)).rows;
  const backups = await q<BackupState>(
    `select s.database, s.last_success_at, extract(epoch from s.last_success_age)::float8 as last_success_age_s,
            s.kept::int, coalesce(k.bytes, 0)::float8 as kept_bytes, s.failed_7d::int,
            s.offsite_copies::int, o.bytes::float8 as offsite_bytes, extract(epoch from s.offsite_lag)::float8 as offsite_lag_s
     from pmt_jobs.backup_status s
     left join lateral (select sum(b.bytes) as bytes from pmt_jobs.backup b where b.database = s.database and b.status = 'succeeded') k on true
     left join lateral (select sum(c.bytes) as bytes from pmt_jobs.backup_copy c join pmt_jobs.backup b on b.id = c.backup_id
                        where b.database = s.database and c.status = 'verified') o on true
     order by s.database`,
  );
  return {
    workers: await q(`select id, hostname, pid, concurrency, round(extract(epoch from now() - last_seen_at))::int as since_heartbeat_s
                      from pmt_jobs.worker order by started_at`),
    queue: await q(`select task_identifier as task,
                           count(*) filter (where locked_at is null and attempts < max_attempts and run_at <= now())::int as ready,
                           count(*) filter (where locked_at is null and attempts < max_attempts and run_at > now())::int as scheduled,
                           count(*) filter (where attempts >= max_attempts and locked_at is null)::int as failed,
                           count(*) filter (where locked_at is not null)::int as running
                    from graphile_worker.jobs group by 1 order by 1`),
    last_24h: await q(`select task,
                              count(*) filter (where status = 'succeeded')::int as succeeded,
                              count(*) filter (where status = 'failed')::int as failed,
                              count(*) filter (where status = 'abandoned')::int as abandoned,
                              count(*) filter (where status = 'running')::int as running
                       from pmt_jobs.job_run where started_at > now() - interval '24 hours' group by 1 order by 1`),
    // Soonest first; an entry that never fires (within five years) last.
    schedule: (
      await Promise.all(schedule.map(async (entry) => ({ ...entry, next_run: nextRun(entry.match, now), last_run: await lastRun(pool, entry) })))
    ).sort((a, b) => (a.next_run?.getTime() ?? Infinity) - (b.next_run?.getTime() ?? Infinity)),
    backups,
    totals: {
      backups: backups.reduce((n, b) => n + b.kept, 0),
      backup_bytes: backups.reduce((n, b) => n + b.kept_bytes, 0),
      offsite_copies: backups.reduce((n, b) => n + (b.offsite_copies ?? 0), 0),
      offsite_bytes: backups.reduce((n, b) => n + (b.offsite_bytes ?? 0), 0),
    },
    test_restores: await lastTestRestores(pool),
    exports_pending: await q(`select status, count(*)::int as count, min(requested_at) as oldest
                              from pmt_jobs.export_request where status not in ('sent', 'failed') group by 1 order by 1`),
    exports_unconfirmed: await q(`select count(*)::int as count, max(id)::int as newest_id from pmt_jobs.export_request
                                  where status = 'sent' and error like 'delivery unconfirmed:%' and sent_at > now() - interval '7 days'`),
  };
}

/** The newest attempt of an entry's task (for a backup entry, of its database), by job_run_task_started_at_idx. */
async function lastRun(pool: pg.Pool, entry: ScheduleEntry): Promise<{ started_at: Date; status: string } | null> {
  const { rows } = await pool.query<{ started_at: Date; status: string }>(
    `select started_at, status from pmt_jobs.job_run
     where task = $1 and ($2::text is null or payload_summary->>'database' = $2)
     order by started_at desc limit 1`,
    [entry.task, entry.database ?? null],
  );
  return rows[0] ?? null;
}
