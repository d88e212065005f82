/**
 * Fault: a worker frozen (SIGSTOP) longer than WORKER_DEAD_AFTER_SECONDS, as
 * in a VM pause, a GC stall or a network partition. Another worker rescues its
 * jobs and finishes them; when the frozen one resumes (SIGCONT) it must not
 * mail the exports a second time.
 *   - frozen before the send: it finds its job lock gone and stops (fenced);
 *   - frozen inside the SMTP transaction, after claiming the send: the rescue's
 *     retry finds the send begun and records "delivery unconfirmed" without
 *     sending; the resumed worker finishes its one copy.
 * Each test holds the worker at an exact point (a table lock its export query
 * waits for; an SMTP server that holds MAIL FROM) before it is frozen.
 */
import pg from "pg";
import { describe, expect, it } from "vitest";
import type { ChildHandle } from "../harness/cli.js";
import { exportWorld, recordFault, Workers } from "../harness/faults.js";
import { until } from "../harness/wait.js";

const world = exportWorld(60);

function workerId(child: ChildHandle): string {
  const id = /"workerId":"([^"]+)"/.exec(child.stdout)?.[1];
  if (!id) throw new Error(`no workerId in the worker's output:\n${child.stdout}`);
  return id;
}

async function count(sql: string, values: unknown[] = []): Promise<number> {
  return Number((await world.db.pool.query<{ n: string }>(sql, values)).rows[0]!.n);
}

describe("a worker frozen past the dead-worker timeout", () => {
  it("resumes after its exports were rescued and sent, and sends none of them again", async () => {
    const requests = 20;
    const slots = 5;
    // Sent files are kept (as for an audit): every attempt's file stays readable, so
    // nothing but the fence can stop the resumed worker from mailing its own.
    const keep = { EXPORT_KEEP_HOURS: "24" };
    const frozen = await world.workers.start({ WORKER_CONCURRENCY: String(slots), ...keep });
    const staleId = workerId(frozen);

    // The export query waits for this lock: the frozen worker's attempts are surely before their send.
    const locker = new pg.Client({ connectionString: world.db.url });
    await locker.connect();
    await locker.query("begin; lock table public.location in access exclusive mode");
    for (let i = 0; i < requests; i++) {
      await world.db.pool.query("select pmt_jobs.request_export('csv', $1, '{}')", [`frozen-${i}@example.org`]);
    }
    await until(
      async () =>
        (await count("select count(*) as n from pmt_jobs.export_request where status = 'rendering'")) === slots &&
        (await count(
          "select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()",
        )) >= slots,
      `the frozen worker's ${slots} exports to wait for the lock`,
      60_000,
    );
    frozen.kill("SIGSTOP");
    await locker.query("rollback");
    await locker.end();

    // The rescuer releases the frozen worker's jobs; this worker sends all the exports.
    const rescuer = await world.workers.start(keep);
    let sent = 0;
    await until(
      async () => (sent = await count("select count(*) as n from pmt_jobs.export_request where status = 'sent'")) === requests,
      () => `all ${requests} exports to be sent (have ${sent})`,
      120_000,
    );
    await world.smtp.waitForMessages(requests, 60_000);
    const abandoned = await world.db.pool.query<{ job_id: string; error: string }>(
      "select job_id, error from pmt_jobs.job_run where worker_id = $1 and task = 'pmt_jobs.export'",
      [staleId],
    );
    expect(abandoned.rows).toHaveLength(slots);
    for (const r of abandoned.rows) expect(r.error).toMatch(/stopped heartbeating for over 2s; the job was released for retry$/);

    // It comes back, finishes its queries and renders, then finds its lock gone at the send.
    frozen.kill("SIGCONT");
    await until(
      async () => (await count("select count(*) as n from pmt_jobs.job_run where worker_id = $1 and error like '%; then fenced: %'", [staleId])) === slots,
      () => `the resumed worker's attempts to be fenced (${world.smtp.messages.length} mails for ${requests} requests)`,
      120_000,
    );

    expect(world.smtp.messages).toHaveLength(requests);
    const messageIds = new Set(world.smtp.messages.map((m) => m.messageId));
    expect(messageIds.size).toBe(requests);
    const recipients = world.smtp.messages.map((m) => (m.to as { text: string }).text).sort();
    expect(recipients).toEqual(Array.from({ length: requests }, (_, i) => `frozen-${i}@example.org`).sort());
    const outcome = await world.db.pool.query(
      `select e.status, e.error, r.worker_id = $1 as by_stale, r.status as run_status
       from pmt_jobs.export_request e join pmt_jobs.job_run r on r.id = e.send_run_id`,
      [staleId],
    );
    expect(outcome.rows).toHaveLength(requests);
    for (const row of outcome.rows) expect(row).toEqual({ status: "sent", error: null, by_stale: false, run_status: "succeeded" });
    const history = await world.db.pool.query<{ attempt: number; status: string; error: string | null }>(
      `select r.attempt, r.status, r.error from pmt_jobs.job_run r
       where r.job_id in (select job_id from pmt_jobs.job_run where worker_id = $1) order by r.job_id, r.attempt`,
      [staleId],
    );
    expect(history.rows.map((r) => [r.attempt, r.status])).toEqual(
      Array.from({ length: slots }, () => [
        [1, "abandoned"],
        [2, "succeeded"],
      ]).flat(),
    );
    for (const r of history.rows.filter((h) => h.attempt === 1)) {
      expect(r.error).toMatch(
        /; then fenced: export request \d+: worker \S+ no longer holds job \d+ attempt 1 \(released after missed heartbeats, or taken over\); stopped before sending, nothing sent by this attempt$/,
      );
    }
    // Nothing left in the queue: no fenced attempt ended or disturbed a job.
    expect(await count("select count(*) as n from graphile_worker.jobs")).toBe(0);

    expect(await Workers.stop(frozen)).toBe(0);
    expect(await Workers.stop(rescuer)).toBe(0);
    recordFault({
      scenario: "frozen worker",
      fault: `SIGSTOP past dead-worker timeout, ${slots} of ${requests} exports rendering; SIGCONT`,
      outcome: `rescued: ${requests} mails for ${requests} requests; the resumed worker found its locks gone: abandoned, fenced`,
      lost: 0,
    });
  }, 300_000);

  it("frozen inside the SMTP transaction: the retry records delivery unconfirmed, the resumed worker sends its one copy", async () => {
    const frozen = await world.workers.start({ WORKER_CONCURRENCY: "1" });
    const staleId = workerId(frozen);
    const before = world.smtp.messages.length;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let arrived!: () => void;
    const atMailFrom = new Promise<void>((r) => (arrived = r));
    world.smtp.beforeMailFrom = () => {
      arrived();
      return held;
    };
    await world.db.pool.query("select pmt_jobs.request_export('csv', 'late@example.org', '{}')");
    const id = Number((await world.db.pool.query("select max(id) as id from pmt_jobs.export_request")).rows[0].id);
    await atMailFrom;
    const claimed = (
      await world.db.pool.query("select e.status, r.worker_id from pmt_jobs.export_request e join pmt_jobs.job_run r on r.id = e.send_run_id where e.id = $1", [
        id,
      ])
    ).rows[0];
    expect(claimed).toEqual({ status: "sending", worker_id: staleId });

    frozen.kill("SIGSTOP");
    const rescuer = await world.workers.start();
    const settled = await until(
      async () => {
        const { rows } = await world.db.pool.query("select status, error from pmt_jobs.export_request where id = $1", [id]);
        return rows[0]?.status === "sent" ? rows[0] : undefined;
      },
      "the retry to settle the request",
      120_000,
    );
    expect(settled.error).toMatch(/^delivery unconfirmed: an earlier attempt began the SMTP transaction .*not sent again/);
    await until(
      async () =>
        (await count(
          "select count(*) as n from pmt_jobs.job_run where job_id = (select job_id from pmt_jobs.job_run where worker_id = $1) and attempt = 2 and status = 'succeeded'",
          [staleId],
        )) === 1,
      "the retry to succeed without sending",
    );
    expect(world.smtp.messages).toHaveLength(before);

    world.smtp.beforeMailFrom = undefined;
    release();
    frozen.kill("SIGCONT");
    await world.smtp.waitForMessages(before + 1, 60_000);
    await until(
      async () => (await count("select count(*) as n from pmt_jobs.job_run where worker_id = $1 and error like '%; then fenced: %'", [staleId])) === 1,
      "the resumed worker to record its lost lock",
      60_000,
    );
    expect(world.smtp.messages).toHaveLength(before + 1);
    // The one copy was accepted with 250: the request says so now.
    const done = (await world.db.pool.query("select status, error, message_id from pmt_jobs.export_request where id = $1", [id])).rows[0];
    expect(done).toEqual({ status: "sent", error: null, message_id: world.smtp.messages[before]!.messageId });

    expect(await Workers.stop(frozen)).toBe(0);
    expect(await Workers.stop(rescuer)).toBe(0);
    recordFault({
      scenario: "frozen worker",
      fault: "SIGSTOP past the dead-worker timeout inside SMTP, after the send claim",
      outcome: "retry found the send begun: unconfirmed, not sent; the resumed worker's copy confirmed it: 1 mail",
      lost: 0,
    });
  }, 300_000);
});
