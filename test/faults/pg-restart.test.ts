/**
 * Fault: PostgreSQL restarts while jobs run. The worker reconnects, LISTEN
 * resumes (a job added afterwards starts at once, not at the next poll), and
 * every job runs exactly once.
 */
import { describe, expect, it } from "vitest";
import { queryOnce as query } from "../harness/db.js";
import { recordFault, Workers } from "../harness/faults.js";
import { startOwnServer } from "../harness/own-server.js";
import { until } from "../harness/wait.js";

let url = "";
// Poll only every 30 s: a job started sooner after the restart came by LISTEN.
const workers = new Workers(() => ({ DATABASE_URL: url, WORKER_POLL_INTERVAL_MS: "30000", WORKER_CONCURRENCY: "4" }));

describe("PostgreSQL restarted under running jobs", () => {
  it("the worker reconnects, LISTEN resumes and no job is lost or run twice", async () => {
    const server = await startOwnServer();
    url = server.url;
    const worker = await workers.start();

    await query(url, "select graphile_worker.add_jobs(array(select row('pmt_jobs.noop', json_build_object('sleepMs', 100), null, null, null, null, null, null)::graphile_worker.job_spec from generate_series(1, 40)))");
    await until(async () => (await query<{ n: number }>(url, "select count(*)::int as n from pmt_jobs.job_run where status = 'succeeded'"))[0]!.n >= 8, "some jobs to finish");

    await server.restart();
    await worker.waitForOutput(/LISTEN|reconnect|Listening/i, 30_000).catch(() => {});

    // All of the first batch finish, each exactly once.
    const done = await until(async () => {
      const rows = await query<{ job_id: number; status: string }>(url, "select job_id, status from pmt_jobs.job_run where status = 'succeeded'").catch(() => []);
      return rows.length >= 40 ? rows : undefined;
    }, () => `the first batch to finish; worker output:\n${worker.stdout.slice(-3000)}${worker.stderr.slice(-2000)}`, 40_000, 200);
    expect(new Set(done.map((r) => r.job_id)).size).toBe(40);
    expect(done).toHaveLength(40); // no job ran twice
    const other = await query<{ n: number }>(url, "select count(*)::int as n from pmt_jobs.job_run where status <> 'succeeded'");
    expect(other[0]!.n).toBe(0);

    // A job added now starts within a second: LISTEN works again.
    const [added] = await query<{ id: number; t: string }>(url, "select id::int, clock_timestamp()::text as t from graphile_worker.add_job('pmt_jobs.noop')");
    const started = await until(async () => {
      const rows = await query<{ started_at: string }>(url, `select started_at::text from pmt_jobs.job_run where job_id = ${added!.id}`);
      return rows[0];
    }, "the new job to start", 10_000, 50);
    expect(new Date(started.started_at).getTime() - new Date(added!.t).getTime()).toBeLessThan(1000);

    const left = await query<{ n: number }>(url, "select count(*)::int as n from graphile_worker.jobs");
    expect(left[0]!.n).toBe(0);
    expect(await Workers.stop(worker)).toBe(0);
    recordFault({ scenario: "database", fault: "PostgreSQL restarted under 40 running jobs", outcome: "reconnected; each job ran once; LISTEN back (next job started in < 1 s)", lost: 0 });
  });
});
