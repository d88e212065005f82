/**
 * Fault: the weekly test restore cannot run because the worker's role may not
 * create databases (the old guide's roles). It used to fail silently: no
 * alert, `doctor` all OK, `backup list` showing nothing. Now the scheduled
 * job mails an alert, and `status`, `backup list` and `doctor` show the
 * failure; once the DBA grants CREATEDB, `backup test-restore` passes and
 * doctor says so. Real PostgreSQL, pg_dump/pg_restore, worker and SMTP sink.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { runBackup } from "../../src/backups/run.js";
import { backupTargets } from "../../src/backups/target.js";
import { createPool, type Pool } from "../../src/db/pool.js";
import { migrate } from "../../src/db/migrate.js";
import { seedDemo } from "../../src/exports/demo.js";
import { createLogger } from "../../src/log.js";
import type { WorkerHandle } from "../../src/worker/runner.js";
import { runCli } from "../harness/cli.js";
import { createGroupRoles } from "../harness/db.js";
import { recordFault } from "../harness/faults.js";
import { SmtpSink } from "../harness/smtp.js";
import { until } from "../harness/wait.js";
import { startTestWorker, testConfig } from "../harness/worker.js";

const logger = createLogger("silent");
const suffix = crypto.randomBytes(4).toString("hex");
const ROLE = `pmt_worker_nocreatedb_${suffix}`;
const DB = `pmt_trfail_${suffix}`;
const home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-trfail-"));
let admin: pg.Client;
let url: string;
let pool: Pool;
let smtp: SmtpSink;
let worker: WorkerHandle | undefined;
let env: Record<string, string>;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: inject("adminUrl") });
  await admin.connect();
  await admin.query(`create role ${ROLE} login password 'worker-pw' nocreatedb`);
  await createGroupRoles(admin);
  await admin.query(`create database ${DB} owner ${ROLE}`);
  const u = new URL(inject("adminUrl"));
  Object.assign(u, { username: ROLE, password: "worker-pw", pathname: `/${DB}` });
  url = u.toString();
  pool = createPool(url);
  await migrate(pool, logger);
  await seedDemo(pool, 20);
  smtp = await SmtpSink.start();
  env = {
    DATABASE_URL: url,
    SMTP_URL: smtp.url,
    ALERT_EMAIL: "dba@example.org",
    BACKUP_DIR: path.join(home, "backups"),
    PMT_HOME: path.join(home, "home"),
    BACKUP_MIN_FREE_MB: "0",
  };
});

afterAll(async () => {
  await worker?.stop();
  await pool?.end();
  await smtp?.down();
  await admin.query(`drop database if exists ${DB} with (force)`);
  await admin.query(`drop role if exists ${ROLE}`);
  await admin.end();
  fs.rmSync(home, { recursive: true, force: true });
});

describe("a scheduled test restore that cannot run", () => {
  it("is mailed as an alert and shown by status, backup list and doctor, until the role may restore", async () => {
    const backup = await runBackup({ config: testConfig(env), pool, logger }, backupTargets(url, { databases: [] })[0]!);
    worker = await startTestWorker(url, { env });
    // The weekly cron item's job, now.
    await pool.query("select graphile_worker.add_job('pmt_jobs.backup_test_restore', '{}'::json, max_attempts => 1)");
    await smtp.waitForMessages(1, 60_000);
    const alert = smtp.messages[0]!;
    expect(alert.subject).toBe(`[pmt-worker] test restore of ${DB} failed`);
    expect(alert.text).toMatch(new RegExp(`role ${ROLE} may not create databases[^]*alter role ${ROLE} createdb`));
    await until(
      async () => (await pool.query("select 1 from pmt_jobs.job_run where task = 'pmt_jobs.backup_test_restore' and status = 'failed'")).rowCount,
      "the test restore job failed",
    );
    await worker.stop();
    worker = undefined;

    const status = await runCli(["status"], env);
    expect(status.stdout).toMatch(new RegExp(`Test restores \\(latest\\):[^]*${DB}\\s+${backup.id}\\s+\\S+\\s+FAILED: cannot create database`));
    const list = await runCli(["backup", "list"], env);
    expect(list.stdout).toMatch(new RegExp(`^${backup.id}\\s.*\\sFAILED\\s+.*test restore: cannot create database`, "m"));
    const doctor = await runCli(["doctor"], env);
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(new RegExp(`^FAIL\\s+restore ${DB}\\s+role ${ROLE} may not create databases`, "m"));
    expect(doctor.stdout).toMatch(new RegExp(`^FAIL\\s+test restore ${DB}\\s+backup ${backup.id} FAILED`, "m"));

    // The DBA's fix, then a test restore by hand: doctor is satisfied.
    await admin.query(`alter role ${ROLE} createdb`);
    const again = await runCli(["backup", "test-restore"], env);
    expect(again.stdout).toMatch(new RegExp(`${DB}: test restore of backup ${backup.id} passed`));
    expect(again.code).toBe(0);
    const fixed = await runCli(["doctor"], env);
    expect(fixed.stdout).toMatch(new RegExp(`^OK\\s+restore ${DB}\\s+role ${ROLE} may create databases`, "m"));
    expect(fixed.stdout).toMatch(new RegExp(`^OK\\s+test restore ${DB}\\s+backup ${backup.id} restored`, "m"));
    recordFault({
      scenario: "test restore",
      fault: "the scheduled test restore runs as a role without CREATEDB",
      outcome: "alert mailed; FAILED in status, backup list and doctor (which names the fix) until a test restore passes",
      lost: 0,
    });
  });
});
