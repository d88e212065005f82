/**
 * "This backup's offsite copy is done" has one definition, the view
 * pmt_jobs.backup_offsite_done (sql/functions/11_backup_views.sql): a copy
 * proven (verified) or pruned by remote retention. Backups with copies in
 * every state, against a real S3 API server (s3rver); backup_status's
 * offsite_lag, the metric pmt_worker_offsite_lag_seconds, local retention's
 * "offsite pending", its low-space alert and offsite sync's uploads must name
 * the same backups and the same lag. Local retention alone also proves each
 * copy against the store at that moment: a copy changed in the store counts
 * as done for the others until a check records it lost, then for none.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../src/config.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { syncOffsite } from "../../src/jobs/offsite-sync.js";
import { objectKey, openStore, type OffsiteStore } from "../../src/offsite/store.js";
import { applyRetention, planDatabase } from "../../src/retention/apply.js";
import { createMetrics } from "../../src/worker/metrics.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { S3RVER_CREDENTIALS, S3Sink } from "../harness/s3.js";
import { testConfig } from "../harness/worker.js";

const logger = createLogger("silent");
let db: TestDatabase;
let s3: S3Sink;
let store: OffsiteStore;
let backupDir: string;
let config: Config;

/** name -> backup id */
const ids: Record<string, number> = {};

function settings(env: Record<string, string> = {}): Config {
  return testConfig({
    BACKUP_DIR: backupDir,
    OFFSITE_URL: "s3://done/pmt",
    OFFSITE_SERVER_ID: "db-1",
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: "true",
    BACKUP_MIN_FREE_MB: "0",
    // Locally the newest day's backup by the tiers; every older one is a candidate for pruning.
    RETAIN_DAILY: "1",
    RETAIN_WEEKLY: "0",
    RETAIN_MONTHLY: "0",
    RETAIN_MIN_SUCCESSFUL: "1",
    OFFSITE_RETAIN_DAILY: "30",
    ...env,
  });
}

/** A catalog row finished `days` ago, and its copy in `copy` state (the object stored for proven ones). */
async function backup(name: string, days: number, status: string, copy?: "verified" | "pruned" | "failed" | "uploading"): Promise<void> {
  const file = `${db.name}_${name}.dump`;
  const { rows } = await db.pool.query<{ id: number }>(
    `insert into pmt_jobs.backup (database, file, format, status, bytes, sha256, started_at, finished_at)
     values ($1, $2, 'custom', $3, 12, repeat('0', 64), now() - make_interval(days => $4) - interval '1 minute', now() - make_interval(days => $4))
     returning id`,
    [db.name, file, status, days],
  );
  ids[name] = rows[0]!.id;
  if (!copy) return;
  const key = objectKey(store.prefix, "db-1", db.name, file);
  let etag: string | null = null;
  if (copy === "verified") {
    await store.putText(key, crypto.createHash("sha256").update(name).digest("hex").slice(0, 12)); // 12 bytes, as recorded
    await store.putText(`${key}.json`, "{}\n");
    etag = (await store.head(key))!.etag ?? null;
  }
  await db.pool.query(
    `insert into pmt_jobs.backup_copy (backup_id, target, key, bytes, status, etag, verified_at, pruned_at)
     values ($1, $2, $3, 12, $4, $5, case when $4 in ('verified', 'pruned') then now() end, case when $4 = 'pruned' then now() end)`,
    [ids[name], store.description, key, copy, etag],
  );
}

beforeAll(async () => {
  Object.assign(process.env, S3RVER_CREDENTIALS);
  db = await createTestDatabase();
  await migrate(db.pool, logger);
  s3 = await S3Sink.start(["done"]);
  backupDir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-done-"));
  config = settings();
  store = openStore(config.offsite.url!, config.offsite);
  await backup("kept", 1, "succeeded", "verified"); // the newest: kept by the tiers
  await backup("proven", 2, "succeeded", "verified");

  await backup("failed", 4, "succeeded", "failed");
  await backup("no-copy", 5, "succeeded");
  await backup("uploading", 6, "succeeded", "uploading");
  await backup("changed", 7, "succeeded", "verified");
  // The oldest good backup: a reader that did not count a copy pruned by remote retention as done would show its lag.
  await backup("pruned-offsite", 10, "succeeded", "pruned");
  await backup("corrupt", 8, "corrupt", "verified"); // not a good backup: in nobody's count
  await backup("pruned-locally", 9, "pruned", "failed"); // no local file any more: likewise
  // Other bytes of the same size in the store: no longer the copy that was proven.
  await store.putText(objectKey(store.prefix, "db-1", db.name, `${db.name}_changed.dump`), "other bytes!");
});

afterAll(async () => {
  await s3?.close();
  if (backupDir) fs.rmSync(backupDir, { recursive: true, force: true });
});

const named = (backupIds: Iterable<number>) => [...backupIds].map((id) => Object.keys(ids).find((n) => ids[n] === id)!).sort();

/** Every reader's view of which backups wait for their copy, and the lag in seconds. */
async function readers() {
  const status = await db.pool.query<{ lag: number | null }>(
    "select extract(epoch from offsite_lag)::float8 as lag from pmt_jobs.backup_status where database = $1",
    [db.name],
  );
  const metric = await createMetrics(() => [{ database: db.name, pool: db.pool }]).registry.getSingleMetricAsString("pmt_worker_offsite_lag_seconds");
  const metricLag = Number(new RegExp(`pmt_worker_offsite_lag_seconds\\{database="${db.name}"\\} ([0-9.e+]+)`).exec(metric)?.[1]);
  const view = await db.pool.query<{ id: number }>(
    `select b.id from pmt_jobs.backup b where b.database = $1 and b.status = 'succeeded'
       and not exists (select 1 from pmt_jobs.backup_offsite_done d where d.backup_id = b.id)`,
    [db.name],
  );
  return { waiting: named(view.rows.map((r) => r.id)), statusLag: status.rows[0]!.lag, metricLag };
}

async function retentionPending(recordLost: boolean): Promise<string[]> {
  const plan = await planDatabase(config, db.pool, db.name, new Date(), { logger, recordLost });
  return named(plan.keep.filter((k) => k.held === "offsite pending").map((k) => k.backup.id));
}

const DAY = 86_400;

describe("offsite copy done, one definition", () => {
  it("backup_status, the metric and retention agree on which backups wait and for how long", async () => {
    // The catalog still holds the changed copy proven: the lag is the uploading one's, 6 days.
    const before = await readers();
    expect(before.waiting).toEqual(["failed", "no-copy", "uploading"]);
    expect(before.statusLag).toBeGreaterThanOrEqual(6 * DAY);
    expect(before.statusLag).toBeLessThan(6 * DAY + 600);
    expect(Math.abs(before.metricLag - before.statusLag!)).toBeLessThan(60);
    // Retention proves each copy against the store now: the changed one is not done.
    expect(await retentionPending(false)).toEqual(["changed", "failed", "no-copy", "uploading"]);
    expect((await readers()).waiting).toEqual(before.waiting); // a plan records nothing

    // Applying records the changed copy lost: from then on every reader agrees.
    expect(await retentionPending(true)).toEqual(["changed", "failed", "no-copy", "uploading"]);
    const after = await readers();
    expect(after.waiting).toEqual(["changed", "failed", "no-copy", "uploading"]);
    expect(after.statusLag).toBeGreaterThanOrEqual(7 * DAY);
    expect(after.statusLag).toBeLessThan(7 * DAY + 600);
    expect(Math.abs(after.metricLag - after.statusLag!)).toBeLessThan(60);
  });

  it("offsite sync uploads exactly the backups that wait, and proves the done copies it holds", async () => {
    const result = await syncOffsite({ config, pool: db.pool, logger, databaseUrl: db.url });
    // No local files here: each waiting backup's upload fails, and only those are tried.
    expect(named(result.failed.map((f) => f.backup))).toEqual(["changed", "failed", "no-copy", "uploading"]);
    expect(result.failed.every((f) => /has no local file to upload/.test(f.error))).toBe(true);
    expect(named(result.reverified)).toEqual(["corrupt", "kept", "proven"]);
    expect(result.pruned).toEqual([]);
  });

  it("the low-space alert prunes, and names, exactly the backups that wait", async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    const lowSpace = settings({ BACKUP_MIN_FREE_MB: "100000000" });
    const result = await applyRetention(lowSpace, db.pool, createLogger("info", sink), db.name);
    expect(named(result.pruneWithoutCopy.map((b) => b.id))).toEqual(["changed", "failed", "no-copy", "uploading"]);
    const alert = lines.map((l) => JSON.parse(l) as { msg: string; backups?: number[] }).find((l) => /^ALERT: free space in BACKUP_DIR/.test(l.msg));
    expect(named(alert?.backups ?? [])).toEqual(["changed", "failed", "no-copy", "uploading"]);
    // Pruned locally: no longer waiting (nor counted in the lag) for anyone.
    expect(await readers()).toMatchObject({ waiting: [], statusLag: null, metricLag: 0 });
  });
});
