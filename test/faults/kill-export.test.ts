/**
 * Fault: the worker is killed (SIGKILL) while it renders an export. After a
 * restart the export is rendered again and mailed exactly once; the history
 * shows the abandoned attempt.
 */
import pg from "pg";
import { describe, expect, it } from "vitest";
import { JobEventLog } from "../harness/events.js";
import { exportWorld, recordFault, Workers } from "../harness/faults.js";
import { until } from "../harness/wait.js";
import { exported } from "../exports/fixtures.js";

const world = exportWorld(100);

describe("kill -9 while an export renders", () => {
  it("renders again after the restart and mails exactly one copy", async () => {
    const first = await world.workers.start();

    // The export's query waits for this lock: the worker is surely rendering when it dies.
    const locker = new pg.Client({ connectionString: world.db.url });
    await locker.connect();
    await locker.query("begin; lock table public.location in access exclusive mode");
    const log = await JobEventLog.listen(world.db.url);
    await world.db.pool.query("select pmt_jobs.request_export('csv', 'erin@example.org', '{}')");
    const request = await until(async () => {
      const { rows } = await world.db.pool.query("select id, status from pmt_jobs.export_request");
      return rows[0]?.status === "rendering" ? rows[0] : undefined;
    }, "the export to be rendering");

    await Workers.crash(first);
    await world.db.pool.query(
      "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()",
    );
    await locker.query("rollback");
    await locker.end();

    const second = await world.workers.start();
    await log.waitFor((e) => e.task === "pmt_jobs.export" && e.status === "succeeded", 60_000, "the retried export");
    const done = (await world.db.pool.query("select status, rows, error from pmt_jobs.export_request where id = $1", [request.id])).rows[0];
    expect(done).toEqual({ status: "sent", rows: (await exported(world.db.pool)).activities, error: null });
    await world.smtp.waitForMessages(1);
    expect(world.smtp.messages).toHaveLength(1);
    const history = await world.db.pool.query("select attempt, status from pmt_jobs.job_run where task = 'pmt_jobs.export' order by attempt");
    expect(history.rows).toEqual([
      { attempt: 1, status: "abandoned" },
      { attempt: 2, status: "succeeded" },
    ]);
    expect(await Workers.stop(second)).toBe(0);
    await log.close();
    recordFault({
      scenario: "export render",
      fault: "kill -9 of the worker while the export query runs",
      outcome: "rendered again after restart, 1 mail, history abandoned -> succeeded",
      lost: 0,
    });
  });
});
