/**
 * The database-outage scenarios' world: a PostgreSQL of the test's own (it
 * goes down), PMT's demo data, an SMTP sink and one worker process (each
 * test runs a CPU hog around its fault); and what "recovered" means, checked the same way by
 * every scenario: the worker never exited, every job ran to success exactly
 * once, each export was mailed exactly once, nothing stays locked or
 * `running`, and the history keeps the attempts the outage cost.
 */
import { afterAll, expect } from "vitest";
import { createPool } from "../../src/db/pool.js";
import { seedDemo } from "../../src/exports/demo.js";
import type { ChildHandle } from "./cli.js";
import { queryOnce as query } from "./db.js";
import { Workers } from "./faults.js";
import { startOwnServer, type OwnServer } from "./own-server.js";
import { SmtpSink } from "./smtp.js";
import { until } from "./wait.js";

export interface OutageWorld {
  server: OwnServer;
  smtp: SmtpSink;
  worker: ChildHandle;
  /** The PMT databases the worker serves: server.url's, then `otherDatabases` more on the same server. */
  urls: string[];
}

/**
 * Server, data, SMTP sink and the worker; the test starts the CPU hog around
 * its fault (startCpuHog), so it slows the tests beside it as briefly as it
 * can. `otherDatabases`: more PMT databases on the server, all served by the
 * one worker (PMT_DATABASES; the worker migrates them at start).
 */
export async function outageWorld(workerEnv: Record<string, string>, options: { otherDatabases?: number } = {}): Promise<OutageWorld> {
  const server = await startOwnServer(); // migrated
  const urls = [server.url];
  for (let i = 1; i <= (options.otherDatabases ?? 0); i++) {
    await query(server.url, `create database pmt_instance_${i}`);
    const url = new URL(server.url);
    url.pathname = `/pmt_instance_${i}`;
    urls.push(url.toString());
  }
  for (const url of urls) {
    const seedPool = createPool(url, { max: 1 });
    await seedDemo(seedPool, 20).finally(() => seedPool.end());
  }
  const smtp = await SmtpSink.start();
  afterAll(() => smtp.down());
  const served = urls.length > 1 ? { PMT_DATABASES: urls.map((u) => new URL(u).pathname.slice(1)).join(",") } : {};
  const workers = new Workers(() => ({ DATABASE_URL: server.url, ...served, SMTP_URL: smtp.url, WORKER_CONCURRENCY: "4", ...workerEnv }));
  const worker = await workers.start();
  return { server, smtp, worker, urls };
}

export async function requestExports(url: string, n: number): Promise<number[]> {
  const rows = await query<{ id: number }>(
    url,
    `select pmt_jobs.request_export('csv', 'erin' || i || '@example.org', '{}')::int as id from generate_series(1, ${n}) i`,
  );
  return rows.map((r) => r.id);
}

/** The worker's warnings and errors (first line of each), then the end of its output. */
export function workerOutput(worker: ChildHandle): string {
  const all = worker.stdout + worker.stderr;
  const problems = all
    .split("\n")
    .filter((l) => /"level":"(warn|error|fatal)"/.test(l) && !/Failed task/.test(l))
    .map((l) => l.slice(0, 400));
  return `worker warnings and errors:\n${problems.slice(-60).join("\n")}\nworker output:\n${all.slice(-3000)}`;
}

/** What is left in the queue, and its history: for a failure message. */
async function leftovers(url: string): Promise<string> {
  const jobs = await query(
    url,
    `select id, task_identifier, attempts, locked_by, locked_at, run_at, last_error from graphile_worker.jobs where ${OURS.replace("task", "task_identifier")}`,
  ).catch((e) => [String(e)]);
  const runs = await query(
    url,
    `select job_id, attempt, status, worker_id, error from pmt_jobs.job_run where job_id in (select id from graphile_worker.jobs) order by job_id, attempt`,
  ).catch((e) => [String(e)]);
  return `jobs left: ${JSON.stringify(jobs)}\ntheir attempts: ${JSON.stringify(runs)}`;
}

/**
 * Every line of the worker's output about the jobs still in this database's
 * queue (graphile-worker's "task N", our jobId/requestId fields), whole: what
 * a job left locked did last, which the output's tail may no longer show.
 */
async function stuckJobLines(worker: ChildHandle, url: string): Promise<string> {
  const database = new URL(url).pathname.slice(1);
  const jobs = await query<{ id: number; request: number | null }>(
    url,
    `select id::int, (payload->>'requestId')::int as request from graphile_worker.jobs where ${OURS.replace("task", "task_identifier")}`,
  ).catch(() => []);
  const lines = (worker.stdout + worker.stderr).split("\n").filter((l) => l.includes(`"database":"${database}"`));
  const about = lines.filter((l) =>
    jobs.some((j) => new RegExp(`\\b(task|job) ${j.id}\\b|"jobId":"?${j.id}\\b`).test(l) || (j.request !== null && l.includes(`"requestId":${j.request},`))),
  );
  return `the worker's lines about them (${database}):\n${about.map((l) => l.slice(0, 600)).join("\n") || "(none)"}`;
}

/** `expectRecovered` for every database the worker serves; `jobs` and `exports` per database, in `world.urls`' order. */
export async function expectAllRecovered(world: OutageWorld, jobs: number[], exports: number[][], timeoutMs = 120_000): Promise<Recovery> {
  const total: Recovery = { retried: 0, waited: 0 };
  for (const [i, url] of world.urls.entries()) {
    const r = await expectRecovered(world, jobs[i]!, exports[i]!, timeoutMs, url);
    total.retried += r.retried;
    total.waited = r.waited; // the worker's output: the same for each
  }
  const all = exports.flat().length;
  await world.smtp.waitForMessages(all);
  expect(world.smtp.messages).toHaveLength(all);
  return total;
}

/** The scenarios' jobs (a cron job firing meanwhile is not theirs to count). */
const OURS = "task in ('pmt_jobs.noop', 'pmt_jobs.export')";

export interface Recovery {
  /** Attempts that failed or were abandoned because of the outage, then retried. */
  retried: number;
  /** Statements and writes of the worker that waited for the database (so the outage did hit work in flight). */
  waited: number;
}

/**
 * Waits until the queue is empty, then checks the recovery (see the top).
 * `jobs`: how many jobs were asked for in all; `exports`: the export request ids.
 */
export async function expectRecovered(world: OutageWorld, jobs: number, exports: number[], timeoutMs = 120_000, url = world.server.url): Promise<Recovery> {
  const { smtp, worker } = world;
  const server = { url };
  await until(
    async () => {
      // A worker that died leaves its jobs locked for good: say so at once, not after the timeout.
      if (worker.child.exitCode !== null || worker.child.signalCode !== null) {
        throw new Error(`the worker exited (${worker.child.exitCode ?? worker.child.signalCode}) while the queue was not empty`);
      }
      return (
        (
          await query<{ n: number }>(server.url, `select count(*)::int as n from graphile_worker.jobs where ${OURS.replace("task", "task_identifier")}`).catch(
            () => [{ n: -1 }],
          )
        )[0]!.n === 0
      );
    },
    "the queue to empty",
    timeoutMs,
    200,
  ).catch(async (error: Error) => {
    throw new Error(`${error.message}\n${await leftovers(server.url)}\n${await stuckJobLines(worker, server.url)}\n${workerOutput(worker)}`);
  });
  expect(worker.child.exitCode, workerOutput(worker)).toBeNull();
  expect(worker.stdout + worker.stderr).not.toMatch(/Runner stopping|worker died|Failed to (complete|fail) jobs/);

  // Every job: exactly one successful attempt, its attempts numbered 1..n, none left running.
  const history = await query<{ job_id: number; attempts: number; succeeded: number; running: number; numbered: boolean }>(
    server.url,
    `select job_id::int, count(*)::int as attempts, count(*) filter (where status = 'succeeded')::int as succeeded,
            count(*) filter (where status = 'running')::int as running,
            count(distinct attempt) = count(*) and min(attempt) = 1 and max(attempt) = count(*) as numbered
     from pmt_jobs.job_run where ${OURS} group by job_id`,
  );
  expect(history).toHaveLength(jobs);
  expect(
    history.filter((h) => h.succeeded !== 1 || h.running !== 0 || !h.numbered),
    workerOutput(worker),
  ).toEqual([]);

  // Every export sent, exactly one mail each, the one its request records.
  const requests = await query<{ id: number; status: string; error: string | null; message_id: string }>(
    server.url,
    "select id::int, status, error, message_id from pmt_jobs.export_request order by id",
  );
  expect(requests.map((r) => r.id)).toEqual(exports);
  expect(requests.filter((r) => r.status !== "sent" || r.error !== null)).toEqual([]);
  // Mails of this database (with several, the sink has the others' too: each message id names its database).
  const ids = new Set(requests.map((r) => r.message_id));
  await until(async () => smtp.messages.filter((m) => ids.has(m.messageId ?? "")).length >= exports.length, "the exports' mails", 30_000);
  expect(smtp.messages.filter((m) => ids.has(m.messageId ?? ""))).toHaveLength(exports.length);
  if (world.urls.length === 1) expect(smtp.messages).toHaveLength(exports.length);

  const [extra] = await query<{ n: number }>(server.url, `select count(*)::int as n from pmt_jobs.job_run where status <> 'succeeded' and ${OURS}`);
  const waited = (worker.stdout + worker.stderr).match(/waiting for it|retrying until the database answers/g)?.length ?? 0;
  expect(waited, "the outage hit no statement of the worker").toBeGreaterThan(0);
  return { retried: extra!.n, waited };
}
