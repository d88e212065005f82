/**
 * Fault: the SMTP server is down while exports are requested, then comes
 * back. Every queued export is delivered, each exactly once, by the jobs'
 * own retries.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { exportWorld, recordFault, Workers } from "../harness/faults.js";
import { until } from "../harness/wait.js";

const world = exportWorld(50);
const recipients = ["ann@example.org", "bob@example.org", "cy@example.org", "di@example.org"];

// The SMTP server is away from the start.
beforeAll(() => world.smtp.down());

describe("SMTP server down, then up", () => {
  it("delivers every queued export once it is back, each exactly once", async () => {
    const worker = await world.workers.start();
    for (const [i, to] of recipients.entries()) {
      await world.db.pool.query(`select ${i % 2 ? "pmt_filter_iati" : "pmt_filter_csv"}('', '', '', null, null, $1)`, [to]);
    }
    // Each export tried and failed while the server was away.
    await until(
      async () => {
        const { rows } = await world.db.pool.query<{ n: number }>(
          "select count(distinct job_id)::int as n from pmt_jobs.job_run where task = 'pmt_jobs.export' and status = 'failed'",
        );
        return rows[0]!.n === recipients.length;
      },
      () => `every export to fail once while SMTP is down; worker output:\n${worker.stdout.slice(-3000)}${worker.stderr.slice(-3000)}`,
    );
    const waiting = (await world.db.pool.query("select count(*)::int as n from pmt_jobs.export_request where status in ('queued', 'rendering', 'sending')"))
      .rows[0].n;
    expect(waiting).toBe(recipients.length);

    await world.smtp.up();
    await until(
      async () => {
        const { rows } = await world.db.pool.query("select status from pmt_jobs.export_request");
        return rows.every((r) => r.status === "sent");
      },
      "every export to be sent after the server came back",
      60_000,
      200,
    );
    await new Promise((r) => setTimeout(r, 500)); // room for a wrong second copy to arrive
    const delivered = world.smtp.messages.map((m) => (m.to as { text: string }).text).sort();
    expect(delivered).toEqual([...recipients].sort());
    const errors = (await world.db.pool.query("select error from pmt_jobs.export_request where error is not null")).rows;
    expect(errors).toEqual([]);
    expect(await Workers.stop(worker)).toBe(0);
    recordFault({
      scenario: "SMTP outage",
      fault: `SMTP server down while ${recipients.length} exports were requested, then up`,
      outcome: `each failed, retried with backoff, ${recipients.length} mails after recovery, one per recipient`,
      lost: 0,
    });
  });
});
