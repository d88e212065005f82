/**
 * Export benchmark.
 *
 *   npm run bench -- export [--rounds=5] [--activities=20000] [--latency-requests=200]
 *
 * 1. Rendering: rows/s of pmt-worker's CSV and IATI renderings (cursor ->
 *    renderer -> sha256 -> spool file) against psql's `\copy (select * from
 *    pmt_jobs.export_rows(...)) to file csv` of the same rows, alternating.
 * 2. Memory: peak RSS after rendering `activities` and then twice as many.
 * 3. Latency: commit of `select pmt_filter_csv(...)` (1,000 activities) to
 *    the in-process SMTP server accepting the message, sequential requests.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { migrate } from "../src/db/migrate.js";
import { createPool, type Pool } from "../src/db/pool.js";
import { renderCsv } from "../src/exports/csv.js";
import { seedDemo } from "../src/exports/demo.js";
import { renderIati } from "../src/exports/iati.js";
import { exportRows } from "../src/exports/rows.js";
import { writeSpool } from "../src/exports/spool.js";
import { createLogger } from "../src/log.js";
import { SmtpSink } from "../test/harness/smtp.js";
import { startTestWorker } from "../test/harness/worker.js";
import { benchDatabase, createDatabase, intArg, peakRssMb, printTable, quantile, row, writeResults } from "./lib.js";

const logger = createLogger("warn");
const ALL = { classification_ids: [], organization_ids: [], unassigned_tax_ids: [], start_date: null, end_date: null };

async function ours(pool: Pool, format: "csv" | "iati", file: string): Promise<number> {
  const t0 = performance.now();
  const rows = exportRows(pool, ALL, { iati: format === "iati" });
  const chunks =
    format === "csv"
      ? renderCsv({ databaseVersion: "2.0.8.79", retrievalDate: "2026-01-01", filters: "none", disclaimer: "Disclaimer" }, rows, { formulaPrefix: "'" })
      : renderIati({ ref: "XI-PMT-0000", name: "PMT", type: "80" }, rows);
  await writeSpool(file, chunks);
  return performance.now() - t0;
}

function psqlCopy(url: string, file: string, iati = false): number {
  const t0 = performance.now();
  execFileSync("psql", [url, "-X", "-q", "-c", `\\copy (select * from pmt_jobs.export_rows('${JSON.stringify(ALL)}'::jsonb, ${iati})) to '${file}' csv`]);
  return performance.now() - t0;
}

export async function main(): Promise<void> {
  const rounds = intArg("rounds", 5);
  const activities = intArg("activities", 20_000);
  const latencyRequests = intArg("latency-requests", 200);
  const server = await benchDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-bench-export-"));

  // 1. Rendering throughput.
  const bigUrl = await createDatabase(server.url, "bench_export");
  const big = createPool(bigUrl, { max: 4 });
  await migrate(big, logger);
  await seedDemo(big, activities);
  // PMT's rules leave some of the generated activities out (inactive, no location, ...): rates count the rows exported.
  const exported = (await big.query("select count(*)::int as n from pmt_jobs.filter_activities(pmt_jobs.check_filters('{}'))")).rows[0].n as number;
  const rates: Record<"csv" | "iati" | "psql" | "psqlIati", number[]> = { csv: [], iati: [], psql: [], psqlIati: [] };
  for (let round = 0; round <= rounds; round++) {
    const csv = await ours(big, "csv", path.join(dir, "ours.csv"));
    const copy = psqlCopy(bigUrl, path.join(dir, "psql.csv"));
    const iati = await ours(big, "iati", path.join(dir, "ours.xml"));
    const copyIati = psqlCopy(bigUrl, path.join(dir, "psql-iati.csv"), true);
    if (round === 0) continue;
    rates.psqlIati.push(exported / (copyIati / 1000));
    rates.csv.push(exported / (csv / 1000));
    rates.psql.push(exported / (copy / 1000));
    rates.iati.push(exported / (iati / 1000));
    process.stderr.write(`round ${round}: csv ${(exported / (csv / 1000)).toFixed(0)} rows/s, psql ${(exported / (copy / 1000)).toFixed(0)} rows/s\n`);
  }
  const sizes = { csvBytes: fs.statSync(path.join(dir, "ours.csv")).size, psqlBytes: fs.statSync(path.join(dir, "psql.csv")).size };

  // 2. Memory: peak RSS after N, then after 2N activities.
  const rssAtN = peakRssMb();
  await big.query(
    "truncate public.activity, public.project, public.location, public.participation, public.financial, public.project_taxonomy, public.activity_taxonomy, public.location_taxonomy, public.participation_taxonomy, public.financial_taxonomy, public.organization_taxonomy, public.organization, public.classification, public.taxonomy, public.version, public.config restart identity cascade",
  );
  await seedDemo(big, activities * 2);
  await ours(big, "csv", path.join(dir, "ours2.csv"));
  await ours(big, "iati", path.join(dir, "ours2.xml"));
  const rssAt2N = peakRssMb();
  await big.end();

  // 3. Latency: commit to SMTP acceptance.
  const smallUrl = await createDatabase(server.url, "bench_export_latency");
  const small = createPool(smallUrl, { max: 2 });
  await migrate(small, logger);
  await seedDemo(small, 1000);
  const smtp = await SmtpSink.start();
  const worker = await startTestWorker(smallUrl, { env: { SMTP_URL: smtp.url, WORKER_POLL_INTERVAL_MS: "2000" } });
  const latencies: number[] = [];
  const calls: number[] = [];
  for (let i = 0; i < latencyRequests + 5; i++) {
    const t0 = performance.now();
    // One statement outside a transaction: it has committed when the call returns.
    await small.query("select public.pmt_filter_csv('','','',null,null,'bench@example.org')");
    const committed = performance.now();
    await smtp.waitForMessages(i + 1);
    // Accepted when the whole message has arrived, as an MTA answers 250 once queued; the sink's own MIME parsing is not ours.
    if (i >= 5) {
      latencies.push(smtp.receivedAt[i]! - committed);
      calls.push(committed - t0);
    }
  }
  await worker.stop();
  await smtp.down();
  await small.end();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const rows = [
    row("CSV rendering", "rows/s", rates.csv, rates.psql, "ours >= 0.8x psql \\copy"),
    row("IATI rendering", "rows/s", rates.iati, rates.psqlIati, "(vs psql \\copy of the IATI rows)"),
  ];
  const p50 = quantile(latencies, 0.5);
  const p95 = quantile(latencies, 0.95);
  const callP50 = quantile(calls, 0.5);
  printTable(`Export: ${activities} activities generated, ${exported} exported, ${rounds} rounds; baseline psql \\copy of the same rows`, rows, [
    `commit -> SMTP accepted, ${latencyRequests} requests of the demo's 1000 activities: p50 ${p50.toFixed(0)} ms, p95 ${p95.toFixed(0)} ms (targets 100 / 250 ms); the call itself (checks and PMT's selection, in the caller's transaction) p50 ${callP50.toFixed(0)} ms`,
    `peak RSS: ${rssAtN.toFixed(0)} MB after ${activities} activities, ${rssAt2N.toFixed(0)} MB after ${activities * 2}`,
    `file sizes: ours ${sizes.csvBytes} bytes (PMT layout), psql ${sizes.psqlBytes} bytes (raw rows)`,
  ]);
  const file = writeResults("export", {
    rounds,
    activities,
    rows,
    latency: { p50, p95, callP50, requests: latencyRequests },
    peakRssMb: { n: rssAtN, twoN: rssAt2N },
    sizes,
  });
  process.stdout.write(`results: ${file}\n`);
}
