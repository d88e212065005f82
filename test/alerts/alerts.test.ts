/** Alerts to ALERT_EMAIL through a real SMTP sink: each condition, and the repeat window. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { raiseAlert } from "../../src/alerts/alerts.js";
import { checkBackups, checkShrink } from "../../src/backups/health.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { createSmtpMailer } from "../../src/mail/transport.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { SmtpSink } from "../harness/smtp.js";
import { startTestWorker, testConfig } from "../harness/worker.js";

const logger = createLogger("silent");
let db: TestDatabase;
let smtp: SmtpSink;
let env: Record<string, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, logger);
  smtp = await SmtpSink.start();
  env = {
    ALERT_EMAIL: "dba@example.org",
    SMTP_URL: smtp.url,
    BACKUP_DIR: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-alerts-")), "b"),
    BACKUP_MIN_FREE_MB: "0",
  };
});

const mailers: { close(): void }[] = [];

afterAll(async () => {
  for (const m of mailers) m.close();
  await smtp?.down();
});

function deps(extra: Record<string, string> = {}) {
  const config = testConfig({ ...env, ...extra });
  const mailer = createSmtpMailer(config.smtpUrl!);
  mailers.push(mailer);
  return { config, pool: db.pool, logger, mailer };
}

const alertsTo = () => smtp.messages.filter((m) => (m.to as { text: string }).text === "dba@example.org");

describe("alerts", () => {
  it("mail a condition once per ALERT_REPEAT_HOURS, however often it is seen", async () => {
    const before = alertsTo().length;
    expect(await raiseAlert(deps(), "test:repeat", "something broke", "details, postgres://u:secret@h/db")).toBe(true);
    expect(await raiseAlert(deps(), "test:repeat", "something broke", "again")).toBe(false);
    await smtp.waitForMessages(smtp.messages.length);
    expect(alertsTo().length).toBe(before + 1);
    const mail = alertsTo().at(-1)!;
    expect(mail.subject).toBe("[pmt-worker] something broke");
    expect(mail.text).toContain("postgres://u:***@h/db");
    expect(mail.text).not.toContain("secret");
    const row = (await db.pool.query("select times_seen from pmt_jobs.alert where condition = 'test:repeat'")).rows[0];
    expect(row.times_seen).toBe(2);
  });

  it("when no successful backup is younger than BACKUP_MAX_AGE_HOURS, and when BACKUP_DIR runs low", async () => {
    fs.mkdirSync(env.BACKUP_DIR!, { recursive: true });
    // A fresh worker does not alert about a database never backed up...
    await checkBackups(deps(), db.url);
    expect(alertsTo().map((m) => m.subject)).not.toContain(`[pmt-worker] no successful backup of ${db.name} yet`);
    // ...but does once it has run for BACKUP_MAX_AGE_HOURS (simulated: 2 hours up, a 1-hour setting).
    const uptime = process.uptime;
    process.uptime = () => 2 * 3600;
    try {
      await checkBackups(deps({ BACKUP_MIN_FREE_MB: "100000000", BACKUP_MAX_AGE_HOURS: "1" }), db.url);
    } finally {
      process.uptime = uptime;
    }
    const subjects = alertsTo().map((m) => m.subject);
    expect(subjects).toContain(`[pmt-worker] no successful backup of ${db.name} yet`);
    expect(subjects.some((s) => /^\[pmt-worker\] only \d+(\.\d)? (B|KB|MB|GB|TB) free in /.test(s ?? ""))).toBe(true);
    await db.pool.query(
      "insert into pmt_jobs.backup (database, format, status, started_at, finished_at, bytes) values ($1, 'custom', 'succeeded', now() - interval '30 hours', now() - interval '30 hours', 1000)",
      [db.name],
    );
    await db.pool.query("delete from pmt_jobs.alert where condition like 'backup_stale:%'");
    await checkBackups(deps(), db.url);
    expect(alertsTo().map((m) => m.subject)).toContain(`[pmt-worker] no successful backup of ${db.name} for 30 hours`);
  });

  it("when a backup is much smaller than the previous one", async () => {
    await db.pool.query(
      "insert into pmt_jobs.backup (database, file, format, status, started_at, finished_at, bytes) values ($1, 'small.dump', 'custom', 'succeeded', now(), now(), 400)",
      [db.name],
    );
    await checkShrink(deps(), db.name);
    expect(alertsTo().map((m) => m.subject)).toContain(`[pmt-worker] backup of ${db.name} shrank to 40% of the previous one`);
  });

  it("when a backup and an upload fail for good", async () => {
    const log = await JobEventLog.listen(db.url);
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-nobin-"));
    const worker = await startTestWorker(db.url, {
      env: { ...env, PG_BIN_DIR: bin, OFFSITE_URL: `file://${fs.mkdtempSync(path.join(os.tmpdir(), "pmt-store-"))}` },
    });
    try {
      await db.pool.query("select graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text))", [db.name]);
      await db.pool.query("select graphile_worker.add_job('pmt_jobs.offsite_upload', json_build_object('backupId', 999999))");
      await log.waitFor((e) => e.task === "pmt_jobs.backup" && e.status === "failed");
      await log.waitFor((e) => e.task === "pmt_jobs.offsite_upload" && e.status === "failed");
      const subjects = () => alertsTo().map((m) => m.subject);
      const { until } = await import("../harness/wait.js");
      await until(
        async () =>
          subjects().includes(`[pmt-worker] backup of ${db.name} failed for good`) &&
          subjects().includes("[pmt-worker] offsite copy of backup 999999 failed for good"),
        "both alert mails",
      );
      const backupMail = alertsTo().find((m) => m.subject === `[pmt-worker] backup of ${db.name} failed for good`)!;
      expect(backupMail.text).toContain("install postgresql-client-15");
    } finally {
      await worker.stop();
      await log.close();
    }
  });

  it("are only logged without ALERT_EMAIL", async () => {
    const before = smtp.messages.length;
    const quiet = deps({ ALERT_EMAIL: "" });
    expect(await raiseAlert(quiet, "test:quiet", "nobody to tell", "x")).toBe(false);
    expect(smtp.messages.length).toBe(before);
  });
});
