/**
 * Prometheus metrics on /metrics. Queue depth is read from graphile_worker.jobs
 * at scrape time, so every worker reports the same, current figure.
 */
import client from "prom-client";
import type pg from "pg";

export interface Metrics {
  registry: client.Registry;
  jobsStarted: client.Counter<"task">;
  jobsSucceeded: client.Counter<"task">;
  jobsFailed: client.Counter<"task" | "final">;
  jobDuration: client.Histogram<"task" | "status">;
}

export function createMetrics(pool: pg.Pool): Metrics {
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
  return { registry, jobsStarted, jobsSucceeded, jobsFailed, jobDuration };
}
