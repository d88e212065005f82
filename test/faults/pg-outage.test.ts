/**
 * Fault: PostgreSQL is down for a minute (stopped with pg_ctl, started again)
 * while jobs sleep, exports render and more jobs fall due, on a machine whose
 * CPUs a hog keeps busy. The worker never exits; jobs that finished during
 * the outage are recorded as done once the server is back, the exports cut
 * off mid-query are retried within seconds and mailed exactly once, and no
 * job stays locked.
 */
import pg from "pg";
import { describe, expect, it } from "vitest";
import { BIN, ChildHandle } from "../harness/cli.js";
import { queryOnce as query } from "../harness/db.js";
import { startCpuHog } from "../harness/cpu-hog.js";
import { recordFault, Workers } from "../harness/faults.js";
import { expectRecovered, outageWorld, requestExports, workerOutput } from "../harness/outage.js";
import { startOwnServer } from "../harness/own-server.js";
import { until } from "../harness/wait.js";

const OUTAGE_MS = 60_000;

// At the top level, so servers, SMTP sink and workers are cleaned up after the file whatever happens.
const world = await outageWorld({ WORKER_CONCURRENCY: "8", WORKER_POLL_INTERVAL_MS: "1000" });
const late = await startOwnServer();
const lateWorkers = new Workers(() => ({}));

describe("PostgreSQL down for 60 s under running jobs, CPUs saturated", () => {
  it("the worker waits, reconnects and finishes every job exactly once; nothing stays locked", { timeout: 360_000 }, async () => {
    const { server, worker } = world;

    const hog = startCpuHog();
    // Four jobs that will finish while the server is down, five that fall due during the outage.
    await query(
      server.url,
      "select graphile_worker.add_jobs(array(select row('pmt_jobs.noop', json_build_object('sleepMs', 5000), null, null, null, null, null, null)::graphile_worker.job_spec from generate_series(1, 4)))",
    );
    // The exports' query waits for this lock: four are surely rendering when the server goes.
    const locker = new pg.Client({ connectionString: server.url });
    locker.on("error", () => {});
    await locker.connect();
    await locker.query("begin; lock table public.location in access exclusive mode");
    const exports = await requestExports(server.url, 10);
    await until(
      async () => (await query<{ n: number }>(server.url, "select count(*)::int as n from pmt_jobs.job_run where status = 'running'"))[0]!.n >= 8,
      () => `4 jobs and 4 exports to be running; ${workerOutput(worker)}`,
      60_000,
    );
    await query(
      server.url,
      "select graphile_worker.add_jobs(array(select row('pmt_jobs.noop', '{}'::json, null, now() + interval '15 seconds', null, null, null, null)::graphile_worker.job_spec from generate_series(1, 5)))",
    );

    await server.stop();
    await locker.end().catch(() => {});
    const downUntil = Date.now() + OUTAGE_MS;
    while (Date.now() < downUntil) {
      expect(worker.child.exitCode, workerOutput(worker)).toBeNull();
      await new Promise((r) => setTimeout(r, 1000));
    }
    await server.start();
    const back = Date.now();

    const recovery = await expectRecovered(world, 19, exports);
    const seconds = Math.round((Date.now() - back) / 1000);
    hog.stop();
    // The four exports cut off mid-query failed (recorded once the server was back) and ran again.
    expect(recovery.retried).toBeGreaterThanOrEqual(4);
    expect(seconds).toBeLessThan(60);

    expect(await Workers.stop(worker)).toBe(0);
    recordFault({
      scenario: "database",
      fault: "PostgreSQL stopped for 60 s under 4 sleeping jobs and 4 rendering exports (14 more queued or due), CPUs saturated",
      outcome: `worker kept running and waited; all done ${seconds} s after the server was back, each job once, 10 mails; ${recovery.retried} attempts retried; none left locked`,
      lost: 0,
    });
  });

  it("`start` waits for a database that is not up yet, saying so every few seconds, then starts", { timeout: 300_000 }, async () => {
    const server = late;
    await server.stop();
    const worker = ChildHandle.spawn(BIN, ["start"], { PMT_HOME: lateWorkers.home, HTTP_PORT: "0", DATABASE_URL: server.url });
    try {
      const waiting = () => worker.stdout.match(/waiting for the database to come up/g)?.length ?? 0;
      await until(
        async () => waiting() >= 2,
        () => `two "waiting" lines; output:\n${worker.stdout}${worker.stderr}`,
        120_000,
        100,
      );
      expect(worker.child.exitCode).toBeNull();
      expect(worker.stdout).toMatch(/cannot connect to postgres:\/\/[^"]*\*\*\*@127\.0\.0\.1:\d+\/[^"]*ECONNREFUSED.*is PostgreSQL running/);
      expect(worker.stdout + worker.stderr).not.toContain(new URL(server.url).password);

      await server.start();
      await worker.waitForOutput(/"msg":"worker started"/, 120_000);
      expect(worker.stdout + worker.stderr, worker.stdout + worker.stderr).toMatch(/the database is up/);
      // Started all the way (its heartbeat row written) before the clean stop is asked for.
      await until(
        async () => (await query<{ n: number }>(server.url, "select count(*)::int as n from pmt_jobs.worker"))[0]!.n > 0,
        "the worker's heartbeat row",
        60_000,
      );
      expect(await Workers.stop(worker)).toBe(0);
    } finally {
      worker.kill("SIGKILL");
    }
    recordFault({
      scenario: "database",
      fault: "PostgreSQL not up yet when `start` runs",
      outcome: "waited, one log line every 5 s (password hidden); started when the server came up",
      lost: 0,
    });
  });
});
