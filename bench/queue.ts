/**
 * Queue benchmark: a no-op task through pmt-worker (history wrapper, rescuer,
 * metrics) against bare graphile-worker with the same pool, concurrency and
 * poll interval and completion batching, alternating on the same database.
 *
 *   npm run bench -- queue [--rounds=5] [--jobs=2000] [--latency-jobs=200]
 *
 * Throughput: `jobs` no-op jobs enqueued in one add_jobs call, then a worker
 * starts; jobs/s until the last one finished. Latency: one job at a time, from
 * just before add_job is sent to the start of the task body (for ours, after the
 * history row is written).
 *
 * The breakdown (throughput only, same rounds): pmt-worker on two more
 * databases whose history is taken apart, so what each part costs is measured
 * beside the rest: `no-notify` writes every row but sends no NOTIFY
 * (pmt_jobs.notify_events emptied), `no-rows` keeps the capture triggers
 * firing but writes nothing (pmt_jobs.capture_job_attempt emptied). Only
 * these benchmark databases are changed.
 */
import { performance } from "node:perf_hooks";
import { run, runMigrations, type Task } from "graphile-worker";
import { loadConfig } from "../src/config.js";
import { createPool, type Pool } from "../src/db/pool.js";
import { migrate } from "../src/db/migrate.js";
import { createLogger, graphileLogger } from "../src/log.js";
import { startWorker } from "../src/worker/runner.js";
import { benchDatabase, createDatabase, intArg, peakRssMb, printTable, quantile, row, writeResults } from "./lib.js";

const CONCURRENCY = 4;
const POLL_MS = 2000;
const logger = createLogger("warn");

/** A no-op task that records when each body starts. */
class Probe {
  starts: number[] = [];
  readonly task: Task = async () => {
    this.starts.push(performance.now());
  };
}

type Variant = "ours" | "bare" | "no-notify" | "no-rows";
const VARIANTS: readonly Variant[] = ["ours", "bare", "no-notify", "no-rows"];
/** Each variant has its own database: bare graphile-worker must not pay for our history triggers. */
type Urls = Record<Variant, string>;

/** What each breakdown variant takes away from pmt-worker's history, in its own database. */
const TAKEN_AWAY: Partial<Record<Variant, string>> = {
  "no-notify": `create or replace function pmt_jobs.notify_events(events text[]) returns void
    language plpgsql set search_path = pg_catalog, pg_temp as $$ begin end $$`,
  "no-rows": `create or replace function pmt_jobs.capture_job_attempt() returns trigger
    language plpgsql set search_path = pg_catalog, pg_temp as $$ begin return null; end $$`,
};

async function startVariant(variant: Variant, urls: Urls, p: Probe): Promise<{ stop(): Promise<void> }> {
  if (variant !== "bare") {
    const config = loadConfig(
      { WORKER_CONCURRENCY: String(CONCURRENCY), WORKER_POLL_INTERVAL_MS: String(POLL_MS), HTTP_PORT: "0", LOG_LEVEL: "warn" },
      "/nonexistent",
    );
    const worker = await startWorker({ config, databaseUrl: urls[variant], logger, migrate: false, extraTasks: { "bench.noop": p.task } });
    return { stop: () => worker.stop() };
  }
  const pool = createPool(urls.bare, { max: CONCURRENCY + 4 });
  const runner = await run({
    pgPool: pool,
    taskList: { "bench.noop": p.task },
    concurrency: CONCURRENCY,
    pollInterval: POLL_MS,
    noHandleSignals: true,
    logger: graphileLogger(logger),
    preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  });
  return {
    stop: async () => {
      await runner.stop();
      await pool.end();
    },
  };
}

async function waitEmpty(pool: Pool): Promise<void> {
  for (;;) {
    const { rows } = await pool.query<{ n: number }>("select count(*)::int as n from graphile_worker._private_jobs");
    if (rows[0]!.n === 0) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function throughput(variant: Variant, urls: Urls, admin: Pool, jobs: number): Promise<number> {
  const p = new Probe();
  await admin.query(
    "select graphile_worker.add_jobs(array(select row('bench.noop', '{}'::json, null, null, null, null, null, null)::graphile_worker.job_spec from generate_series(1, $1)))",
    [jobs],
  );
  const t0 = performance.now();
  const worker = await startVariant(variant, urls, p);
  await waitEmpty(admin);
  const seconds = (performance.now() - t0) / 1000;
  await worker.stop();
  return jobs / seconds;
}

async function latency(variant: Variant, urls: Urls, admin: Pool, jobs: number): Promise<number[]> {
  const p = new Probe();
  const worker = await startVariant(variant, urls, p);
  const samples: number[] = [];
  for (let i = 0; i < jobs; i++) {
    const t0 = performance.now();
    await admin.query("select graphile_worker.add_job('bench.noop')");
    while (p.starts.length === 0) await new Promise((r) => setImmediate(r));
    samples.push(p.starts[0]! - t0);
    p.starts = [];
    await waitEmpty(admin);
  }
  await worker.stop();
  return samples;
}

export async function main(): Promise<void> {
  const rounds = intArg("rounds", 5);
  const jobs = intArg("jobs", 2000);
  const latencyJobs = intArg("latency-jobs", 200);
  const db = await benchDatabase();
  const urls = {} as Urls;
  const admins = {} as Record<Variant, Pool>;
  for (const variant of VARIANTS) {
    urls[variant] = await createDatabase(db.url, `bench_queue_${variant.replace("-", "_")}`);
    admins[variant] = createPool(urls[variant], { max: 2 });
    if (variant === "bare") await runMigrations({ pgPool: admins.bare, logger: graphileLogger(logger) });
    else await migrate(admins[variant], logger);
    const change = TAKEN_AWAY[variant];
    if (change) await admins[variant].query(change);
  }

  const tp: Record<Variant, number[]> = { ours: [], bare: [], "no-notify": [], "no-rows": [] };
  const p50: Record<Variant, number[]> = { ours: [], bare: [], "no-notify": [], "no-rows": [] };
  const p95: Record<Variant, number[]> = { ours: [], bare: [], "no-notify": [], "no-rows": [] };
  // Warm-up round (not recorded), then rotate which variant goes first.
  for (let round = 0; round <= rounds; round++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
    for (const variant of order) {
      const rate = await throughput(variant, urls, admins[variant], jobs);
      const withLatency = variant === "ours" || variant === "bare";
      const lat = withLatency ? await latency(variant, urls, admins[variant], latencyJobs) : [];
      if (round === 0) continue;
      tp[variant].push(rate);
      if (withLatency) {
        p50[variant].push(quantile(lat, 0.5));
        p95[variant].push(quantile(lat, 0.95));
      }
      process.stderr.write(`round ${round} ${variant}: ${rate.toFixed(0)} jobs/s${withLatency ? `, p50 ${quantile(lat, 0.5).toFixed(2)} ms` : ""}\n`);
    }
  }
  for (const variant of VARIANTS) await admins[variant].end();
  await db.close();

  const rows = [
    row("throughput", "jobs/s", tp.ours, tp.bare, "ours >= 0.8x bare"),
    row("enqueue-to-start p50", "ms", p50.ours, p50.bare, "ours <= 10 ms"),
    row("enqueue-to-start p95", "ms", p95.ours, p95.bare),
    row("breakdown: history rows, no NOTIFY", "jobs/s", tp["no-notify"], tp.bare),
    row("breakdown: capture triggers fire, write nothing", "jobs/s", tp["no-rows"], tp.bare),
  ];
  const rss = peakRssMb();
  printTable(`Queue: pmt-worker (with job history) vs bare graphile-worker 0.17, concurrency ${CONCURRENCY}, ${rounds} rounds`, rows, [
    `peak RSS of the benchmark process: ${rss.toFixed(0)} MB`,
  ]);
  const file = writeResults("queue", { rounds, jobs, latencyJobs, concurrency: CONCURRENCY, rows, peakRssMb: rss });
  process.stdout.write(`results: ${file}\n`);
}
