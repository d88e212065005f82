/**
 * Fault: the SMTP server stores the message and the connection drops before
 * its 250 reply (after the final dot). The worker cannot know whether the mail
 * was delivered: it must record "delivery unconfirmed" and never send again.
 * The control: a connection dropped at MAIL FROM, before any of the message,
 * is retried and delivered once.
 */
import { describe, expect, it } from "vitest";
import { collectStatus } from "../../src/status/status.js";
import { JobEventLog } from "../harness/events.js";
import { exportWorld, recordFault, Workers } from "../harness/faults.js";
import { until } from "../harness/wait.js";

const world = exportWorld(50);

async function requestExport(email: string): Promise<number> {
  await world.db.pool.query("select pmt_jobs.request_export('csv', $1, '{}')", [email]);
  return Number((await world.db.pool.query("select max(id) as id from pmt_jobs.export_request")).rows[0].id);
}

async function attempts(id: number): Promise<{ attempt: number; status: string }[]> {
  const { rows } = await world.db.pool.query(
    "select attempt, status from pmt_jobs.job_run where task = 'pmt_jobs.export' and payload_summary = $1 order by attempt",
    [{ requestId: id }],
  );
  return rows;
}

describe("the SMTP connection drops around the message", () => {
  it("after the final dot, before the 250: one mail, sent with delivery unconfirmed, never sent again", async () => {
    const worker = await world.workers.start();
    const log = await JobEventLog.listen(world.db.url);
    world.smtp.dropAfterStore = 1;
    const id = await requestExport("dropped@example.org");
    await log.waitFor((e) => e.task === "pmt_jobs.export" && e.status !== "running", 60_000, "the export attempt to end");

    const row = (
      await world.db.pool.query("select status, error, message_id, smtp_response, sent_at is not null as sent from pmt_jobs.export_request where id = $1", [id])
    ).rows[0];
    expect(row).toMatchObject({ status: "sent", message_id: null, smtp_response: "unknown", sent: true });
    expect(row.error).toMatch(
      /^delivery unconfirmed: the connection to the mail server was lost after the whole message was sent, before its reply \(E[A-Z]+: .*\); not sent again to avoid a second copy$/,
    );
    // The job is finished: nothing is left to retry it.
    expect(await attempts(id)).toEqual([{ attempt: 1, status: "succeeded" }]);
    expect((await world.db.pool.query("select count(*)::int as n from graphile_worker.jobs")).rows[0].n).toBe(0);
    expect(world.smtp.messages.filter((m) => (m.to as { text: string }).text === "dropped@example.org")).toHaveLength(1);
    expect(world.smtp.dropAfterStore).toBe(0);

    // The operator sees it on the status screen.
    const status = await collectStatus(world.db.pool);
    expect(status.exports_unconfirmed).toEqual([{ count: 1, newest_id: id }]);

    // Control: dropped at MAIL FROM, nothing of the message went out: retried, delivered once, confirmed.
    world.smtp.dropAtMailFrom = 1;
    const retried = await requestExport("retried@example.org");
    const done = await until(
      async () => {
        const { rows } = await world.db.pool.query("select status, error, message_id from pmt_jobs.export_request where id = $1", [retried]);
        return rows[0]?.status === "sent" ? rows[0] : undefined;
      },
      "the export dropped at MAIL FROM to be retried and sent",
      60_000,
    );
    expect(done.error).toBeNull();
    expect(done.message_id).toMatch(/^<export-\d+\./);
    await until(async () => (await attempts(retried)).at(-1)?.status === "succeeded", "the retry to be recorded");
    expect((await attempts(retried)).map((a) => a.status)).toEqual(["failed", "succeeded"]);
    expect(world.smtp.messages.filter((m) => (m.to as { text: string }).text === "retried@example.org")).toHaveLength(1);
    expect(world.smtp.messages).toHaveLength(2);

    expect(await Workers.stop(worker)).toBe(0);
    await log.close();
    recordFault({
      scenario: "export delivery",
      fault: "SMTP server stores the message, drops the connection before its 250",
      outcome: "1 mail, request sent (delivery unconfirmed), no retry; a drop at MAIL FROM: retried, 1 mail",
      lost: 0,
    });
  }, 180_000);
});
