/**
 * Fault: a backup row dated in the future (the server's clock was ahead when
 * it was written). It must not silence the stale-backup alert until that
 * date, nor show a negative age in backup_status or the metrics; it raises
 * an alert of its own. Real PostgreSQL and SMTP sink.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkBackups } from "../../src/backups/health.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { createSmtpMailer, type Mailer } from "../../src/mail/transport.js";
import { createMetrics } from "../../src/worker/metrics.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { recordFault } from "../harness/faults.js";
import { SmtpSink } from "../harness/smtp.js";
import { testConfig } from "../harness/worker.js";

const logger = createLogger("silent");
let db: TestDatabase;
let smtp: SmtpSink;
let mailer: Mailer;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, logger);
  smtp = await SmtpSink.start();
  mailer = createSmtpMailer(smtp.url);
});

afterAll(async () => {
  mailer?.close();
  await smtp?.down();
});

describe("a backup row dated in the future", () => {
  it("is ignored by every age (never negative), does not silence the stale alert, and raises its own", async () => {
    await db.pool.query(
      `insert into pmt_jobs.backup (database, file, format, status, started_at, finished_at, bytes) values
         ($1, 'past.dump', 'custom', 'succeeded', now() - interval '30 hours', now() - interval '30 hours', 1000),
         ($1, 'ahead.dump', 'custom', 'succeeded', now() + interval '10 days', now() + interval '10 days', 1000)`,
      [db.name],
    );

    const status = (
      await db.pool.query("select extract(epoch from last_success_age)::int as age, future_dated::int from pmt_jobs.backup_status where database = $1", [
        db.name,
      ])
    ).rows[0];
    expect(status.future_dated).toBe(1);
    expect(status.age).toBeGreaterThanOrEqual(30 * 3600);
    expect(status.age).toBeLessThan(31 * 3600);

    const metrics = await createMetrics(() => [{ database: db.name, pool: db.pool }]).registry.getSingleMetricAsString(
      "pmt_worker_backup_last_success_age_seconds",
    );
    const value = Number(new RegExp(`database="${db.name}"\\} (\\S+)`).exec(metrics)![1]);
    expect(value).toBeGreaterThanOrEqual(30 * 3600);
    expect(value).toBeLessThan(31 * 3600);

    const config = testConfig({
      ALERT_EMAIL: "dba@example.org",
      SMTP_URL: smtp.url,
      BACKUP_MIN_FREE_MB: "0",
      BACKUP_DIR: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-future-")), "b"),
    });
    await checkBackups({ config, pool: db.pool, logger, mailer }, db.url);
    const subjects = smtp.messages.map((m) => m.subject);
    expect(subjects).toContain(`[pmt-worker] 1 backup row of ${db.name} dated in the future`);
    expect(subjects).toContain(`[pmt-worker] no successful backup of ${db.name} for 30 hours`);
    const future = smtp.messages.find((m) => m.subject?.includes("dated in the future"))!;
    expect(future.text).toMatch(/clock was ahead/);
    recordFault({
      scenario: "backup ages",
      fault: "a succeeded backup row dated 10 days ahead (clock ahead), the real last one 30 h old",
      outcome: "ages 30 h in backup_status and the metric (never negative), stale alert mailed, future-dated alert mailed",
      lost: 0,
    });
  });
});
