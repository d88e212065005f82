/**
 * Fault: the reply to graphile-worker's job fetch is lost after the server
 * committed it (the connection drops between the two). The job is locked by
 * a live worker that never heard of it; graphile-worker would leave it so for
 * 4 hours, and retrying the fetch would only lock another. The worker
 * releases the orphaned lock as soon as the database answers again, and the
 * job runs within seconds; the history shows the lost attempt.
 */
import { describe, expect, it } from "vitest";
import { queryOnce as query } from "../harness/db.js";
import { recordFault, Workers } from "../harness/faults.js";
import { startOwnServer } from "../harness/own-server.js";
import { PgProxy } from "../harness/pg-proxy.js";
import { until } from "../harness/wait.js";

// At the top level, so the server, proxy and worker are cleaned up after the file whatever happens.
const server = await startOwnServer();
const proxy = await PgProxy.start(Number(new URL(server.url).port));
const viaProxy = new URL(server.url);
viaProxy.port = String(proxy.port);
const workers = new Workers(() => ({ DATABASE_URL: viaProxy.toString(), WORKER_CONCURRENCY: "1", WORKER_POLL_INTERVAL_MS: "500" }));

describe("the reply to a job fetch lost with its connection", () => {
  it("the orphaned lock is released and the job runs once, within seconds", { timeout: 120_000 }, async () => {
    const worker = await workers.start();

    const lost = proxy.loseNextFetchReply();
    const [job] = await query<{ id: number }>(server.url, "select id::int from graphile_worker.add_job('pmt_jobs.noop')");
    await lost;
    const cut = Date.now();

    const history = await until(
      async () => {
        const rows = await query<{ attempt: number; status: string; error: string | null }>(
          server.url,
          "select attempt, status, error from pmt_jobs.job_run where job_id = $1 order by attempt",
          [job!.id],
        );
        return rows.some((r) => r.status === "succeeded") ? rows : undefined;
      },
      () => `the job to run; worker output:\n${worker.stdout.slice(-3000)}`,
      30_000,
      100,
    );
    const seconds = (Date.now() - cut) / 1000;
    expect(history).toEqual([
      {
        attempt: 1,
        status: "abandoned",
        error: expect.stringMatching(/fetched the job as its database connection was lost and never ran it; released for retry/),
      },
      { attempt: 2, status: "succeeded", error: null },
    ]);
    expect(seconds).toBeLessThan(15);
    expect((await query<{ n: number }>(server.url, "select count(*)::int as n from graphile_worker.jobs"))[0]!.n).toBe(0);
    expect(worker.stdout).toMatch(/released jobs fetched as the database connection was lost/);
    expect(await Workers.stop(worker)).toBe(0);
    recordFault({
      scenario: "database",
      fault: "reply to the job fetch lost after the server locked the job",
      outcome: `orphaned lock released on reconnect; job ran ${seconds.toFixed(1)} s later, once; history abandoned -> succeeded`,
      lost: 0,
    });
  });
});
