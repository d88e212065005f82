/**
 * Prometheus metrics on /metrics. Queue depth is read from graphile_worker.jobs
 * at scrape time, so every worker reports the same, current figure.
 */
import fs from "node:fs";
import client from "prom-client";
import type pg from "pg";

export interface Metrics {
  registry: client.Registry;
  jobsStarted: client.Counter<"task">;
  jobsSucceeded: client.Counter<"task">;
  jobsFailed: client.Counter<"task" | "final">;
  jobDuration: client.Histogram<"task" | "status">;
}

/** A gauge whose values are read at scrape time; a failed read leaves it empty rather than failing the scrape. */
function liveGauge<L extends string>(
  registry: client.Registry,
  name: string,
  help: string,
  labelNames: L[],
  read: () => Promise<{ labels: Record<L, string>; value: number }[]>,
): void {
  new client.Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      this.reset();
      const values = await read().catch(() => []);
      for (const v of values) this.set(v.labels as Partial<Record<L, string>>, v.value);
    },
  });
}

export function createMetrics(pool: pg.Pool, options: { backupDir?: string } = {}): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "pmt_worker_" });
  const jobsStarted = new client.Counter({
    name: "pmt_worker_jobs_started_total",
    help: "Job attempts started, per task",
    labelNames: ["task"],
    registers: [registry],
  });
  const jobsSucceeded = new client.Counter({
    name: "pmt_worker_jobs_succeeded_total",
    help: "Job attempts that succeeded, per task",
    labelNames: ["task"],
    registers: [registry],
  });
  const jobsFailed = new client.Counter({
    name: "pmt_worker_jobs_failed_total",
    help: "Job attempts that failed, per task; final=true when no attempt is left",
    labelNames: ["task", "final"],
    registers: [registry],
  });
  const jobDuration = new client.Histogram({
    name: "pmt_worker_job_duration_seconds",
    help: "Duration of job attempts, per task and outcome",
    labelNames: ["task", "status"],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers: [registry],
  });
  new client.Gauge({
    name: "pmt_worker_queue_depth",
    help: "Jobs waiting in graphile_worker.jobs, per task (state: ready, scheduled, failed = no attempts left)",
    labelNames: ["task", "state"],
    registers: [registry],
    async collect() {
      this.reset();
      // Database unreachable: leave the gauge empty rather than fail the whole scrape.
      const result = await pool.query<{ task: string; state: string; n: number }>(`
        select task_identifier as task,
               case when attempts >= max_attempts then 'failed'
                    when run_at > now() then 'scheduled'
                    else 'ready' end as state,
               count(*)::int as n
        from graphile_worker.jobs
        where locked_at is null
        group by 1, 2`).catch(() => ({ rows: [] }));
      for (const r of result.rows) this.set({ task: r.task, state: r.state }, r.n);
    },
  });
  const perDatabase = async (sql: string) => {
    const { rows } = await pool.query<{ database: string; value: number | null }>(sql);
    return rows.filter((r) => r.value !== null).map((r) => ({ labels: { database: r.database }, value: Number(r.value) }));
  };
  // Rows dated in the future (a clock that was ahead) are ignored: the age is never negative.
  liveGauge(registry, "pmt_worker_backup_last_success_age_seconds", "Seconds since the last successful backup not dated in the future, per database", ["database"], () =>
    perDatabase("select database, extract(epoch from now() - max(finished_at))::float8 as value from pmt_jobs.backup where status = 'succeeded' and finished_at <= now() group by 1"),
  );
  liveGauge(registry, "pmt_worker_backup_last_bytes", "Size of the last successful backup, per database", ["database"], () =>
    perDatabase("select distinct on (database) database, bytes::float8 as value from pmt_jobs.backup where status = 'succeeded' and finished_at <= now() order by database, finished_at desc"),
  );
  liveGauge(registry, "pmt_worker_backup_last_duration_seconds", "Duration of the last successful backup, per database", ["database"], () =>
    perDatabase("select distinct on (database) database, extract(epoch from duration)::float8 as value from pmt_jobs.backup where status = 'succeeded' and finished_at <= now() order by database, finished_at desc"),
  );
  liveGauge(registry, "pmt_worker_offsite_lag_seconds", "How long the oldest successful backup without an offsite copy has waited (0: none waiting), per database", ["database"], () =>
    perDatabase(`select b.database, greatest(coalesce(extract(epoch from max(now() - b.finished_at) filter (where not exists (
                   select 1 from pmt_jobs.backup_offsite_done d where d.backup_id = b.id))), 0), 0)::float8 as value
                 from pmt_jobs.backup b where b.status = 'succeeded' group by 1`),
  );
  liveGauge(registry, "pmt_worker_export_requests", "Export requests by status", ["status"], async () => {
    const { rows } = await pool.query<{ status: string; n: number }>("select status, count(*)::int as n from pmt_jobs.export_request group by 1");
    return rows.map((r) => ({ labels: { status: r.status }, value: r.n }));
  });
  if (options.backupDir) {
    const dir = options.backupDir;
    liveGauge(registry, "pmt_worker_backup_dir_free_bytes", "Free bytes in BACKUP_DIR", [], async () => {
      const stat = fs.statfsSync(dir);
      return [{ labels: {}, value: stat.bavail * stat.bsize }];
    });
  }
  return { registry, jobsStarted, jobsSucceeded, jobsFailed, jobDuration };
}
