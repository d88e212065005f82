/**
 * Offsite copies against a real S3 API server in-process (s3rver): upload in
 * several parts confirmed by the store's MD5 checksum or by reading back, refusal, reconcile after an outage,
 * remote retention, retire, listing without a database, restore from the store.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup } from "../../src/backups/run.js";
import { backupTargets } from "../../src/backups/target.js";
import type { Config } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { syncOffsite } from "../../src/jobs/offsite-sync.js";
import { uploadBackup } from "../../src/offsite/copies.js";
import { restoreFromOffsite } from "../../src/offsite/restore.js";
import { openStore } from "../../src/offsite/store.js";
import { applyRetention } from "../../src/retention/apply.js";
import { runCli } from "../harness/cli.js";
import type { TestDatabase } from "../harness/db.js";
import { S3RVER_CREDENTIALS, S3Sink, bigDatabaseAndStore } from "../harness/s3.js";
import { testConfig } from "../harness/worker.js";

const logger = createLogger("silent");
let db: TestDatabase;
let s3: S3Sink;
let config: Config;
let env: Record<string, string>;

beforeAll(async () => {
  ({ db, s3 } = await bigDatabaseAndStore());
  env = {
    BACKUP_DIR: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-offsite-")), "b"),
    OFFSITE_URL: "s3://pmt-backups/pmt",
    OFFSITE_SERVER_ID: "db-1",
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: "true",
    BACKUP_MIN_FREE_MB: "0",
  };
  config = testConfig(env);
});

afterAll(async () => {
  await s3?.close();
});

const deps = () => ({ config, pool: db.pool, logger, databaseUrl: db.url });
const target = () => backupTargets(db.url, { databases: [] })[0]!;

describe("offsite copies", () => {
  it.each([
    ["checksum", "the store's MD5 checksum"],
    ["read-back", "reading it back"],
  ])("uploads a backup larger than three parts and confirms it (OFFSITE_VERIFY=%s) by %s", async (verify) => {
    const backup = await runBackup({ config, pool: db.pool, logger }, target(), { format: "tar" });
    expect(Number(backup.bytes)).toBeGreaterThan(15 * 2 ** 20);
    const key = await uploadBackup({ ...deps(), config: testConfig({ ...env, OFFSITE_VERIFY: verify }) }, backup);
    expect(key).toBe(`pmt/db-1/${db.name}/${backup.file}`);
    const copy = (await db.pool.query("select status, bytes, sha256, verified_at, verified_by from pmt_jobs.backup_copy where backup_id = $1", [backup.id]))
      .rows[0];
    expect(copy).toMatchObject({ status: "verified", sha256: backup.sha256, verified_by: verify });
    // Independently: the stored object is byte for byte the backup.
    const store = openStore(config.offsite.url!, config.offsite);
    const hash = crypto.createHash("sha256");
    for await (const chunk of await store.read(key)) hash.update(chunk);
    expect(hash.digest("hex")).toBe(backup.sha256);
    expect((await store.head(`${key}.json`))!.bytes).toBeGreaterThan(0);
    const status = (await db.pool.query("select offsite_lag from pmt_jobs.backup_status where database = $1", [db.name])).rows[0];
    expect(status).toEqual({ offsite_lag: null });
  });

  it("refuses a multipart upload of a file that is not the catalog's: the parts are aborted, nothing is stored", async () => {
    const backup = await runBackup({ config, pool: db.pool, logger }, target(), { format: "tar" });
    // The flipped byte is in the last part: the first parts are already in the store when it is read.
    const fd = fs.openSync(backup.local_path!, "r+");
    fs.writeSync(fd, Buffer.from("X"), 0, 1, Number(backup.bytes) - 10);
    fs.closeSync(fd);
    await expect(uploadBackup(deps(), backup)).rejects.toThrow(/is not the backup the catalog recorded/);
    const store = openStore(config.offsite.url!, config.offsite);
    expect(await store.head(`pmt/db-1/${db.name}/${backup.file}`)).toBeUndefined();
    expect((await db.pool.query("select status from pmt_jobs.backup where id = $1", [backup.id])).rows[0].status).toBe("corrupt");
  });

  it("reports refused credentials clearly", async () => {
    const backup = await runBackup({ config, pool: db.pool, logger }, target());
    const saved = process.env.AWS_ACCESS_KEY_ID;
    process.env.AWS_ACCESS_KEY_ID = "NOT-A-KEY";
    try {
      await expect(uploadBackup(deps(), backup)).rejects.toThrow(/the store refused the credentials \(InvalidAccessKeyId\): check AWS_ACCESS_KEY_ID/);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved;
    }
    const copy = (await db.pool.query("select status, error from pmt_jobs.backup_copy where backup_id = $1", [backup.id])).rows[0];
    expect(copy.status).toBe("failed");
    expect(copy.error).not.toContain("NOT-A-KEY");
  });

  it("keeps backups without a copy while the store is down, and catches up by sync when it is back", async () => {
    await s3.down();
    const strict = testConfig({ ...env, RETAIN_DAILY: "1", RETAIN_WEEKLY: "0", RETAIN_MONTHLY: "0", RETAIN_MIN_SUCCESSFUL: "1" });
    const backup = await runBackup({ config: strict, pool: db.pool, logger }, target());
    await expect(uploadBackup({ ...deps(), config: strict }, backup)).rejects.toThrow(/could not be reached|ECONNREFUSED/);
    // Local retention would keep only the newest, but nothing without a verified copy goes.
    const retention = await applyRetention(strict, db.pool, logger, db.name);
    const kept = retention.keep.map((k) => k.backup.id);
    expect(kept).toContain(backup.id);
    const lag = (await db.pool.query("select offsite_lag from pmt_jobs.backup_status where database = $1", [db.name])).rows[0].offsite_lag;
    expect(lag).not.toBeNull();

    await s3.up();
    const result = await syncOffsite({ ...deps(), config: strict });
    expect(result.failed).toEqual([]);
    expect(result.uploaded).toContain(backup.id);
    // A copy uploaded by this sync was read back already: not read a second time.
    expect(result.reverified.filter((id) => result.uploaded.includes(id))).toEqual([]);
    // Every backup now has its copy (verified, or already pruned by remote retention with the same strict numbers).
    const missing = await db.pool.query(
      "select b.id from pmt_jobs.backup b where status = 'succeeded' and not exists (select 1 from pmt_jobs.backup_copy c where c.backup_id = b.id and c.status in ('verified', 'pruned'))",
    );
    expect(missing.rows).toEqual([]);
    // A second sync has nothing to upload and proves the copies left after remote retention from the listing.
    const again = await syncOffsite({ ...deps(), config: strict });
    expect(again.uploaded).toEqual([]);
    expect(again.reverified).toHaveLength(1);
  });

  it("lists the store from its manifests alone, without a database", async () => {
    const result = await runCli(["offsite", "list", "--json"], {
      ...env,
      ...S3RVER_CREDENTIALS,
      PMT_HOME: fs.mkdtempSync(path.join(os.tmpdir(), "pmt-nodb-")),
    });
    expect(result.code, result.stderr).toBe(0);
    const entries = result.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(entries.length).toBeGreaterThanOrEqual(1);
    expect(entries[0]).toMatchObject({ database: db.name, key: expect.stringMatching(new RegExp(`^pmt/db-1/${db.name}/`)) });
  });

  it("restores from the store into a new database with the same row counts", async () => {
    const [entry] = (await runCli(["offsite", "list", "--json"], { ...env, ...S3RVER_CREDENTIALS, PMT_HOME: os.tmpdir() })).stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const store = openStore(config.offsite.url!, config.offsite);
    const restored = await restoreFromOffsite(config, store, db.url, entry.key, `${db.name}_off`);
    expect(restored.tables["public.big"]).toBe(300000);
    expect(restored.tables).toMatchObject(Object.fromEntries(Object.entries(entry.table_counts).filter(([t]) => t === "public.big")));
    await db.pool.query(`drop database ${db.name}_off with (force)`);
  });

  it("applies remote retention over months of copies and never prunes a retired database's final copy", async () => {
    const store = openStore(config.offsite.url!, config.offsite);
    // Ninety days of copies of another database, one a day, locally long gone.
    const ids: number[] = [];
    for (let day = 0; day < 90; day++) {
      const started = new Date(Date.UTC(2026, 5, 1) + day * 86_400_000);
      const file = `hist_${day}.dump`;
      const key = `pmt/db-1/hist/${file}`;
      await store.putText(key, `copy ${day}`);
      const sha = crypto.createHash("sha256").update(`copy ${day}`).digest("hex");
      await store.putText(`${key}.json`, JSON.stringify({ kind: "pmt-worker backup", database: "hist", file, started_at: started.toISOString() }));
      const { rows } = await db.pool.query<{ id: number }>(
        `insert into pmt_jobs.backup (database, file, format, status, started_at, finished_at, final)
         values ('hist', $1, 'custom', 'pruned', $2, $2, $3) returning id`,
        [file, started, day === 3],
      );
      await db.pool.query("insert into pmt_jobs.backup_copy (backup_id, target, key, status, verified_at, sha256) values ($1, $2, $3, 'verified', now(), $4)", [
        rows[0]!.id,
        store.description,
        key,
        sha,
      ]);
      ids.push(rows[0]!.id);
    }
    const remote = testConfig({
      ...env,
      OFFSITE_RETAIN_DAILY: "7",
      OFFSITE_RETAIN_WEEKLY: "2",
      OFFSITE_RETAIN_MONTHLY: "3",
      WEEKLY_DAY: "1",
      MONTHLY_DAY: "1",
    });
    const result = await syncOffsite({ ...deps(), config: remote }, new Date(Date.UTC(2026, 7, 29, 12)));
    const left = await db.pool.query<{ n: number }>(
      "select count(*)::int as n from pmt_jobs.backup_copy c join pmt_jobs.backup b on b.id = c.backup_id where b.database = 'hist' and c.status = 'verified'",
    );
    // 7 dailies (Aug 23-29), the newest of 2 weeks (overlapping the dailies), 3 months (Jun 30, Jul 31, Aug 29): 7 + 2 = 9, plus the final.
    const keptKeys = (
      await db.pool.query(
        "select c.key from pmt_jobs.backup_copy c join pmt_jobs.backup b on b.id = c.backup_id where b.database = 'hist' and c.status = 'verified' order by b.started_at",
      )
    ).rows.map((r) => r.key);
    expect(keptKeys, keptKeys.join(" ")).toHaveLength(10);
    expect(left.rows[0]!.n).toBe(10);
    expect(result.pruned).toHaveLength(80);
    // Listed before retention deleted them: the pruned copies' objects are not taken for unknown ones.
    expect(result.unknownObjects.filter((k) => k.startsWith("pmt/db-1/hist/"))).toEqual([]);
    expect(result.pruned).not.toContain("pmt/db-1/hist/hist_3.dump");
    expect(await store.head("pmt/db-1/hist/hist_3.dump")).toBeDefined();
    expect(await store.head("pmt/db-1/hist/hist_10.dump")).toBeUndefined();
    expect(await store.head("pmt/db-1/hist/hist_10.dump.json")).toBeUndefined();
  });
});

describe("pmt-worker database retire", () => {
  it("takes a final backup, copies it offsite, and neither retention ever prunes it", async () => {
    const cliEnv = {
      ...env,
      ...S3RVER_CREDENTIALS,
      DATABASE_URL: db.url,
      RETAIN_DAILY: "1",
      RETAIN_WEEKLY: "0",
      RETAIN_MONTHLY: "0",
      RETAIN_MIN_SUCCESSFUL: "1",
    };
    const retire = await runCli(["database", "retire", db.name], cliEnv);
    expect(retire.code, retire.stderr).toBe(0);
    const id = Number(/final backup (\d+)/.exec(retire.stdout)![1]);
    expect(retire.stdout).toContain(`offsite pmt/db-1/${db.name}/`);
    // Newer backups and both retentions later: the final one stays, here and in the store.
    expect((await runCli(["backup", "run"], cliEnv)).code).toBe(0);
    expect((await runCli(["offsite", "sync"], cliEnv)).code).toBe(0);
    const row = (await db.pool.query("select status, final from pmt_jobs.backup where id = $1", [id])).rows[0];
    expect(row).toEqual({ status: "succeeded", final: true });
    const copy = (await db.pool.query("select status from pmt_jobs.backup_copy where backup_id = $1", [id])).rows[0];
    expect(copy.status).toBe("verified");
    const plan = JSON.parse((await runCli(["retention", "plan", "--json", "--database", db.name], cliEnv)).stdout);
    expect(plan.keep).toContainEqual(expect.objectContaining({ id, held: "final" }));
  });
});

describe("pmt-worker backup run with OFFSITE_URL", () => {
  it.each([
    ["uploads", "false", "checksum"],
    ["streams", "true", "checksum"],
    ["streams", "true", "read-back"],
  ])("%s the copy (OFFSITE_STREAM=%s) and proves it intact by %s before saying so", async (_name, stream, verify) => {
    const cliEnv = { ...env, ...S3RVER_CREDENTIALS, DATABASE_URL: db.url, OFFSITE_STREAM: stream, OFFSITE_VERIFY: verify, LOG_LEVEL: "debug" };
    const run = await runCli(["backup", "run"], cliEnv);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/backup \d+ succeeded, .*, offsite copy verified\n$/);
    const id = Number(/backup (\d+) succeeded/.exec(run.stdout)![1]);
    const copy = (
      await db.pool.query(
        "select c.status, c.verified_by, c.sha256 = b.sha256 as same from pmt_jobs.backup_copy c join pmt_jobs.backup b on b.id = c.backup_id where c.backup_id = $1",
        [id],
      )
    ).rows;
    expect(copy).toEqual([{ status: "verified", verified_by: verify, same: true }]);
    // Whichever way it was proven, the object is the backup byte for byte.
    const b = (await db.pool.query("select b.sha256, c.key from pmt_jobs.backup b join pmt_jobs.backup_copy c on c.backup_id = b.id where b.id = $1", [id]))
      .rows[0];
    const hash = crypto.createHash("sha256");
    for await (const chunk of await openStore(config.offsite.url!, config.offsite).read(b.key)) hash.update(chunk);
    expect(hash.digest("hex")).toBe(b.sha256);
    // Streamed and confirmed, or (not streaming) uploaded after: never both.
    expect(run.stderr.includes("offsite copy verified")).toBe(stream === "false");
  });

  it("says when the store is unreachable and exits 1, keeping the local backup", async () => {
    const run = await runCli(["backup", "run"], { ...env, ...S3RVER_CREDENTIALS, DATABASE_URL: db.url, S3_ENDPOINT: "http://127.0.0.1:1" });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/offsite copy of backup \d+ .* failed: the store could not be reached \(ECONNREFUSED\) \(pmt-worker offsite sync retries it\)/);
    expect(run.stdout).toMatch(/backup \d+ succeeded/);
  });
});

/** Queues a backup job for the test database and waits for it to succeed; its job id. */
async function backupJobSucceeds(log: import("../harness/events.js").JobEventLog): Promise<number> {
  const { rows } = await db.pool.query<{ id: number }>("select id from graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text))", [
    db.name,
  ]);
  const jobId = Number(rows[0]!.id);
  await log.waitFor((e) => e.job_id === jobId && e.status === "succeeded", 60_000, "the backup job");
  return jobId;
}

describe("through the worker", () => {
  it.each([
    ["after the backup", "false"],
    ["streamed while the backup is written (OFFSITE_STREAM)", "true"],
  ])("copies each backup offsite %s, proven intact", async (_name, stream) => {
    const { startTestWorker } = await import("../harness/worker.js");
    const { JobEventLog } = await import("../harness/events.js");
    const log = await JobEventLog.listen(db.url);
    const worker = await startTestWorker(db.url, { env: { ...env, OFFSITE_STREAM: stream, BACKUP_FORMAT: "tar" } });
    try {
      const jobId = await backupJobSucceeds(log);
      const backup = (await db.pool.query("select id, sha256 from pmt_jobs.backup where job_id = $1", [jobId])).rows[0];
      if (stream === "false") {
        await log.waitFor(
          (e) => e.task === "pmt_jobs.offsite_upload" && e.status === "succeeded" && e.started_at > new Date(0).toISOString(),
          60_000,
          "the upload job",
        );
      }
      const { until } = await import("../harness/wait.js");
      const copy = await until(
        async () => {
          const r = (await db.pool.query("select status, sha256, key from pmt_jobs.backup_copy where backup_id = $1", [backup.id])).rows[0];
          return r?.status === "verified" ? r : undefined;
        },
        "the copy to be verified",
        60_000,
      );
      expect(copy.sha256).toBe(backup.sha256);
      const uploads = await db.pool.query("select count(*)::int as n from graphile_worker.jobs where key = $1", [`offsite:${backup.id}`]);
      // Streamed and confirmed: no separate upload job was needed.
      if (stream === "true") expect(uploads.rows[0].n).toBe(0);
    } finally {
      await worker.stop();
      await log.close();
    }
  });
});

describe("when the store is down while streaming", () => {
  it("still succeeds locally and leaves the copy to a retried upload job", async () => {
    const { startTestWorker } = await import("../harness/worker.js");
    const { JobEventLog } = await import("../harness/events.js");
    await s3.down();
    const log = await JobEventLog.listen(db.url);
    const worker = await startTestWorker(db.url, { env: { ...env, OFFSITE_STREAM: "true" } });
    try {
      const jobId = await backupJobSucceeds(log);
      const backup = (await db.pool.query("select id, status from pmt_jobs.backup where job_id = $1", [jobId])).rows[0];
      expect(backup.status).toBe("succeeded");
      await log.waitFor((e) => e.task === "pmt_jobs.offsite_upload" && e.status === "failed", 60_000, "the upload job to fail while the store is down");
      const upload = (await db.pool.query("select attempts, max_attempts from graphile_worker.jobs where key = $1", [`offsite:${backup.id}`])).rows[0];
      expect(upload.attempts).toBeGreaterThanOrEqual(1);
      expect(upload.max_attempts).toBe(12);
    } finally {
      await worker.stop();
      await log.close();
      await s3.up();
    }
  });
});

describe("a folder as the store (file://)", () => {
  it("holds verified copies and manifests, and lists them", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-store-"));
    const folder = testConfig({ ...env, OFFSITE_URL: `file://${dir}` });
    const backup = await runBackup({ config: folder, pool: db.pool, logger }, target());
    const key = await uploadBackup({ ...deps(), config: folder }, backup);
    expect(fs.statSync(path.join(dir, key)).size).toBe(Number(backup.bytes));
    // A folder has no checksum of its own to vouch for the copy: it is read back.
    const copy = (await db.pool.query("select status, verified_by from pmt_jobs.backup_copy where backup_id = $1", [backup.id])).rows[0];
    expect(copy).toEqual({ status: "verified", verified_by: "read-back" });
    expect(fs.existsSync(path.join(dir, `${key}.json`))).toBe(true);
    const { listOffsite } = await import("../../src/offsite/restore.js");
    const entries = await listOffsite(openStore(folder.offsite.url!, folder.offsite), db.name);
    expect(entries.map((e) => e.key)).toContain(key);
  });
});
