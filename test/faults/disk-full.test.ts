/**
 * Fault: BACKUP_DIR fills up during a backup (a real full filesystem: a small
 * tmpfs, which needs root; elsewhere this scenario is skipped and the
 * /dev/full test in test/backups covers the code path). The backup fails
 * cleanly, earlier backups are intact, the alert is mailed, and the next
 * backup succeeds once there is room.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { measureFile as sha256File } from "../../src/io/measure.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { recordFault, Workers } from "../harness/faults.js";
import { SmtpSink } from "../harness/smtp.js";

const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-full-"));
const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", mountPoint], { stdio: "ignore" }).status === 0;
const backupDir = path.join(mountPoint, "b");

let db: TestDatabase;
let smtp: SmtpSink;
const workers = new Workers(() => ({
  DATABASE_URL: db.url,
  BACKUP_DIR: backupDir,
  SMTP_URL: smtp.url,
  ALERT_EMAIL: "ops@example.org",
  BACKUP_MIN_FREE_MB: "0",
}));

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  await db.pool.query("create table public.sample as select g as id from generate_series(1, 100) g");
  smtp = await SmtpSink.start();
});

afterAll(async () => {
  await smtp?.down();
  if (mounted) spawnSync("umount", ["-l", mountPoint]);
});

async function backupJob(log: JobEventLog, maxAttempts: number): Promise<{ jobId: number; status: string }> {
  const { rows } = await db.pool.query(
    "select id from graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text), max_attempts := $2)",
    [db.name, maxAttempts],
  );
  const jobId = Number(rows[0].id);
  const event = await log.waitFor((e) => e.job_id === jobId && (e.status === "succeeded" || e.status === "failed"), 60_000, "the backup job to end");
  return { jobId, status: event.status };
}

describe("disk full in BACKUP_DIR", () => {
  it.skipIf(!mounted)("fails the backup cleanly, keeps earlier backups intact, alerts, and recovers when there is room", async () => {
    const worker = await workers.start();
    const log = await JobEventLog.listen(db.url);
    expect((await backupJob(log, 1)).status).toBe("succeeded");
    const earlier = (await db.pool.query("select local_path, sha256 from pmt_jobs.backup where status = 'succeeded'")).rows[0];

    // A database that no longer fits, and a disk left with 256 kB.
    await db.pool.query("create table public.big as select g as id, md5(g::text) || md5((g * 3)::text) as v from generate_series(1, 100000) g");
    const stat = fs.statfsSync(mountPoint);
    const filler = path.join(mountPoint, "filler");
    fs.writeFileSync(filler, Buffer.alloc(stat.bavail * stat.bsize - 256 * 1024));

    const failed = await backupJob(log, 1);
    expect(failed.status).toBe("failed");
    const row = (await db.pool.query("select status, file, error from pmt_jobs.backup order by id desc limit 1")).rows[0];
    expect(row.status).toBe("failed");
    expect(row.file).toBeNull();
    expect(row.error).toMatch(/^disk full writing .*\.partial \(ENOSPC\); the partial file was removed, earlier backups are untouched$/);
    expect(fs.readdirSync(backupDir).filter((f) => f.endsWith(".partial"))).toEqual([]);
    expect((await sha256File(earlier.local_path)).sha256).toBe(earlier.sha256);
    await smtp.waitForMessages(1);
    expect(smtp.messages[0]!.subject).toBe(`[pmt-worker] backup of ${db.name} failed for good`);
    expect(smtp.messages[0]!.text).toMatch(/disk full/);

    // Room again: the next backup succeeds by itself.
    fs.rmSync(filler);
    const again = await backupJob(log, 1);
    expect(again.status, (await db.pool.query("select error from pmt_jobs.backup order by id desc limit 1")).rows[0]?.error).toBe("succeeded");
    expect(await Workers.stop(worker)).toBe(0);
    await log.close();
    recordFault({
      scenario: "disk full",
      fault: "BACKUP_DIR (a 16 MB tmpfs) fills during pg_dump",
      outcome: "backup failed 'disk full', no .partial, earlier backup's sha256 intact, alert mailed; next backup ok",
      lost: 0,
    });
  });
});
