/**
 * What `pmt-worker status` shows of one database: workers alive, the queue,
 * the last 24 hours of jobs, backups and their offsite state, the latest
 * test restores, pending exports. Read-only.
 */
import type pg from "pg";
import { lastTestRestores, type TestRestoreState } from "../backups/catalog.js";

export interface Status {
  workers: { id: string; hostname: string; pid: number; concurrency: number; since_heartbeat_s: number }[];
  queue: { task: string; ready: number; scheduled: number; failed: number; running: number }[];
  last_24h: { task: string; succeeded: number; failed: number; abandoned: number; running: number }[];
  backups: { database: string; last_success_age: string | null; kept: number; failed_7d: number; offsite_copies: number | null; offsite_lag: string | null }[];
  /** The latest test restore of each database: a failed one must show here, not only in the log. */
  test_restores: TestRestoreState[];
  exports_pending: { status: string; count: number; oldest: string }[];
  /** Sent in the last 7 days without the server's 250: the recipient may or may not have them. */
  exports_unconfirmed: { count: number; newest_id: number | null }[];
}

export async function collectStatus(pool: pg.Pool): Promise<Status> {
  const q = async <T extends pg.QueryResultRow>(sql: string) => (await pool.query<T>(sql)).rows;
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
    backups: await q(`select database, last_success_age::text, kept::int, failed_7d::int, offsite_copies::int, offsite_lag::text
                      from pmt_jobs.backup_status`),
    test_restores: await lastTestRestores(pool),
    exports_pending: await q(`select status, count(*)::int as count, min(requested_at)::text as oldest
                              from pmt_jobs.export_request where status not in ('sent', 'failed') group by 1 order by 1`),
    exports_unconfirmed: await q(`select count(*)::int as count, max(id)::int as newest_id from pmt_jobs.export_request
                                  where status = 'sent' and error like 'delivery unconfirmed:%' and sent_at > now() - interval '7 days'`),
  };
}
