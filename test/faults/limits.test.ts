/**
 * Limits that protect the service, attacked as PMT's application role would:
 * a mail bomb to one address (concurrent callers, +tags, case), many
 * addresses from one role, a queue filled to its limit, a filter that is
 * costly to check in the caller's transaction; and backups queued behind
 * exports that hold every export slot.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { seedDemo } from "../../src/exports/demo.js";
import { applyExportLimits, pruneLimitKeys } from "../../src/exports/limits.js";
import { createLogger } from "../../src/log.js";
import type { WorkerHandle } from "../../src/worker/runner.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { recordFault } from "../harness/faults.js";
import { SmtpSink } from "../harness/smtp.js";
import { until } from "../harness/wait.js";
import { startTestWorker } from "../harness/worker.js";

const logger = createLogger("silent");
const suffix = crypto.randomBytes(4).toString("hex");
const WEB = `pmt_web_${suffix}`;
const OTHER = `pmt_other_${suffix}`;
let db: TestDatabase;
let smtp: SmtpSink;
let admin: pg.Client;
const cleanup: (() => Promise<unknown> | void)[] = [];

function urlAs(user: string): string {
  const u = new URL(db.url);
  u.username = user;
  u.password = "web-pw";
  return u.toString();
}

/** A connection of PMT's application role (a login role granted pmt_app): not the queue's owner. */
async function appClient(role = WEB): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: urlAs(role) });
  await client.connect();
  cleanup.push(() => client.end());
  return client;
}

type Outcome = { ok: true } | { ok: false; code: string; message: string; detail?: string };

async function exportTo(client: pg.Client, email: string, dates: [string | null, string | null] = [null, null]): Promise<Outcome> {
  return client.query("select pmt_filter_csv('', '', '', $2, $3, $1) as ok", [email, ...dates]).then(
    () => ({ ok: true }) as const,
    (e: { code: string; message: string; detail?: string }) => ({ ok: false, code: e.code, message: e.message, detail: e.detail }),
  );
}

async function setLimits(values: Record<string, number | string>): Promise<void> {
  const sets = Object.keys(values).map((k, i) => `${k} = $${i + 1}`);
  await db.pool.query(`update pmt_jobs.export_limits set ${sets.join(", ")}`, Object.values(values));
}

/** Forgets earlier tests' requests and their jobs. */
async function reset(): Promise<void> {
  await db.pool.query("delete from graphile_worker._private_jobs");
  await db.pool.query("delete from pmt_jobs.export_request");
}

async function counts(): Promise<{ requests: number; jobs: number }> {
  const { rows } = await db.pool.query(`select (select count(*)::int from pmt_jobs.export_request) as requests,
                                               (select count(*)::int from graphile_worker.jobs where task_identifier = 'pmt_jobs.export') as jobs`);
  return rows[0];
}

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, logger);
  await seedDemo(db.pool, 1000); // 100 projects
  smtp = await SmtpSink.start();
  admin = new pg.Client({ connectionString: inject("adminUrl") });
  await admin.connect();
  for (const role of [WEB, OTHER]) {
    await admin.query(`create role ${role} login password 'web-pw'`);
    await admin.query(`grant pmt_app to ${role}`);
  }
});

afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
  await smtp?.down();
  for (const role of [WEB, OTHER]) await admin.query(`drop owned by ${role}; drop role ${role}`).catch(() => {});
  await admin.end();
});

describe("export limits", () => {
  it("refuses a mail bomb to one address beyond the limit, under 12 concurrent callers, with the time of the next", async () => {
    await setLimits({ per_recipient_per_hour: 5, per_role_per_hour: 1000, max_queued: 0 });
    const clients = await Promise.all(Array.from({ length: 12 }, () => appClient()));
    // All at once, and the address in the variants that reach one inbox.
    const addresses = ["bomb@example.org", "Bomb@Example.org", "bomb+1@example.org", "BOMB+x@example.org"];
    const outcomes = await Promise.all(clients.map((c, i) => exportTo(c, addresses[i % addresses.length]!)));
    const refused = outcomes.filter((o) => !o.ok);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(5);
    expect(refused).toHaveLength(7);
    for (const o of refused) {
      expect(o).toMatchObject({ code: "22023" });
      expect(o.ok || o.message).toMatch(/^at most 5 exports per hour to \S+@\S+; the next is possible after \d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
      expect(o.ok || o.detail).toMatch(/^retry after \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    // The retry time is an hour after the oldest counted request.
    const { rows } = await db.pool.query(
      "select to_char((min(requested_at) + interval '1 hour') at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') as t from pmt_jobs.export_request",
    );
    expect((refused[0] as { detail: string }).detail).toBe(`retry after ${rows[0].t}`);
    expect(await counts()).toEqual({ requests: 5, jobs: 5 });

    // Another address of the same role is not affected; the queue's owner is not limited.
    expect(await exportTo(clients[0]!, "ann@example.org")).toEqual({ ok: true });
    expect((await db.pool.query("select pmt_filter_csv('', '', '', null, null, 'bomb@example.org') as ok")).rows[0].ok).toBe(true);

    // The worker mails what was accepted: 5 to the bombed inbox, nothing more.
    const worker = await startTestWorker(db.url, { env: { SMTP_URL: smtp.url } });
    cleanup.push(() => worker.stop());
    await until(
      async () => (await db.pool.query("select bool_and(status = 'sent') as done from pmt_jobs.export_request")).rows[0].done,
      "every accepted export to be sent",
    );
    await worker.stop();
    const bombed = smtp.messages.filter((m) => /bomb/i.test((m.to as { text: string }).text));
    expect(bombed).toHaveLength(6); // 5 from the application role, 1 from the owner
    expect(smtp.messages).toHaveLength(7);
    recordFault({
      scenario: "export limit per recipient",
      fault: "12 concurrent pmt_app sessions export to one address (case and +tag variants), limit 5/hour",
      outcome: "5 accepted, 7 refused (22023, limit and retry time); 5 mails from the role; other addresses unaffected",
      lost: 0,
    });
  });

  it("counts from the caller's snapshot only when it is current: REPEATABLE READ gets 40001, never a sixth request", async () => {
    await reset();
    await setLimits({ per_recipient_per_hour: 1 });
    const [a, b] = [await appClient(), await appClient()];
    await b.query("begin isolation level repeatable read");
    await b.query("select 1"); // b's snapshot: before a's request
    expect(await exportTo(a, "carol@example.org")).toEqual({ ok: true });
    expect(await exportTo(b, "carol@example.org")).toMatchObject({ ok: false, code: "40001" });
    await b.query("rollback");
    expect(await exportTo(b, "carol@example.org")).toMatchObject({ ok: false, code: "22023" });
    expect((await counts()).requests).toBe(1);
  });

  it("refuses one role beyond its hourly limit across addresses, while another role may still export", async () => {
    await reset();
    await setLimits({ per_recipient_per_hour: 0, per_role_per_hour: 4 });
    const web = await appClient();
    const outcomes = [];
    for (let i = 0; i < 7; i++) outcomes.push(await exportTo(web, `reader${i}@example.org`));
    expect(outcomes.slice(0, 4)).toEqual(Array(4).fill({ ok: true }));
    for (const o of outcomes.slice(4)) {
      expect(o).toMatchObject({
        ok: false,
        code: "22023",
        message: expect.stringMatching(new RegExp(`^at most 4 exports per hour may be requested by the role ${WEB}; the next is possible after .+ UTC$`)),
      });
    }
    // SET ROLE does not change who is counted (session_user).
    await web.query("set role pmt_app");
    expect(await exportTo(web, "reader9@example.org")).toMatchObject({ ok: false, code: "22023", message: expect.stringContaining(`by the role ${WEB};`) });
    expect(await exportTo(await appClient(OTHER), "reader9@example.org")).toEqual({ ok: true });
    expect((await counts()).requests).toBe(5);
    recordFault({
      scenario: "export limit per role",
      fault: "one pmt_app login requests 7 exports to 7 addresses, limit 4/hour",
      outcome: "4 accepted, 3 refused (22023, limit and retry time); another role unaffected",
      lost: 0,
    });
  });

  it("refuses new exports while the queue holds its maximum, and accepts again once it drains", async () => {
    await reset();
    await setLimits({ per_recipient_per_hour: 0, per_role_per_hour: 0, max_queued: 3 });
    const web = await appClient();
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push(await exportTo(web, `queued${i}@example.org`));
    expect(outcomes.slice(0, 3)).toEqual(Array(3).fill({ ok: true }));
    for (const o of outcomes.slice(3)) {
      expect(o).toMatchObject({ ok: false, code: "53400", message: "the export queue is full: 3 exports are waiting (at most 3); try again later" });
    }
    expect(await counts()).toEqual({ requests: 3, jobs: 3 });
    await db.pool.query("update pmt_jobs.export_request set status = 'sent' where id = (select min(id) from pmt_jobs.export_request)");
    expect(await exportTo(web, "queued5@example.org")).toEqual({ ok: true });
    recordFault({
      scenario: "export queue depth",
      fault: "pmt_app requests 5 exports with max_queued 3 and no worker draining",
      outcome: "3 queued, 2 refused (53400, queue full); accepted again once one is done",
      lost: 0,
    });
  });

  it("stops a filter costly to check in the caller's transaction at filter_timeout, where a function's own statement_timeout would not", async () => {
    // PostgreSQL 15: a SET clause on a function does not re-arm the running statement's timer.
    await db.pool.query("create function public.sleepy() returns void language sql set statement_timeout = '50ms' as 'select pg_sleep(0.3)'");
    await db.pool.query("select public.sleepy()");
    await db.pool.query("drop function public.sleepy()");

    await reset();
    await setLimits({ per_recipient_per_hour: 0, per_role_per_hour: 0, max_queued: 0, filter_timeout: "0" });
    const web = await appClient();
    const nothing: [string, string] = ["1900-01-01", "1900-01-02"]; // every project checked, nothing matches
    let t = performance.now();
    expect(await exportTo(web, "dora@example.org", nothing)).toEqual({ ok: true }); // returns false: nothing to mail
    const fullMs = performance.now() - t;
    expect((await web.query("select pmt_filter_csv('', '', '', $1, $2, 'dora@example.org') as ok", nothing)).rows[0].ok).toBe(false);

    // 1 ms: surely used up by the first range of 32 projects, so the check stops before the second.
    await setLimits({ filter_timeout: "1 millisecond" });
    await web.query("begin");
    t = performance.now();
    const cut = await exportTo(web, "dora@example.org", nothing);
    const cutMs = performance.now() - t;
    expect(cut).toMatchObject({
      ok: false,
      code: "57014",
      message: expect.stringMatching(
        /^the export filter was stopped after \d+ ms: finding whether it matches anything takes longer than filter_timeout \(1 ms\) allows; narrow it/,
      ),
    });
    // The caller's transaction is aborted, as by statement_timeout, and holds nothing.
    await expect(web.query("select 1")).rejects.toMatchObject({ code: "25P02" });
    await web.query("rollback");
    // A filter that matches in the first range is not affected.
    expect(await exportTo(web, "dora@example.org")).toEqual({ ok: true });
    expect((await counts()).requests).toBe(1);
    recordFault({
      scenario: "export filter timeout",
      fault: "pmt_app's filter matches nothing (every project checked), filter_timeout 1 ms",
      outcome: `stopped with 57014 after the first range of projects (${Math.round(cutMs)} ms vs ${Math.round(fullMs)} ms unbounded); nothing enqueued`,
      lost: 0,
    });
  });

  it("takes its settings from the environment when set, leaving the rest to psql; forgets stale keys", async () => {
    await setLimits({ per_recipient_per_hour: 7, per_role_per_hour: 70, max_queued: 700, filter_timeout: "7 seconds" });
    expect(await applyExportLimits(db.pool, {}, logger)).toEqual([]);
    expect(await applyExportLimits(db.pool, { perRecipientPerHour: 3, filterTimeoutMs: 2500 }, logger)).toEqual(["per_recipient_per_hour", "filter_timeout"]);
    const { rows } = await db.pool.query("select per_recipient_per_hour, per_role_per_hour, max_queued, filter_timeout::text from pmt_jobs.export_limits");
    expect(rows).toEqual([{ per_recipient_per_hour: 3, per_role_per_hour: 70, max_queued: 700, filter_timeout: "00:00:02.5" }]);
    await expect(db.pool.query("update pmt_jobs.export_limits set max_queued = -1")).rejects.toMatchObject({ code: "23514" });

    const keys = (await db.pool.query("select count(*)::int as n from pmt_jobs.export_limit_key")).rows[0].n;
    expect(keys).toBeGreaterThan(0);
    await db.pool.query(
      "update pmt_jobs.export_limit_key set touched_at = now() - interval '2 hours' where key = (select key from pmt_jobs.export_limit_key limit 1)",
    );
    expect(await pruneLimitKeys(db.pool)).toBe(1);
    expect((await db.pool.query("select count(*)::int as n from pmt_jobs.export_limit_key")).rows[0].n).toBe(keys - 1);
  });
});

describe("maintenance beside exports", () => {
  let worker: WorkerHandle;
  let log: JobEventLog;

  it("runs a backup while exports hold every export slot", async () => {
    await reset();
    await setLimits({ max_queued: 0, per_recipient_per_hour: 0, per_role_per_hour: 0 });
    const before = smtp.messages.length;
    const ids: number[] = [];
    for (const to of ["e1@example.org", "e2@example.org", "e3@example.org"]) {
      ids.push(Number((await db.pool.query("select pmt_jobs.request_export('csv', $1, '{}') as id", [to])).rows[0].id));
    }
    // Every export waits at its first step (marking its request rendering) for these row locks.
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    cleanup.push(() => locker.end());
    await locker.query("begin");
    await locker.query("select id from pmt_jobs.export_request where id = any($1) for update", [ids]);

    log = await JobEventLog.listen(db.url);
    cleanup.push(() => log.close());
    worker = await startTestWorker(db.url, {
      env: {
        SMTP_URL: smtp.url,
        WORKER_CONCURRENCY: "2",
        MAINTENANCE_CONCURRENCY: "1",
        BACKUP_DIR: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-limits-")), "b"),
      },
    });
    cleanup.push(() => worker.stop());
    await until(async () => {
      const { rows } = await db.pool.query(
        "select count(*)::int as n from pg_stat_activity where application_name = 'pmt-worker' and wait_event_type = 'Lock'",
      );
      return rows[0].n === 2;
    }, "both export slots to be held at the lock");

    const { rows } = await db.pool.query("select id from graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text))", [db.name]);
    const backupJob = Number(rows[0].id);
    const done = await log.waitFor((e) => e.job_id === backupJob && e.status !== "running", 120_000, "the backup to finish");
    expect(done).toMatchObject({ status: "succeeded", worker_id: worker.maintenanceWorkerId });
    // The exports were held all along: two running in the export slots, the third waiting for one.
    const held = await db.pool.query("select status, worker_id from pmt_jobs.job_run where task = 'pmt_jobs.export' and worker_id = any($1) order by id", [
      [worker.workerId, worker.maintenanceWorkerId],
    ]);
    expect(held.rows).toEqual([
      { status: "running", worker_id: worker.workerId },
      { status: "running", worker_id: worker.workerId },
    ]);
    expect((await db.pool.query("select count(*)::int as n from pmt_jobs.export_request where status = 'queued'")).rows[0].n).toBe(3);

    await locker.query("rollback");
    await until(
      async () => (await db.pool.query("select bool_and(status = 'sent') as done from pmt_jobs.export_request")).rows[0].done,
      "the exports to be sent",
    );
    expect(smtp.messages.length - before).toBe(3);
    await worker.stop();
    expect((await db.pool.query("select count(*)::int as n from pmt_jobs.worker")).rows[0].n).toBe(0);
    recordFault({
      scenario: "backup behind exports",
      fault: "3 exports held at a lock fill both export slots, then a backup is queued",
      outcome: "backup ran at once in the maintenance slot and succeeded while the exports were held; then 3 mails",
      lost: 0,
    });
  });
});
