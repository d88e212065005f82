/**
 * Faults: offsite copies vanish or change in the bucket, a local backup is
 * corrupted before its upload, `backup verify` finds a backup damaged.
 * Against a real S3 API server (s3rver) and a real SMTP sink for the alerts:
 * - an older copy deleted from the bucket and another overwritten with other
 *   bytes of the same size are found from the store's listing (size, ETag),
 *   local retention holds both backups meanwhile, and sync uploads them again;
 * - a flipped byte in a local file makes its upload fail before the object
 *   completes: nothing stored, the backup corrupt, an alert mailed;
 * - a failed verify makes the backup corrupt: out of the tiers, the uploads
 *   and "last good backup", with an alert.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DeleteObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBackup, type BackupRow } from "../../src/backups/catalog.js";
import { runBackup } from "../../src/backups/run.js";
import { backupTargets } from "../../src/backups/target.js";
import { verifyBackup } from "../../src/backups/verify.js";
import type { Config } from "../../src/config.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { createSmtpMailer, type Mailer } from "../../src/mail/transport.js";
import { syncOffsite } from "../../src/jobs/offsite-sync.js";
import { uploadBackup } from "../../src/offsite/copies.js";
import { hashObject, openStore } from "../../src/offsite/store.js";
import { applyRetention, planDatabase } from "../../src/retention/apply.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { recordFault } from "../harness/faults.js";
import { S3RVER_CREDENTIALS, S3Sink } from "../harness/s3.js";
import { SmtpSink } from "../harness/smtp.js";
import { testConfig } from "../harness/worker.js";

const logger = createLogger("silent");
let db: TestDatabase;
let s3: S3Sink;
let smtp: SmtpSink;
let raw: S3Client;
let mailer: Mailer;
let config: Config;

beforeAll(async () => {
  Object.assign(process.env, S3RVER_CREDENTIALS);
  db = await createTestDatabase();
  await migrate(db.pool, logger);
  await db.pool.query("create table public.sample as select g as id, md5(g::text) as v from generate_series(1, 5000) g");
  s3 = await S3Sink.start(["proof"]);
  smtp = await SmtpSink.start();
  config = testConfig({
    BACKUP_DIR: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-proof-")), "b"),
    OFFSITE_URL: "s3://proof/pmt",
    OFFSITE_SERVER_ID: "db-1",
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: "true",
    BACKUP_MIN_FREE_MB: "0",
    // Locally only the newest is kept; offsite, ten days.
    RETAIN_DAILY: "1",
    RETAIN_WEEKLY: "0",
    RETAIN_MONTHLY: "0",
    RETAIN_MIN_SUCCESSFUL: "1",
    OFFSITE_RETAIN_DAILY: "10",
    ALERT_EMAIL: "dba@example.org",
    SMTP_URL: smtp.url,
  });
  mailer = createSmtpMailer(config.smtpUrl!);
  raw = new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: "us-east-1",
    credentials: { accessKeyId: S3RVER_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: S3RVER_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
  });
});

afterAll(async () => {
  raw?.destroy();
  mailer?.close();
  await smtp?.down();
  await s3?.close();
});

const deps = () => ({ config, pool: db.pool, logger, databaseUrl: db.url, mailer });
const target = () => backupTargets(db.url, { databases: [] })[0]!;
const keyOf = (b: BackupRow) => `pmt/db-1/${db.name}/${b.file}`;
const alerts = () => smtp.messages.map((m) => m.subject ?? "");

/** A backup dated `daysAgo` days back (its own day for retention), uploaded and proven. */
async function uploadedBackup(daysAgo: number): Promise<BackupRow> {
  const backup = await runBackup({ config, pool: db.pool, logger }, target());
  await db.pool.query(
    "update pmt_jobs.backup set started_at = started_at - make_interval(days => $2), finished_at = finished_at - make_interval(days => $2) where id = $1",
    [backup.id, daysAgo],
  );
  await uploadBackup(deps(), backup);
  return (await getBackup(db.pool, backup.id))!;
}

/** Replaces the object with other bytes of the same size: only the ETag can tell. */
async function overwrite(key: string, bytes: number): Promise<void> {
  await raw.send(new PutObjectCommand({ Bucket: "proof", Key: key, Body: Buffer.alloc(bytes, 0x41) }));
}

async function copyOf(id: number) {
  return (await db.pool.query("select status, error from pmt_jobs.backup_copy where backup_id = $1", [id])).rows[0];
}

/** Flips one byte in the middle of a file. */
function flipByte(file: string): void {
  const fd = fs.openSync(file, "r+");
  try {
    const at = Math.floor(fs.fstatSync(fd).size / 2);
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

describe("offsite copies lost or changed in the bucket", () => {
  it("are found from the listing, held locally by retention, and uploaded again by sync", async () => {
    const older = await uploadedBackup(2);
    const old = await uploadedBackup(1);
    // The attack: one copy deleted, another overwritten with bytes of the same size.
    await raw.send(new DeleteObjectCommand({ Bucket: "proof", Key: keyOf(older) }));
    await overwrite(keyOf(old), Number(old.bytes));

    // The nightly backup, then local retention, which would prune both older backups.
    const newest = await runBackup({ config, pool: db.pool, logger }, target());
    await uploadBackup(deps(), newest);
    const retention = await applyRetention(config, db.pool, logger, db.name);
    expect(retention.prune.map((b) => b.id)).toEqual([]);
    expect(
      retention.keep
        .filter((k) => k.held === "offsite pending")
        .map((k) => k.backup.id)
        .sort(),
    ).toEqual([older.id, old.id].sort());
    for (const b of [older, old]) {
      expect((await getBackup(db.pool, b.id))!.status).toBe("succeeded");
      expect(fs.existsSync(b.local_path!)).toBe(true);
    }
    expect(await copyOf(older.id)).toEqual({ status: "failed", error: expect.stringMatching(/^lost: .* is missing from the store$/) });
    expect(await copyOf(old.id)).toEqual({
      status: "failed",
      error: expect.stringMatching(/^lost: .* changed in the store: ETag \w+, \w+ when it was proven$/),
    });

    const sync = await syncOffsite(deps());
    expect(sync.failed).toEqual([]);
    expect(sync.uploaded.sort()).toEqual([older.id, old.id].sort());
    const store = openStore(config.offsite.url!, config.offsite);
    for (const b of [older, old]) {
      expect(await copyOf(b.id)).toEqual({ status: "verified", error: null });
      expect((await hashObject(store, keyOf(b))).sha256).toBe(b.sha256);
    }

    // Now proven again, local retention lets them go.
    const again = await applyRetention(config, db.pool, logger, db.name);
    expect(again.prune.map((b) => b.id).sort()).toEqual([older.id, old.id].sort());
    recordFault({
      scenario: "offsite copies",
      fault: "an older copy deleted from the bucket, another overwritten (same size), then local retention",
      outcome: "found from the store's listing (size, ETag): held locally, marked failed, uploaded again by sync, then pruned",
      lost: 0,
    });
  });

  it("are found by sync itself: every known copy is checked, not only the newest", async () => {
    const kept = (await db.pool.query<BackupRow>("select * from pmt_jobs.backup where status = 'succeeded' order by started_at")).rows;
    const [newest] = kept.slice(-1);
    // Older copies whose local backups are gone are still checked: one deleted alerts, it exists nowhere now.
    const pruned = (await db.pool.query<BackupRow>("select b.* from pmt_jobs.backup b where b.status = 'pruned' order by b.started_at limit 1")).rows[0]!;
    await raw.send(new DeleteObjectCommand({ Bucket: "proof", Key: keyOf(newest!) }));
    await overwrite(keyOf(pruned), Number(pruned.bytes));

    const sync = await syncOffsite(deps());
    expect(sync.lost.map((l) => l.backup).sort()).toEqual([newest!.id, pruned.id].sort());
    expect(sync.uploaded).toEqual([newest!.id]);
    expect(sync.failed).toEqual([{ backup: pruned.id, error: expect.stringContaining("no good local file to upload again") }]);
    expect(await copyOf(newest!.id)).toEqual({ status: "verified", error: null });
    expect(await copyOf(pruned.id)).toMatchObject({ status: "failed" });
    expect(alerts()).toContain(`[pmt-worker] the offsite copy of backup ${pruned.id} of ${db.name} is lost, and its local file was pruned`);
    recordFault({
      scenario: "offsite copies",
      fault: "the newest copy deleted, a copy of a locally pruned backup overwritten, then offsite sync",
      outcome: "sync checks every copy from the listing: the newest uploaded again; the other has no local file: failed and alert mailed",
      lost: 1,
    });
  });
});

describe("a local backup corrupted before its upload", () => {
  it("is refused: nothing stored, the backup marked corrupt, an alert mailed", async () => {
    const backup = await runBackup({ config, pool: db.pool, logger }, target());
    flipByte(backup.local_path!);
    await expect(uploadBackup(deps(), backup)).rejects.toThrow(
      /refused: .* is not the backup the catalog recorded: read \d+ bytes sha256 \w+, expected \d+ bytes sha256 \w+; the backup is marked corrupt/,
    );
    const row = (await getBackup(db.pool, backup.id))!;
    expect(row).toMatchObject({ status: "corrupt", tiers: [], error: expect.stringMatching(/^corrupt: /) });
    expect(await copyOf(backup.id)).toEqual({ status: "failed", error: expect.stringMatching(/^refused: /) });
    const store = openStore(config.offsite.url!, config.offsite);
    expect(await store.head(keyOf(backup))).toBeUndefined();
    expect(alerts()).toContain(`[pmt-worker] backup ${backup.id} of ${db.name} is corrupt; not copied offsite`);
    // Nor does a later sync try again.
    expect((await syncOffsite(deps())).uploaded).not.toContain(backup.id);
    recordFault({
      scenario: "offsite upload",
      fault: "a byte of the local backup flipped before its upload",
      outcome: "upload refused before the object completed (sha256 hashed while read), backup corrupt, alert mailed, nothing stored",
      lost: 0,
    });
  });
});

describe("a failed backup verify", () => {
  it("marks the backup corrupt: out of the tiers, the uploads and last good backup; alert mailed", async () => {
    const lastGood = (await db.pool.query("select max(finished_at) as at from pmt_jobs.backup where status = 'succeeded'")).rows[0].at as Date;
    const backup = await runBackup({ config, pool: db.pool, logger }, target());
    fs.truncateSync(backup.local_path!, Number(backup.bytes) - 100);
    const result = await verifyBackup(config, db.pool, backup.id, { logger, mailer });
    expect(result.ok).toBe(false);
    expect(result.problems.join("\n")).toMatch(/size \d+ bytes, the catalog says \d+/);
    expect(await getBackup(db.pool, backup.id)).toMatchObject({ status: "corrupt", tiers: [] });
    expect(alerts()).toContain(`[pmt-worker] backup ${backup.id} of ${db.name} is corrupt`);

    const plan = await planDatabase(config, db.pool, db.name);
    expect([...plan.keep.map((k) => k.backup.id), ...plan.prune.map((b) => b.id)]).not.toContain(backup.id);
    expect((await syncOffsite(deps())).uploaded).not.toContain(backup.id);
    const status = (await db.pool.query("select last_success_at, corrupt::int from pmt_jobs.backup_status where database = $1", [db.name])).rows[0];
    expect(status.last_success_at).toEqual(lastGood);
    expect(status.corrupt).toBe(2);
    // The file stays for inspection.
    expect(fs.existsSync(backup.local_path!)).toBe(true);
    const sha = crypto.createHash("sha256").update(fs.readFileSync(backup.local_path!)).digest("hex");
    expect(sha).not.toBe(backup.sha256);
    recordFault({
      scenario: "backup verify",
      fault: "a local backup truncated, then backup verify",
      outcome: "backup corrupt: out of the tiers, uploads and last good backup (status, metric, stale alert); alert mailed; file kept",
      lost: 0,
    });
  });
});
