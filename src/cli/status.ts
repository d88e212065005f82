import type { Command } from "commander";
import type pg from "pg";
import { lastTestRestores, type TestRestoreState } from "../backups/catalog.js";
import { withDatabases } from "./context.js";
import { section, table } from "./format.js";

interface Status {
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

function render(s: Status, offsite: boolean): string {
  const out: string[] = [];
  out.push(
    s.workers.length
      ? `Workers (${s.workers.length} alive):\n` + table(["id", "host", "pid", "slots", "heartbeat"], s.workers.map((w) => [w.id, w.hostname, String(w.pid), String(w.concurrency), `${w.since_heartbeat_s} s ago`]))
      : "Workers: none running\n",
  );
  out.push(
    s.queue.length
      ? "Queue:\n" + table(["task", "ready", "scheduled", "running", "failed for good"], s.queue.map((r) => [r.task, String(r.ready), String(r.scheduled), String(r.running), String(r.failed)]))
      : "Queue: empty\n",
  );
  out.push(
    s.last_24h.length
      ? "Last 24 hours:\n" + table(["task", "succeeded", "failed", "abandoned", "running"], s.last_24h.map((r) => [r.task, String(r.succeeded), String(r.failed), String(r.abandoned), String(r.running)]))
      : "Last 24 hours: no jobs\n",
  );
  out.push(
    s.backups.length
      ? "Backups:\n" + table(["database", "last success", "kept", "failed 7d", "offsite copies", "offsite lag"], s.backups.map((b) => [b.database, b.last_success_age ? `${b.last_success_age} ago` : "never", String(b.kept), String(b.failed_7d), offsite ? String(b.offsite_copies ?? 0) : "off", offsite ? (b.offsite_lag ?? "none") : "-"]))
      : "Backups: none yet\n",
  );
  if (s.test_restores.length) {
    out.push(
      "Test restores (latest):\n" +
        table(["database", "backup", "tested", "result"], s.test_restores.map((t) => [t.database, String(t.backup_id), t.tested_at.toISOString().replace(/\.\d{3}Z$/, "Z"), t.ok ? "ok" : `FAILED: ${(t.error ?? "").split("\n")[0]!.slice(0, 100)}`])),
    );
  }
  out.push(
    s.exports_pending.length
      ? "Exports pending:\n" + table(["status", "count", "oldest"], s.exports_pending.map((e) => [e.status, String(e.count), e.oldest]))
      : "Exports pending: none\n",
  );
  const unconfirmed = s.exports_unconfirmed[0];
  if (unconfirmed?.count) {
    out.push(
      `Exports with delivery unconfirmed (7 days): ${unconfirmed.count}, newest request ${unconfirmed.newest_id}; ` +
        "the mail server may or may not have them and they are not sent again: see error in pmt_jobs.export_request\n",
    );
  }
  return out.join("\n");
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("one screen: workers alive, queue, last 24 hours of jobs, backups and offsite state, pending exports; one section per served database")
    .option("--database <name>", "only this served database (default: all)")
    .option("--json", "as JSON (with several databases: an array of them, each with its database)")
    .action(async (opts: { database?: string; json?: boolean }) => {
      let several = false;
      const all = await withDatabases({ database: opts.database }, async ({ pool, config, database, several: many }) => {
        several = many;
        const status = await collectStatus(pool);
        // Text as each database answers; JSON once, as one document.
        if (!opts.json) {
          const text = render(status, Boolean(config.offsite.url));
          process.stdout.write(many ? section(database, text) : text);
        }
        return { database, ...status };
      });
      if (!opts.json) return;
      // One database: the object as it always was; several (even if some could not be reached): an array.
      if (several || all.length !== 1) process.stdout.write(JSON.stringify(all) + "\n");
      else {
        const { database: _, ...status } = all[0]!;
        process.stdout.write(JSON.stringify(status) + "\n");
      }
    });
}
