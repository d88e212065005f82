/**
 * Prometheus metrics on /metrics. Queue depth is read from graphile_worker.jobs
 * at scrape time, so every worker reports the same, current figure. Every
 * metric but the process's own has a `database` label: the served database
 * (for the backup figures, the database backed up).
 */
import client from "prom-client";
import type pg from "pg";
import { freeBytes } from "../io/space.js";

export interface Metrics {
  registry: client.Registry;
  jobsStarted: client.Counter<"task" | "database">;
  jobsSucceeded: client.Counter<"task" | "database">;
  jobsFailed: client.Counter<"task" | "final" | "database">;
  jobDuration: client.Histogram<"task" | "status" | "database">;
}

/** A served database whose figures are read at scrape time. */
export interface MetricsSource {
  database: string;
  pool: pg.Pool;
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

/** The same query on every source at once, its rows tagged with the source's database; a source that fails adds nothing. */
async function fromEach<R extends pg.QueryResultRow>(sources: () => MetricsSource[], sql: string): Promise<(R & { source: string })[]> {
  const results = await Promise.all(
    sources().map((s) =>
      s.pool.query<R>(sql).then(
        (r) => r.rows.map((row) => ({ ...row, source: s.database })),
        () => [],
      ),
    ),
  );
  return results.flat();
}

/**
 * `sources`: the served databases running now; `databases`: every served
 * database and whether it answers (pmt_worker_database_up).
 */
export function createMetrics(
  sources: () => MetricsSource[],
  options: {
    backupDir?: string;
    databases?: () => { database: string; up: boolean }[];
    /** Jobs waiting for one of the process's slots, per kind of slot and database. */
    slotWaits?: () => Record<"exports" | "maintenance", Record<string, number>>;
  } = {},
): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "pmt_worker_" });
  const jobsStarted = new client.Counter({
    name: "pmt_worker_jobs_started_total",
    help: "Job attempts started, per task",
    labelNames: ["task", "database"],
    registers: [registry],
  });
  const jobsSucceeded = new client.Counter({
    name: "pmt_worker_jobs_succeeded_total",
    help: "Job attempts that succeeded, per task",
    labelNames: ["task", "database"],
    registers: [registry],
  });
  const jobsFailed = new client.Counter({
    name: "pmt_worker_jobs_failed_total",
    help: "Job attempts that failed, per task; final=true when no attempt is left",
    labelNames: ["task", "final", "database"],
    registers: [registry],
  });
  const jobDuration = new client.Histogram({
    name: "pmt_worker_job_duration_seconds",
    help: "Duration of job attempts, per task and outcome",
    labelNames: ["task", "status", "database"],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers: [registry],
  });
  liveGauge(
    registry,
    "pmt_worker_queue_depth",
    "Jobs waiting in graphile_worker.jobs, per database and task (state: ready, scheduled, failed = no attempts left)",
    ["task", "state", "database"],
    async () => {
      // A database that does not answer leaves its figures out rather than failing the whole scrape.
      const rows = await fromEach<{ task: string; state: string; n: number }>(
        sources,
        `
        select task_identifier as task,
               case when attempts >= max_attempts then 'failed'
                    when run_at > now() then 'scheduled'
                    else 'ready' end as state,
               count(*)::int as n
        from graphile_worker.jobs
        where locked_at is null
        group by 1, 2`,
      );
      return rows.map((r) => ({ labels: { task: r.task, state: r.state, database: r.source }, value: r.n }));
    },
  );
  if (options.databases) {
    const databases = options.databases;
    liveGauge(registry, "pmt_worker_database_up", "1 when the served database answers and its jobs run, 0 while it is being retried", ["database"], async () =>
      databases().map((d) => ({ labels: { database: d.database }, value: d.up ? 1 : 0 })),
    );
  }
  if (options.slotWaits) {
    const waits = options.slotWaits;
    liveGauge(
      registry,
      "pmt_worker_jobs_waiting_for_slot",
      "Jobs taken from a database's queue that wait for one of the process's slots (shared in turn by the databases), per kind of slot",
      ["kind", "database"],
      async () => Object.entries(waits()).flatMap(([kind, perDb]) => Object.entries(perDb).map(([database, n]) => ({ labels: { kind, database }, value: n }))),
    );
  }
  const perDatabase = async (sql: string) => {
    const rows = await fromEach<{ database: string; value: number | null }>(sources, sql);
    return rows.filter((r) => r.value !== null).map((r) => ({ labels: { database: r.database }, value: Number(r.value) }));
  };
  // Rows dated in the future (a clock that was ahead) are ignored: the age is never negative.
  liveGauge(
    registry,
    "pmt_worker_backup_last_success_age_seconds",
    "Seconds since the last successful backup not dated in the future, per database",
    ["database"],
    () =>
      perDatabase(
        "select database, extract(epoch from now() - max(finished_at))::float8 as value from pmt_jobs.backup where status = 'succeeded' and finished_at <= now() group by 1",
      ),
  );
  liveGauge(registry, "pmt_worker_backup_last_bytes", "Size of the last successful backup, per database", ["database"], () =>
    perDatabase(
      "select distinct on (database) database, bytes::float8 as value from pmt_jobs.backup where status = 'succeeded' and finished_at <= now() order by database, finished_at desc",
    ),
  );
  liveGauge(registry, "pmt_worker_backup_last_duration_seconds", "Duration of the last successful backup, per database", ["database"], () =>
    perDatabase(
      "select distinct on (database) database, extract(epoch from duration)::float8 as value from pmt_jobs.backup where status = 'succeeded' and finished_at <= now() order by database, finished_at desc",
    ),
  );
  liveGauge(
    registry,
    "pmt_worker_offsite_lag_seconds",
    "How long the oldest successful backup without an offsite copy has waited (0: none waiting), per database",
    ["database"],
    () =>
      perDatabase(`select b.database, greatest(coalesce(extract(epoch from max(now() - b.finished_at) filter (where not exists (
                   select 1 from pmt_jobs.backup_offsite_done d where d.backup_id = b.id))), 0), 0)::float8 as value
                 from pmt_jobs.backup b where b.status = 'succeeded' group by 1`),
  );
  liveGauge(registry, "pmt_worker_export_requests", "Export requests per database and status", ["status", "database"], async () => {
    const rows = await fromEach<{ status: string; n: number }>(sources, "select status, count(*)::int as n from pmt_jobs.export_request group by 1");
    return rows.map((r) => ({ labels: { status: r.status, database: r.source }, value: r.n }));
  });
  if (options.backupDir) {
    const dir = options.backupDir;
    // The process's folder, shared by every database: no database label.
    liveGauge(registry, "pmt_worker_backup_dir_free_bytes", "Free bytes in BACKUP_DIR", [], async () => {
      return [{ labels: {}, value: freeBytes(dir) }];
    });
  }
  return { registry, jobsStarted, jobsSucceeded, jobsFailed, jobDuration };
}
