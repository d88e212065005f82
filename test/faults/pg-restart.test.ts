/**
 * Fault: PostgreSQL restarts while jobs and exports run, on a machine whose
 * CPUs a hog keeps busy, under a worker serving three PMT databases on that
 * server (PMT_DATABASES). The worker never stops: it reconnects to each,
 * LISTEN resumes (a job added afterwards starts at once, not at the next
 * poll), every job runs to success exactly once and every export is mailed
 * exactly once, in every database; nothing stays locked.
 */
import { describe, expect, it } from "vitest";
import { queryOnce as query } from "../harness/db.js";
import { startCpuHog } from "../harness/cpu-hog.js";
import { recordFault, Workers } from "../harness/faults.js";
import { expectAllRecovered, outageWorld, requestExports, workerOutput } from "../harness/outage.js";
import { until } from "../harness/wait.js";

// At the top level, so the server, SMTP sink and worker are cleaned up after the file whatever happens.
// Poll only every 30 s: a job started sooner after the restart came by LISTEN.
const world = await outageWorld({ WORKER_POLL_INTERVAL_MS: "30000" }, { otherDatabases: 2 });

describe("PostgreSQL restarted under running jobs, CPUs saturated", () => {
  it("the worker reconnects, LISTEN resumes and no job is lost, left locked or run twice", { timeout: 240_000 }, async () => {
    const { server, worker, urls } = world;

    const hog = startCpuHog();
    // The exports first (jobs run in order): the restart comes while some render or send. 30 and 40 in all.
    const exports: number[][] = [];
    for (const [i, url] of urls.entries()) {
      exports.push(await requestExports(url, i === 0 ? 10 : 10));
      await query(
        url,
        `select graphile_worker.add_jobs(array(select row('pmt_jobs.noop', json_build_object('sleepMs', 100), null, null, null, null, null, null)::graphile_worker.job_spec from generate_series(1, ${i === 0 ? 14 : 13})))`,
      );
    }
    const succeeded = async (url: string) =>
      (await query<{ n: number }>(url, "select count(*)::int as n from pmt_jobs.job_run where status = 'succeeded'"))[0]!.n;
    await until(async () => (await Promise.all(urls.map(succeeded))).every((n) => n >= 3), "some jobs to finish in every database", 60_000);

    await server.restart();
    const recovery = await expectAllRecovered(world, [24, 23, 23], exports);
    hog.stop();

    // A job added now starts within a second: LISTEN works again.
    // Every runner's LISTEN connection is back (two per database at start, two after the restart).
    const listens = () => (worker.stdout + worker.stderr).match(/Worker connected and looking for jobs/g)?.length ?? 0;
    await until(
      async () => listens() >= 4 * urls.length,
      () => `LISTEN to be back; ${workerOutput(worker)}`,
      90_000,
      100,
    );
    const [added] = await query<{ id: number; t: string }>(
      server.url,
      "select id::int, clock_timestamp()::text as t from graphile_worker.add_job('pmt_jobs.noop')",
    );
    const started = await until(
      async () => {
        const rows = await query<{ started_at: string }>(server.url, `select started_at::text from pmt_jobs.job_run where job_id = ${added!.id}`);
        return rows[0];
      },
      "the new job to start",
      25_000,
      50,
    );
    // Well under the 30 s poll, whatever the load: it came by LISTEN (not a timing target: that is the bench's).
    const delay = new Date(started.started_at).getTime() - new Date(added!.t).getTime();
    expect(delay).toBeLessThan(15_000);

    expect(await Workers.stop(worker)).toBe(0);
    recordFault({
      scenario: "database",
      fault: "PostgreSQL restarted under 40 jobs and 30 exports in three PMT databases served by one worker, CPUs saturated",
      outcome: `worker kept running; each job succeeded once in each database, 30 mails; ${recovery.waited} statements waited for the server, ${recovery.retried} attempts retried; none left locked; LISTEN back (next job started ${delay < 1000 ? "in < 1 s" : `after ${(delay / 1000).toFixed(1)} s`}, polling every 30 s)`,
      lost: 0,
    });
  });
});
