/**
 * Fault: the worker is killed (SIGKILL) after the SMTP server accepted the
 * mail and before the request's status was updated. The retry after the
 * restart must not send a second copy: it finds the SMTP transaction started
 * and records "delivery unconfirmed".
 */
import pg from "pg";
import { describe, expect, it } from "vitest";
import { JobEventLog } from "../harness/events.js";
import { exportWorld, recordFault, Workers } from "../harness/faults.js";
import { until } from "../harness/wait.js";

const world = exportWorld(50);

describe("kill -9 between SMTP acceptance and the status update", () => {
  it("does not mail a second copy after the restart", async () => {
    const first = await world.workers.start();
    const log = await JobEventLog.listen(world.db.url);
    // Before the server says 250, the test locks the request's row: the worker's
    // "sent" update then waits, and the worker dies with the mail accepted but unrecorded.
    const locker = new pg.Client({ connectionString: world.db.url });
    await locker.connect();
    world.smtp.beforeAccept = async () => {
      await locker.query("begin");
      await locker.query("select 1 from pmt_jobs.export_request for update");
    };
    await world.db.pool.query("select pmt_filter_csv('', '', '', null, null, 'frank@example.org')");
    const updater = await until(async () => {
      const { rows } = await world.db.pool.query<{ pid: number }>(
        "select pid from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query ilike '%export_request%' and pid <> pg_backend_pid()",
      );
      return rows[0];
    }, "the worker's status update to wait after the SMTP acceptance");
    expect(world.smtp.messages).toHaveLength(1);

    await Workers.crash(first);
    await world.db.pool.query("select pg_terminate_backend($1)", [updater.pid]);
    await locker.query("rollback");
    await locker.end();
    world.smtp.beforeAccept = undefined;
    const stuck = (await world.db.pool.query("select status, sent_at, send_started_at is not null as started from pmt_jobs.export_request")).rows[0];
    expect(stuck).toEqual({ status: "sending", sent_at: null, started: true });

    const second = await world.workers.start();
    await log.waitFor((e) => e.task === "pmt_jobs.export" && e.status === "succeeded", 60_000, "the retried export");
    const done = (await world.db.pool.query("select status, error from pmt_jobs.export_request")).rows[0];
    expect(done.status).toBe("sent");
    expect(done.error).toMatch(/^delivery unconfirmed: /);
    // Give a wrongly sent second copy time to arrive.
    await new Promise((r) => setTimeout(r, 500));
    expect(world.smtp.messages).toHaveLength(1);
    const history = await world.db.pool.query("select attempt, status from pmt_jobs.job_run where task = 'pmt_jobs.export' order by attempt");
    expect(history.rows).toEqual([
      { attempt: 1, status: "abandoned" },
      { attempt: 2, status: "succeeded" },
    ]);
    expect(await Workers.stop(second)).toBe(0);
    await log.close();
    recordFault({
      scenario: "export delivery",
      fault: "kill -9 after the SMTP server's 250, before the status update",
      outcome: "retry found the SMTP transaction begun: 1 mail, request sent (delivery unconfirmed)",
      lost: 0,
    });
  });
});
