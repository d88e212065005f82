/**
 * Offsite copies of backups: upload (streamed, multipart on S3), confirm by
 * reading the object back and hashing it, record in pmt_jobs.backup_copy;
 * reconcile (offsite sync); remote GFS retention; objects the catalog does
 * not know are reported, never deleted.
 */
import path from "node:path";
import type pg from "pg";
import { getBackup, type BackupRow } from "../backups/catalog.js";
import { readManifest } from "../backups/manifest.js";
import type { Config } from "../config.js";
import { PermanentJobError, errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import { redactText } from "../redact.js";
import { planRetention } from "../retention/policy.js";
import { hashObject, objectKey, openStore, type OffsiteStore } from "./store.js";

export interface OffsiteDeps {
  config: Config;
  pool: pg.Pool;
  logger: Logger;
  /** The queue database's URL: its host is the default server id. */
  databaseUrl: string;
  store?: OffsiteStore;
}

export function storeOf(deps: OffsiteDeps): OffsiteStore {
  if (deps.store) return deps.store;
  if (!deps.config.offsite.url) throw new PermanentJobError("OFFSITE_URL is not set: there is no offsite store");
  return openStore(deps.config.offsite.url, deps.config.offsite);
}

export function serverId(config: Config, databaseUrl: string): string {
  return config.offsite.serverId ?? (new URL(databaseUrl).hostname || "localhost");
}

/** `<prefix>/<server id>/<database>/<file>` */
export function copyKey(store: OffsiteStore, server: string, backup: { database: string; file: string | null }): string {
  return objectKey(store.prefix, server, backup.database, backup.file ?? "");
}

async function recordCopy(pool: pg.Pool, backupId: number, target: string, key: string, fields: Record<string, unknown>): Promise<void> {
  const names = Object.keys(fields);
  await pool.query(
    `insert into pmt_jobs.backup_copy (backup_id, target, key${names.map((n) => `, ${n}`).join("")})
     values ($1, $2, $3${names.map((_, i) => `, $${i + 4}`).join("")})
     on conflict (backup_id, target) do update set key = excluded.key${names.map((n) => `, ${n} = excluded.${n}`).join("")}`,
    [backupId, target, key, ...Object.values(fields)],
  );
}

async function recordVerified(pool: pg.Pool, store: OffsiteStore, backup: BackupRow, key: string, verifiedBy: "checksum" | "read-back"): Promise<void> {
  await recordCopy(pool, backup.id, store.description, key, {
    status: "verified",
    verified_by: verifiedBy,
    bytes: backup.bytes,
    sha256: backup.sha256,
    uploaded_at: new Date(),
    verified_at: new Date(),
    error: null,
  });
}

/** Uploads one backup (and its manifest), reads it back, records the verified copy. */
export async function uploadBackup(deps: OffsiteDeps, backup: BackupRow): Promise<string> {
  const store = storeOf(deps);
  if (!backup.local_path || !backup.file) throw new PermanentJobError(`backup ${backup.id} has no local file to upload`);
  const key = copyKey(store, serverId(deps.config, deps.databaseUrl), backup);
  await recordCopy(deps.pool, backup.id, store.description, key, { status: "uploading", error: null });
  try {
    const manifest = readManifest(backup.local_path);
    const parts = backup.format === "directory" ? (manifest?.files ?? []).map((f) => ({ key: `${key}/${f.name}`, file: path.join(backup.local_path!, f.name), sha256: f.sha256, bytes: f.bytes })) : [{ key, file: backup.local_path, sha256: backup.sha256!, bytes: Number(backup.bytes) }];
    let readBack = false;
    for (const part of parts) {
      const { confirmed } = await store.put(part.key, part.file, part.sha256);
      if (confirmed && deps.config.offsite.verify === "checksum") continue;
      readBack = true;
      const back = await hashObject(store, part.key);
      if (back.sha256 !== part.sha256 || back.bytes !== part.bytes) {
        throw new Error(`the copy of ${part.key} read back as ${back.bytes} bytes sha256 ${back.sha256}, expected ${part.bytes} bytes ${part.sha256}`);
      }
    }
    if (manifest) await store.putText(`${key}.json`, JSON.stringify({ ...manifest, offsite_key: key }, null, 2) + "\n");
    const verifiedBy = readBack ? "read-back" : "checksum";
    await recordVerified(deps.pool, store, backup, key, verifiedBy);
    deps.logger.info({ backup: backup.id, key, store: store.description, verified_by: verifiedBy }, "offsite copy verified");
    return key;
  } catch (error) {
    const message = redactText(describeStoreError(error));
    await recordCopy(deps.pool, backup.id, store.description, key, { status: "failed", error: message }).catch(() => {});
    throw new Error(`offsite copy of backup ${backup.id} to ${store.description} failed: ${message}`, { cause: error });
  }
}

/** S3 errors say little by default: name what the store answered. */
export function describeStoreError(error: unknown): string {
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const status = e.$metadata?.httpStatusCode;
  if (status === 403 || e.name === "InvalidAccessKeyId" || e.name === "SignatureDoesNotMatch" || e.name === "AccessDenied") {
    return `the store refused the credentials (${e.name ?? "403"}): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the bucket policy`;
  }
  if (e.name === "NoSuchBucket") return `the bucket does not exist (${e.message})`;
  if (status && status >= 500) return `the store failed (${status} ${e.name ?? ""}); will retry`;
  if (e.code === "ECONNREFUSED" || e.code === "ENOTFOUND" || e.code === "ETIMEDOUT") return `the store could not be reached (${e.code})`;
  return errorMessage(error);
}

/**
 * A copy streamed while the backup was written (OFFSITE_STREAM): proven by the
 * store's MD5 ETag of exactly the streamed bytes (`checksumMatched`, the same
 * chunks the local file got), else read back and compared with the local
 * file's sha256; then recorded, manifest included.
 * False if it does not match (the caller then uploads the file normally).
 */
export async function confirmStreamedCopy(deps: OffsiteDeps, backup: BackupRow, checksumMatched = false): Promise<boolean> {
  const store = storeOf(deps);
  const key = copyKey(store, serverId(deps.config, deps.databaseUrl), backup);
  try {
    const byChecksum = checksumMatched && deps.config.offsite.verify === "checksum";
    if (!byChecksum) {
      const back = await hashObject(store, key);
      if (back.sha256 !== backup.sha256 || back.bytes !== Number(backup.bytes)) return false;
    }
    const manifest = backup.local_path ? readManifest(backup.local_path) : undefined;
    if (manifest) await store.putText(`${key}.json`, JSON.stringify({ ...manifest, offsite_key: key }, null, 2) + "\n");
    await recordVerified(deps.pool, store, backup, key, byChecksum ? "checksum" : "read-back");
    return true;
  } catch (error) {
    deps.logger.warn({ backup: backup.id, err: describeStoreError(error) }, "the streamed copy could not be confirmed");
    return false;
  }
}

export async function uploadById(deps: OffsiteDeps, backupId: number): Promise<string | undefined> {
  const backup = await getBackup(deps.pool, backupId);
  if (!backup) throw new PermanentJobError(`backup ${backupId} does not exist`);
  if (backup.status !== "succeeded") {
    deps.logger.info({ backup: backupId, status: backup.status }, "backup no longer succeeded; no offsite copy");
    return undefined;
  }
  return uploadBackup(deps, backup);
}

export interface SyncResult {
  uploaded: number[];
  failed: { backup: number; error: string }[];
  reverified: number[];
  pruned: string[];
  unknownObjects: string[];
}

/**
 * `offsite sync`: upload every successful backup without a verified copy,
 * re-read the newest copy of each database, apply remote retention, and
 * report objects under this server's folder that the catalog does not know.
 */
export async function syncOffsite(deps: OffsiteDeps, now = new Date()): Promise<SyncResult> {
  const store = storeOf(deps);
  const { pool, logger } = deps;
  const result: SyncResult = { uploaded: [], failed: [], reverified: [], pruned: [], unknownObjects: [] };

  const missing = await pool.query<BackupRow>(
    `select b.* from pmt_jobs.backup b
     where b.status = 'succeeded'
       -- a copy remote retention already pruned is done with, not missing
       and not exists (select 1 from pmt_jobs.backup_copy c where c.backup_id = b.id and c.target = $1 and c.status in ('verified', 'pruned'))
     order by b.started_at`,
    [store.description],
  );
  // OFFSITE_CONCURRENCY uploads at once, oldest first.
  const queue = [...missing.rows];
  const lane = async () => {
    for (let backup = queue.shift(); backup; backup = queue.shift()) {
      try {
        await uploadBackup({ ...deps, store }, backup);
        result.uploaded.push(backup.id);
      } catch (error) {
        result.failed.push({ backup: backup.id, error: errorMessage(error) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(deps.config.offsite.concurrency, queue.length) }, lane));

  // Re-read the newest verified copy of each database (one uploaded just now was read back already).
  const sample = await pool.query<{ backup_id: number; key: string; sha256: string; format: string }>(
    `select distinct on (b.database) c.backup_id, c.key, c.sha256, b.format
     from pmt_jobs.backup_copy c join pmt_jobs.backup b on b.id = c.backup_id
     where c.target = $1 and c.status = 'verified' order by b.database, b.started_at desc`,
    [store.description],
  );
  for (const copy of sample.rows) {
    if (copy.format === "directory" || result.uploaded.includes(copy.backup_id)) continue;
    try {
      const back = await hashObject(store, copy.key);
      if (back.sha256 !== copy.sha256) throw new Error(`sha256 ${back.sha256}, expected ${copy.sha256}`);
      await pool.query("update pmt_jobs.backup_copy set verified_at = now(), verified_by = 'read-back' where backup_id = $1 and target = $2", [copy.backup_id, store.description]);
      result.reverified.push(copy.backup_id);
    } catch (error) {
      await pool.query("update pmt_jobs.backup_copy set status = 'failed', error = $3 where backup_id = $1 and target = $2", [
        copy.backup_id,
        store.description,
        `re-verification failed: ${describeStoreError(error)}`,
      ]);
      result.failed.push({ backup: copy.backup_id, error: `re-verification failed: ${describeStoreError(error)}` });
    }
  }

  result.pruned = await applyRemoteRetention(deps, store, now);

  const server = serverId(deps.config, deps.databaseUrl);
  const known = await pool.query<{ key: string }>("select key from pmt_jobs.backup_copy where target = $1 and status <> 'pruned'", [store.description]);
  const keys = new Set(known.rows.map((r) => r.key));
  for (const object of await store.list(objectKey(store.prefix, server) + "/")) {
    const base = object.key.replace(/\.json$/, "");
    const owner = [...keys].some((k) => base === k || object.key.startsWith(`${k}/`));
    if (!owner) result.unknownObjects.push(object.key);
  }
  if (result.unknownObjects.length) logger.warn({ objects: result.unknownObjects }, "objects in the offsite store that the catalog does not know; left alone");
  if (result.failed.length) logger.error({ failed: result.failed }, "offsite sync could not copy or verify some backups");
  return result;
}

/** Remote GFS: copies kept by no offsite tier are deleted; a retired database's final copy never is. */
async function applyRemoteRetention(deps: OffsiteDeps, store: OffsiteStore, now: Date): Promise<string[]> {
  const { rows } = await deps.pool.query<{ backup_id: number; key: string; database: string; started_at: Date; final: boolean; format: string }>(
    `select c.backup_id, c.key, b.database, b.started_at, b.final, b.format
     from pmt_jobs.backup_copy c join pmt_jobs.backup b on b.id = c.backup_id
     where c.target = $1 and c.status = 'verified'`,
    [store.description],
  );
  const pruned: string[] = [];
  const byDatabase = new Map<string, typeof rows>();
  for (const r of rows) byDatabase.set(r.database, [...(byDatabase.get(r.database) ?? []), r]);
  for (const copies of byDatabase.values()) {
    const plan = planRetention(
      copies.filter((c) => !c.final).map((c) => ({ id: c.backup_id, at: c.started_at })),
      now,
      { ...deps.config.retention, ...deps.config.offsite.retain },
    );
    for (const copy of copies) {
      if (copy.final || !plan.prune.includes(copy.backup_id)) continue;
      const objects = copy.format === "directory" ? (await store.list(`${copy.key}/`)).map((o) => o.key) : [copy.key];
      for (const key of [...objects, `${copy.key}.json`]) await store.remove(key);
      await deps.pool.query("update pmt_jobs.backup_copy set status = 'pruned', pruned_at = now() where backup_id = $1 and target = $2", [
        copy.backup_id,
        store.description,
      ]);
      pruned.push(copy.key);
    }
  }
  if (pruned.length) deps.logger.info({ pruned }, "offsite copies pruned by remote retention");
  return pruned;
}
