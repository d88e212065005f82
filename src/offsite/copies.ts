/**
 * Offsite copies of backups: upload (streamed, multipart on S3) from bytes
 * hashed as they are read and refused unless they are the catalog's sha256,
 * confirmed by the store's checksum or by reading the object back, recorded
 * in pmt_jobs.backup_copy with the store's ETag; every sync proves every
 * known copy from the store's listing (size and ETag, no download) and
 * uploads lost or changed ones again (remote GFS retention is in
 * retention/remote.ts, the sync's steps in jobs/offsite-sync.ts); objects
 * the catalog does not know are reported, never deleted.
 *
 * "Done" (pmt_jobs.backup_offsite_done): a copy is proven (verified) or remote
 * retention pruned it on purpose. Local retention prunes nothing else, and
 * only after proving the copy against the store at that moment.
 */
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import { raiseAlertWith } from "../alerts/alerts.js";
import { getBackup, markCorrupt, type BackupRow } from "../backups/catalog.js";
import { directoryDigest, LocalFileMismatch } from "../backups/files.js";
import { readManifest, type Manifest } from "../backups/manifest.js";
import type { Measured } from "../io/measure.js";
import type { Config } from "../config.js";
import { PermanentJobError, errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import type { Mailer } from "../mail/transport.js";
import { redactText } from "../redact.js";
import { hashObject, objectKey, openStore, type OffsiteStore, type StoredObject } from "./store.js";

export interface OffsiteDeps {
  config: Config;
  pool: pg.Pool;
  logger: Logger;
  /** The queue database's URL: its host is the default server id. */
  databaseUrl: string;
  store?: OffsiteStore;
  /** For alerts; without one (a CLI command) a mailer is made from the configuration when an alert is mailed. */
  mailer?: Mailer;
}

export function storeOf(deps: Pick<OffsiteDeps, "config" | "store">): OffsiteStore {
  if (deps.store) return deps.store;
  if (!deps.config.offsite.url) throw new PermanentJobError("OFFSITE_URL is not set: there is no offsite store");
  return openStore(deps.config.offsite.url, deps.config.offsite);
}

export function serverId(config: Config, databaseUrl: string): string {
  return config.offsite.serverId ?? (new URL(databaseUrl).hostname || "localhost");
}

/** `<prefix>/<server id>/<database>/<file>`, and `.age` when the copy is encrypted (an age file, as age's own tools name them). */
export function copyKey(store: OffsiteStore, server: string, backup: { database: string; file: string | null }, encrypted = false): string {
  return objectKey(store.prefix, server, backup.database, backup.file ?? "") + (encrypted ? ".age" : "");
}

/** The copy's roles and database-level settings (backups/globals.ts): `<file>.globals.json`, `.age` when encrypted. */
export function globalsKey(key: string): string {
  return key.endsWith(".age") ? `${key.slice(0, -4)}.globals.json.age` : `${key}.globals.json`;
}

/** The copy whose object `key` is one of (the dump, a directory dump's file, its manifest or its globals), given the copies' keys. */
export function ownerOf(key: string, copies: Set<string>): string | undefined {
  const globals = /^(.*)\.globals\.json(\.age)?$/.exec(key);
  const candidates = [key, key.replace(/\.json$/, ""), ...(globals ? [globals[1]!, `${globals[1]}.age`] : [])];
  const direct = candidates.find((k) => copies.has(k));
  if (direct) return direct;
  return [...copies].find((k) => key.startsWith(`${k}/`));
}

/** What the store holds when it is not the backup's own bytes: an encrypted copy. */
interface Encrypted {
  recipients: string[];
  stored: Measured;
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

async function recordVerified(
  pool: pg.Pool,
  store: OffsiteStore,
  backup: BackupRow,
  key: string,
  verifiedBy: "checksum" | "read-back",
  etag: string | undefined,
  encrypted?: Encrypted,
): Promise<void> {
  await recordCopy(pool, backup.id, store.description, key, {
    status: "verified",
    verified_by: verifiedBy,
    bytes: backup.bytes,
    sha256: backup.sha256,
    stored_bytes: encrypted?.stored.bytes ?? null,
    stored_sha256: encrypted?.stored.sha256 ?? null,
    encrypted_to: encrypted?.recipients ?? null,
    etag: etag ?? null,
    uploaded_at: new Date(),
    verified_at: new Date(),
    error: null,
  });
}

/** ETags compare without quotes, weak marker or case. */
function normalEtag(etag: string | undefined | null): string | undefined {
  return etag?.replace(/^W\//, "").replace(/"/g, "").toLowerCase() || undefined;
}

/** A directory-format copy's fingerprint: one "name etag" line per file, sorted. */
function directoryFingerprint(key: string, objects: StoredObject[]): string {
  return objects
    .map((o) => `${o.key.slice(key.length + 1)} ${normalEtag(o.etag) ?? ""}`)
    .sort()
    .join("\n");
}

interface UploadPart {
  key: string;
  file: string;
  sha256: string;
  bytes: number;
}

/**
 * What to upload for a backup, each part with the size and sha256 it must
 * have. A directory-format dump's files are checked against its manifest,
 * and the manifest's list against the catalog's sha256.
 */
function uploadParts(backup: BackupRow, key: string): UploadPart[] {
  const file = backup.local_path!;
  if (backup.format !== "directory") return [{ key, file, sha256: backup.sha256!, bytes: Number(backup.bytes) }];
  const files = readManifest(file)?.files;
  if (!files)
    throw new LocalFileMismatch(
      `${file}.json`,
      { bytes: 0, sha256: "(no manifest listing the files)" },
      { bytes: Number(backup.bytes), sha256: backup.sha256! },
    );
  const listed = directoryDigest(files);
  if (listed.sha256 !== backup.sha256) throw new LocalFileMismatch(`${file}.json`, listed, { bytes: Number(backup.bytes), sha256: backup.sha256! });
  return files.map((f) => ({ key: `${key}/${f.name}`, file: path.join(file, f.name), sha256: f.sha256, bytes: f.bytes }));
}

/**
 * The local file is not the backup the catalog recorded: the backup is
 * marked corrupt (out of the tiers, never uploaded, not the last good
 * backup) and the operator alerted. Nothing was uploaded.
 */
async function refuseCorrupt(deps: OffsiteDeps, backup: BackupRow, mismatch: LocalFileMismatch): Promise<PermanentJobError> {
  const reason = `corrupt: ${mismatch.message}`;
  await markCorrupt(deps.pool, backup.id, reason);
  await raiseAlertWith(
    deps,
    `backup_corrupt:${backup.id}`,
    `backup ${backup.id} of ${backup.database} is corrupt; not copied offsite`,
    `The offsite upload of backup ${backup.id} (${backup.database}, ${backup.started_at.toISOString()}) was refused: ${mismatch.message}. ` +
      `The backup is marked corrupt: retention keeps it out of the tiers, it is not uploaded, and it no longer counts as the last good backup. Its file is left in place for inspection.`,
  );
  return new PermanentJobError(`offsite copy of backup ${backup.id} refused: ${mismatch.message}; the backup is marked corrupt`, { cause: mismatch });
}

/**
 * The manifest as the store keeps it, beside the copy: where the copy is and,
 * for an encrypted one, to whom and what the store holds. An encrypted copy's
 * manifest leaves out the table names and row counts (they are the
 * database's); the dump's size and sha256 stay (they prove the plaintext
 * after decryption).
 */
function storedManifest(
  manifest: Manifest,
  key: string,
  encrypted: Encrypted | undefined,
  globals: (NonNullable<Manifest["globals"]> & { key: string; stored: Measured }) | undefined,
) {
  const { table_counts, encryption: _local, ...rest } = manifest;
  return {
    ...(encrypted ? rest : { ...rest, table_counts }),
    offsite_key: key,
    ...(encrypted ? { encryption: { format: "age", recipients: encrypted.recipients, bytes: encrypted.stored.bytes, sha256: encrypted.stored.sha256 } } : {}),
    ...(globals ? { globals } : {}),
  };
}

/** One object put and proven: by the store's checksum, else read back and compared with what was sent. True if read back. */
async function putProven(deps: OffsiteDeps, store: OffsiteStore, part: UploadPart, encryptTo: string[] | undefined) {
  const put = await store.put(part.key, part.file, part, { encryptTo });
  if (put.confirmed && deps.config.offsite.verify === "checksum") return { ...put, readBack: false };
  const back = await hashObject(store, part.key);
  if (back.sha256 !== put.stored.sha256 || back.bytes !== put.stored.bytes) {
    throw new Error(`the copy of ${part.key} read back as ${back.bytes} bytes sha256 ${back.sha256}, expected ${put.stored.bytes} bytes ${put.stored.sha256}`);
  }
  return { ...put, readBack: true };
}

/** The backup's globals file (roles, settings) beside its copy, encrypted like the dump; undefined when it has none (older backups). */
async function putGlobals(
  deps: OffsiteDeps,
  store: OffsiteStore,
  backup: BackupRow,
  manifest: Manifest | undefined,
  key: string,
  encryptTo: string[] | undefined,
) {
  const globals = manifest?.globals;
  if (!globals) return undefined;
  const file = path.join(path.dirname(backup.local_path!), globals.file);
  const part = { key: globalsKey(key), file, bytes: globals.bytes, sha256: globals.sha256 };
  const put = await putProven(deps, store, part, encryptTo);
  return { ...globals, key: part.key, stored: put.stored };
}

/** Uploads one backup (its dump, globals and manifest; encrypted to BACKUP_ENCRYPT_TO when set), proves the copy, records it. */
export async function uploadBackup(deps: OffsiteDeps, backup: BackupRow): Promise<string> {
  const store = storeOf(deps);
  if (!backup.local_path || !backup.file) throw new PermanentJobError(`backup ${backup.id} has no local file to upload`);
  if (!fs.existsSync(backup.local_path)) throw new PermanentJobError(`backup ${backup.id}'s file ${backup.local_path} is missing: nothing to upload`);
  const manifest = readManifest(backup.local_path);
  // A backup encrypted on the local disk (BACKUP_ENCRYPT_LOCAL, `<file>.age`) goes as it is; any other is encrypted on its way when asked.
  const sealed = manifest?.encryption;
  const encryptTo = sealed ? undefined : deps.config.offsite.encryptTo;
  const key = copyKey(store, serverId(deps.config, deps.databaseUrl), backup, !!encryptTo);
  await recordCopy(deps.pool, backup.id, store.description, key, { status: "uploading", error: null });
  try {
    const parts = uploadParts(backup, key);
    let readBack = false;
    const stored: StoredObject[] = [];
    const storedParts: { name: string; bytes: number; sha256: string }[] = [];
    const putDump = async () => {
      for (const part of parts) {
        const put = await putProven(deps, store, part, encryptTo);
        readBack ||= put.readBack;
        stored.push({ key: part.key, bytes: put.stored.bytes, etag: put.etag });
        storedParts.push({ name: part.key, ...put.stored });
      }
    };
    // The globals go beside the dump at the same time (a store far away costs a round trip per
    // request); the manifest, which names both, only once both are proven. Both settle before
    // the copy is judged, the dump's failure first (a corrupt dump is the one to report).
    const [dumped, globalsPut] = await Promise.allSettled([putDump(), putGlobals(deps, store, backup, manifest, key, encryptTo ?? sealed?.recipients)]);
    if (dumped.status === "rejected") throw dumped.reason;
    if (globalsPut.status === "rejected") throw globalsPut.reason;
    const globals = globalsPut.value;
    const encrypted = encryptTo
      ? { recipients: encryptTo, stored: backup.format === "directory" ? directoryDigest(storedParts) : storedParts[0]! }
      : sealed && { recipients: sealed.recipients, stored: storedParts[0]! };
    if (manifest) await store.putText(`${key}.json`, JSON.stringify(storedManifest(manifest, key, encrypted, globals), null, 2) + "\n");
    const verifiedBy = readBack ? "read-back" : "checksum";
    const etag = backup.format === "directory" ? directoryFingerprint(key, stored) : stored[0]?.etag;
    await recordVerified(deps.pool, store, backup, key, verifiedBy, etag, encrypted);
    deps.logger.info({ backup: backup.id, key, store: store.description, verified_by: verifiedBy, encrypted: !!encrypted }, "offsite copy verified");
    return key;
  } catch (error) {
    if (error instanceof LocalFileMismatch) {
      await recordCopy(deps.pool, backup.id, store.description, key, { status: "failed", error: `refused: ${error.message}` }).catch(() => {});
      throw await refuseCorrupt(deps, backup, error);
    }
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
export async function confirmStreamedCopy(deps: OffsiteDeps, backup: BackupRow, streamed: StreamedCopy): Promise<boolean> {
  const store = storeOf(deps);
  const { key, encrypted } = streamed;
  try {
    const byChecksum = streamed.checksumMatched && deps.config.offsite.verify === "checksum";
    if (!byChecksum) {
      const back = await hashObject(store, key);
      const expected = encrypted?.stored ?? { bytes: Number(backup.bytes), sha256: backup.sha256 };
      if (back.sha256 !== expected.sha256 || back.bytes !== expected.bytes) return false;
    }
    const manifest = backup.local_path ? readManifest(backup.local_path) : undefined;
    const globals = await putGlobals(deps, store, backup, manifest, key, encrypted?.recipients);
    if (manifest) await store.putText(`${key}.json`, JSON.stringify(storedManifest(manifest, key, encrypted, globals), null, 2) + "\n");
    await recordVerified(deps.pool, store, backup, key, byChecksum ? "checksum" : "read-back", streamed.etag ?? (await store.head(key))?.etag, encrypted);
    return true;
  } catch (error) {
    deps.logger.warn({ backup: backup.id, err: describeStoreError(error) }, "the streamed copy could not be confirmed");
    return false;
  }
}

/** A copy streamed while the backup was written: its key, whether the store's ETag matched the bytes sent, and what was sent if encrypted. */
export interface StreamedCopy {
  key: string;
  checksumMatched: boolean;
  etag?: string;
  encrypted?: Encrypted;
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

/** A copy as the catalog knows it, with what its backup still has locally. */
interface KnownCopy {
  backup_id: number;
  key: string;
  bytes: number | null;
  sha256: string | null;
  etag: string | null;
  stored_bytes: number | null;
  stored_sha256: string | null;
  format: string;
  database: string;
  started_at: Date;
  backup_status: string;
}

const KNOWN_COPY = `select c.backup_id, c.key, coalesce(c.stored_bytes, c.bytes) as bytes, coalesce(c.stored_sha256, c.sha256) as sha256, c.etag, c.stored_bytes, c.stored_sha256, b.format, b.database, b.started_at, b.status as backup_status
                    from pmt_jobs.backup_copy c join pmt_jobs.backup b on b.id = c.backup_id`;

/** What one LIST of a folder of the store (and everything below it) found. */
export interface Listing {
  folder: string;
  objects: Map<string, StoredObject>;
}

/** The folder of this server's copies in the store, `<prefix>/<server id>/`: every database's folder is below it. */
export function serverFolder(deps: Pick<OffsiteDeps, "config" | "databaseUrl">, store: OffsiteStore): string {
  return objectKey(store.prefix, serverId(deps.config, deps.databaseUrl)) + "/";
}

export async function listFolder(store: OffsiteStore, folder: string): Promise<Listing> {
  return { folder, objects: new Map((await store.list(folder)).map((o) => [o.key, o])) };
}

/** The store's objects under the folders holding `keys`: those `known` covers from it, the others by one LIST per folder. */
async function listingFor(store: OffsiteStore, keys: string[], known?: Listing): Promise<Map<string, StoredObject>> {
  const folders = new Set(keys.map((k) => k.slice(0, k.lastIndexOf("/") + 1)));
  const listing = new Map<string, StoredObject>(known?.objects);
  for (const folder of folders) {
    if (known && folder.startsWith(known.folder)) continue;
    for (const o of await store.list(folder)) listing.set(o.key, o);
  }
  return listing;
}

/**
 * Whether the listing still holds the copy as it was proven: its object (a
 * directory-format copy: its files), the recorded size and ETag, and its
 * manifest. `etag` is set when the copy had none recorded (copies proven
 * before ETags were kept): the caller then proves it once by reading it back.
 */
function checkListed(copy: KnownCopy, listing: Map<string, StoredObject>): { problem?: string; etag?: string } {
  const objects =
    copy.format === "directory"
      ? [...listing.values()].filter((o) => o.key.startsWith(`${copy.key}/`))
      : [listing.get(copy.key)].filter((o): o is StoredObject => !!o);
  if (objects.length === 0) return { problem: `${copy.key} is missing from the store` };
  const bytes = objects.reduce((n, o) => n + o.bytes, 0);
  if (copy.bytes !== null && bytes !== Number(copy.bytes))
    return { problem: `${copy.key} changed in the store: ${bytes} bytes, ${copy.bytes} when it was proven` };
  const etag = copy.format === "directory" ? directoryFingerprint(copy.key, objects) : normalEtag(objects[0]!.etag);
  if (!listing.has(`${copy.key}.json`)) return { problem: `its manifest ${copy.key}.json is missing from the store` };
  if (copy.etag === null) return { etag };
  const recorded = copy.format === "directory" ? copy.etag : normalEtag(copy.etag);
  if (etag !== recorded) return { problem: `${copy.key} changed in the store: ETag ${etag ?? "none"}, ${recorded} when it was proven` };
  return {};
}

/**
 * Proves verified copies against the store's listing: a copy missing or
 * changed there is marked failed (`record`) and returned as lost; a copy with
 * no recorded ETag is read back once and its ETag recorded. The ids proven.
 */
async function proveCopies(
  deps: Pick<OffsiteDeps, "pool" | "logger">,
  store: OffsiteStore,
  copies: KnownCopy[],
  record: boolean,
  known?: Listing,
): Promise<{ proven: number[]; lost: { copy: KnownCopy; reason: string }[] }> {
  const listing = await listingFor(
    store,
    copies.map((c) => c.key),
    known,
  );
  const proven: number[] = [];
  /** The ETag to record for each proven copy that had none. */
  const etags: (string | null)[] = [];
  const lost: { copy: KnownCopy; reason: string }[] = [];
  for (const copy of copies) {
    const listed = checkListed(copy, listing);
    const etag = listed.etag;
    let problem = listed.problem;
    if (!problem && etag !== undefined && copy.format !== "directory") {
      // Proven before ETags were recorded: read back once, then the listing suffices.
      const back = await hashObject(store, copy.key);
      if (back.sha256 !== copy.sha256) problem = `${copy.key} read back as sha256 ${back.sha256}, ${copy.sha256} when it was proven`;
    }
    if (problem) {
      lost.push({ copy, reason: problem });
      if (record) {
        await deps.pool.query("update pmt_jobs.backup_copy set status = 'failed', error = $3 where backup_id = $1 and target = $2 and status = 'verified'", [
          copy.backup_id,
          store.description,
          `lost: ${problem}`,
        ]);
      }
      continue;
    }
    proven.push(copy.backup_id);
    etags.push(etag ?? null);
  }
  // One statement for all (a catalog of hundreds of copies, one round trip each, was most of a quiet night's sync).
  if (record && proven.length) {
    await deps.pool.query(
      `update pmt_jobs.backup_copy c set verified_at = now(), etag = coalesce(c.etag, p.etag)
       from unnest($2::bigint[], $3::text[]) as p(backup_id, etag)
       where c.backup_id = p.backup_id and c.target = $1 and c.status = 'verified'`,
      [store.description, proven, etags],
    );
  }
  if (lost.length)
    deps.logger.error(
      { store: store.description, lost: lost.map((l) => ({ backup: l.copy.backup_id, reason: l.reason })) },
      "offsite copies missing or changed in the store",
    );
  return { proven, lost };
}

/**
 * For local retention, just before it prunes: which of these backups have
 * their offsite copy done in the configured store right now (proven against
 * the store's listing, or pruned by remote retention). A copy found lost is
 * marked failed when `record` (not for a dry-run plan). A store that cannot
 * be reached proves nothing.
 */
export async function offsiteDoneNow(
  deps: Pick<OffsiteDeps, "config" | "pool" | "logger" | "store">,
  backupIds: number[],
  record: boolean,
): Promise<Set<number>> {
  const store = storeOf(deps);
  const { rows } = await deps.pool.query<KnownCopy & { status: string }>(
    `${KNOWN_COPY.replace("select ", "select c.status, ")}
     join pmt_jobs.backup_offsite_done d on d.backup_id = c.backup_id and d.target = c.target
     where c.target = $1 and c.backup_id = any($2::bigint[])`,
    [store.description, backupIds],
  );
  // Done in the catalog (the view): pruned by remote retention counts as it is, a proven copy only if still proven now.
  const done = new Set(rows.filter((r) => r.status !== "verified").map((r) => r.backup_id));
  try {
    const { proven } = await proveCopies(
      deps,
      store,
      rows.filter((r) => r.status === "verified"),
      record,
    );
    for (const id of proven) done.add(id);
  } catch (error) {
    deps.logger.warn(
      { store: store.description, err: redactText(describeStoreError(error)) },
      "could not list the offsite store; backups whose copy cannot be proven now are kept",
    );
  }
  return done;
}

/** A lost copy whose backup has no good local file any more: that backup now exists nowhere. */
async function alertUnrecoverable(
  deps: OffsiteDeps,
  store: OffsiteStore,
  copy: { backup_id: number; database: string; started_at: Date },
  why: string,
  reason: string,
): Promise<void> {
  await raiseAlertWith(
    deps,
    `offsite_lost:${copy.backup_id}`,
    `the offsite copy of backup ${copy.backup_id} of ${copy.database} is lost, and ${why}`,
    `offsite sync found the copy of backup ${copy.backup_id} (${copy.database}, ${copy.started_at.toISOString()}) in ${store.description} lost: ${reason}. ` +
      `It cannot be uploaded again because ${why}: this backup now exists nowhere. Newer backups are unaffected; check who can write to the bucket.`,
  );
}

/** What syncCopies did: copies proven, lost, uploaded, and the backups it could not copy. */
export interface CopiesSynced {
  uploaded: number[];
  failed: { backup: number; error: string }[];
  /** Copies found in the store's listing with their recorded size and ETag. */
  reverified: number[];
  /** Copies missing from the store or changed there (marked failed; uploaded again when the local file is good). */
  lost: { backup: number; reason: string }[];
}

/**
 * The copying half of `offsite sync`: prove every verified copy against the
 * store's listing (a lost or changed one is marked failed), upload every
 * successful backup without a done copy (those included) from its local
 * file, and alert for lost copies with no good local file.
 */
export async function syncCopies(deps: OffsiteDeps, store: OffsiteStore, listing?: Listing): Promise<CopiesSynced> {
  const { pool } = deps;
  const result: CopiesSynced = { uploaded: [], failed: [], reverified: [], lost: [] };
  const verified = await pool.query<KnownCopy>(`${KNOWN_COPY} where c.target = $1 and c.status = 'verified' order by b.started_at`, [store.description]);
  const checked = await proveCopies(deps, store, verified.rows, true, listing);
  result.reverified = checked.proven;
  result.lost = checked.lost.map((l) => ({ backup: l.copy.backup_id, reason: l.reason }));
  for (const { copy, reason } of checked.lost) {
    if (copy.backup_status !== "succeeded") {
      await alertUnrecoverable(deps, store, copy, copy.backup_status === "corrupt" ? "its local file is corrupt" : "its local file was pruned", reason);
      result.failed.push({ backup: copy.backup_id, error: `lost from the store (${reason}) and no good local file to upload again` });
    }
  }

  const missing = await pool.query<BackupRow>(
    `select b.* from pmt_jobs.backup b
     where b.status = 'succeeded'
       and not exists (select 1 from pmt_jobs.backup_offsite_done d where d.backup_id = b.id and d.target = $1)
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
        // A lost copy that cannot be uploaded again for want of a good local file (a store
        // that is down is retried by the next sync instead).
        const lostCopy = checked.lost.find((l) => l.copy.backup_id === backup.id);
        const why =
          (error as Error).cause instanceof LocalFileMismatch
            ? "its local file is corrupt"
            : !fs.existsSync(backup.local_path ?? "")
              ? "its local file is missing"
              : undefined;
        // The alert failing (its database write) must not end this lane while the others upload
        // on: said once every lane is done, by failing the job (the copy is marked lost already,
        // so no later sync would raise it again).
        if (lostCopy && why) {
          await alertUnrecoverable(deps, store, lostCopy.copy, why, lostCopy.reason).catch((alertError: unknown) =>
            unraised.push(`backup ${backup.id} (its offsite copy is lost and ${why}): ${errorMessage(alertError)}`),
          );
        }
        result.failed.push({ backup: backup.id, error: errorMessage(error) });
      }
    }
  };
  const unraised: string[] = [];
  await Promise.all(Array.from({ length: Math.min(deps.config.offsite.concurrency, queue.length) }, lane));
  if (unraised.length) throw new Error(`could not raise the alert for ${unraised.join("; ")}`);
  return result;
}

/**
 * Objects under this server's folder of the store that the catalog does not
 * know (reported, never deleted). `earlier`: the sync's listing of that
 * folder, taken before it uploaded and pruned, instead of a second LIST: what
 * it uploaded is known, and what remote retention just deleted (`pruned`, the
 * copies' keys) is left out.
 */
export async function unknownObjects(
  deps: Pick<OffsiteDeps, "config" | "pool" | "logger" | "databaseUrl">,
  store: OffsiteStore,
  earlier?: { listing: Listing; pruned: string[] },
): Promise<string[]> {
  const unknown: string[] = [];
  const server = serverId(deps.config, deps.databaseUrl);
  const known = await deps.pool.query<{ key: string }>("select key from pmt_jobs.backup_copy where target = $1 and status <> 'pruned'", [store.description]);
  const keys = new Set(known.rows.map((r) => r.key));
  const pruned = new Set(earlier?.pruned);
  // The worker's other databases have folders of their own beside ours: theirs, not unknown.
  const others = (deps.config.backup.others ?? []).map((db) => objectKey(store.prefix, server, db) + "/");
  const folder = serverFolder(deps, store);
  const objects = earlier?.listing.folder === folder ? earlier.listing.objects.values() : await store.list(folder);
  for (const object of objects) {
    if (others.some((other) => object.key.startsWith(other))) continue;
    if (!ownerOf(object.key, keys) && !(pruned.size && ownerOf(object.key, pruned))) unknown.push(object.key);
  }
  if (unknown.length) deps.logger.warn({ objects: unknown }, "objects in the offsite store that the catalog does not know; left alone");
  return unknown;
}

/** Remote retention deleted the copy on purpose: it counts as done. */
export async function markCopyPruned(pool: pg.Pool, backupId: number, target: string): Promise<void> {
  await pool.query("update pmt_jobs.backup_copy set status = 'pruned', pruned_at = now() where backup_id = $1 and target = $2", [backupId, target]);
}
