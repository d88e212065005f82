/**
 * The console's Jobs page with a million history rows: pmt_jobs.job_run of a
 * bench database filled with generate_series (90 days, ten tasks, 2% failed,
 * 1% abandoned; the row triggers off while loading), then the page fetched
 * over HTTP from the console (createConsole on its own listener, as the
 * worker mounts it) again and again: the newest page, a task, the failures, a
 * time window, and a page half a million rows deep through the keyset
 * cursor. Reports p50 and p95 per page; the goal is under 200 ms. The
 * Overview (whose 30-day chart counts a month of rows, cached for a minute)
 * is measured beside it, its first view apart.
 *
 *   npm run bench -- console [--rounds=40] [--rows=1000000]
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { loadConfig } from "../src/config.js";
import { createConsole } from "../src/console/server.js";
import { CONSOLE_TASKS } from "../src/worker/http.js";
import { formatCursor } from "../src/console/jobs-query.js";
import { migrate } from "../src/db/migrate.js";
import { createPool } from "../src/db/pool.js";
import { createLogger } from "../src/log.js";
import { benchDatabase, createDatabase, intArg, quantile, writeResults } from "./lib.js";

const TASKS = [
  "pmt_jobs.export",
  "pmt_jobs.export",
  "pmt_jobs.export",
  "pmt_jobs.export",
  "pmt_jobs.backup",
  "pmt_jobs.offsite_upload",
  "pmt_jobs.alerts_check",
  "pmt_jobs.spool_prune",
  "pmt_jobs.history_prune",
  "pmt_jobs.offsite_sync",
];

export async function main(): Promise<void> {
  const rounds = intArg("rounds", 40);
  const rows = intArg("rows", 1_000_000);
  const server = await benchDatabase();
  const url = await createDatabase(server.url, "bench_console");
  const pool = createPool(url, { max: 6, applicationName: "pmt-worker bench" });
  const logger = createLogger("warn");
  await migrate(pool, logger);

  const t0 = performance.now();
  await pool.query("alter table pmt_jobs.job_run disable trigger job_run_notify");
  await pool.query(
    `insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, status, started_at, finished_at, error, worker_id, payload_summary)
     select i, (array[${TASKS.map((t) => `'${t}'`).join(",")}])[1 + i % ${TASKS.length}], 1, 3,
            case when i % 100 < 2 then 'failed' when i % 100 = 2 then 'abandoned' else 'succeeded' end,
            now() - (${rows} - i) * (interval '90 days' / ${rows}),
            now() - (${rows} - i) * (interval '90 days' / ${rows}) + interval '150 milliseconds',
            case when i % 100 < 3 then 'mail refused: 550 mailbox unavailable (attempt ' || i || ')' end,
            'pool-bench', jsonb_build_object('requestId', i)
     from generate_series(1, ${rows}) i`,
  );
  await pool.query("alter table pmt_jobs.job_run enable trigger job_run_notify");
  await pool.query("vacuum analyze pmt_jobs.job_run");
  const loadSeconds = (performance.now() - t0) / 1000;

  const config = loadConfig({ LOG_LEVEL: "warn" }, "/nonexistent/.env");
  const name = new URL(url).pathname.slice(1);
  const webConsole = createConsole({
    host: "127.0.0.1",
    access: { user: "admin" },
    tasks: CONSOLE_TASKS,
    logger,
    databases: () => [{ name, url, pool, config, cron: [], backupTargets: [name] }],
  });
  const listener = http.createServer((req, res) => {
    if (!webConsole.handle(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;

  const { rows: deep } = await pool.query<{ at: string; id: string }>(
    `select to_char(started_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at, id::text
     from pmt_jobs.job_run order by started_at desc, id desc offset ${Math.floor(rows / 2)} limit 1`,
  );
  const cursor = formatCursor({ at: deep[0]!.at, id: Number(deep[0]!.id) });
  const day = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 16);
  const next = new Date(Date.now() - 29 * 86_400_000).toISOString().slice(0, 16);
  const pages: { name: string; path: string }[] = [
    { name: "Jobs, newest page", path: "/console/jobs" },
    { name: "Jobs, one task", path: "/console/jobs?task=pmt_jobs.backup" },
    { name: "Jobs, failed only", path: "/console/jobs?status=failed" },
    { name: "Jobs, failed exports in one day", path: `/console/jobs?task=pmt_jobs.export&status=failed&from=${day}&to=${next}` },
    { name: "Jobs, 500 000 rows deep (keyset)", path: `/console/jobs?before=${encodeURIComponent(cursor)}` },
    // The worst case of the indexes there are: a task's rows read through to find a status it never has.
    { name: "Jobs, failed backups (none of 100 000)", path: "/console/jobs?task=pmt_jobs.backup&status=failed" },
    { name: "Overview (30-day counts cached 1 min)", path: "/console/" },
  ];
  const times: Record<string, number[]> = Object.fromEntries(pages.map((p) => [p.name, []]));
  const loadBefore = os.loadavg();
  let overviewFirst = 0;
  for (let round = 0; round <= rounds; round++) {
    for (const p of pages) {
      const start = performance.now();
      const res = await fetch(base + p.path);
      const body = await res.text();
      const ms = performance.now() - start;
      if (res.status !== 200) throw new Error(`${p.path}: ${res.status} ${body.slice(0, 300)}`);
      if (round > 0)
        times[p.name]!.push(ms); // round 0 warms the caches
      else if (p.path === "/console/") overviewFirst = ms;
    }
  }
  const loadAfter = os.loadavg();
  await webConsole.close();
  listener.closeAllConnections();
  await new Promise((r) => listener.close(r));
  await pool.end();
  await server.close();

  const results = pages.map((p) => {
    const v = times[p.name]!;
    return {
      page: p.name,
      path: p.path,
      p50: quantile(v, 0.5),
      p95: quantile(v, 0.95),
      max: Math.max(...v),
      target: p.name.startsWith("Jobs") ? "p95 < 200 ms" : "",
    };
  });
  const width = Math.max(...results.map((r) => r.page.length));
  process.stdout.write(`\nConsole pages with ${rows.toLocaleString("en")} history rows (${rounds} rounds, HTTP fetch to the last byte, ms)\n`);
  process.stdout.write(`${"page".padEnd(width)}  p50     p95     max     target\n`);
  for (const r of results) {
    process.stdout.write(`${r.page.padEnd(width)}  ${r.p50.toFixed(1).padEnd(6)}  ${r.p95.toFixed(1).padEnd(6)}  ${r.max.toFixed(1).padEnd(6)}  ${r.target}\n`);
  }
  process.stdout.write(`Overview's first view (30 days of history counted): ${overviewFirst.toFixed(0)} ms\n`);
  process.stdout.write(
    `rows loaded in ${loadSeconds.toFixed(1)} s; load average ${loadBefore[0]!.toFixed(2)} -> ${loadAfter[0]!.toFixed(2)} on ${os.cpus().length} CPUs\n`,
  );
  const file = writeResults("console", {
    rows,
    rounds,
    loadSeconds,
    overviewFirstMs: overviewFirst,
    loadavg: { before: loadBefore, after: loadAfter },
    results,
  });
  process.stdout.write(`results: ${file}\n`);
}
