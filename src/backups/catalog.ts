/** pmt_jobs.backup, one statement per function. */
import type pg from "pg";

export type BackupFormat = "custom" | "tar" | "directory";
/** corrupt: the file no longer matches its sha256 (kept for inspection, used for nothing). */
export type BackupStatus = "running" | "succeeded" | "failed" | "pruned" | "corrupt";

export interface BackupRow {
  id: number;
  database: string;
  file: string | null;
  format: BackupFormat;
  status: BackupStatus;
  tiers: string[];
  bytes: number | null;
  sha256: string | null;
  server_version: string | null;
  pg_dump_version: string | null;
  table_counts: Record<string, number> | null;
  started_at: Date;
  finished_at: Date | null;
  error: string | null;
  local_path: string | null;
  pruned_at: Date | null;
  verified_at: Date | null;
  /** The last backup of a retired database: never pruned. */
  final: boolean;
  /** The weekly test restore's result on this backup (null: never tested). */
  restore_tested_at: Date | null;
  restore_test_ok: boolean | null;
  restore_test_error: string | null;
}

export interface TestRestoreState {
  database: string;
  backup_id: number;
  tested_at: Date;
  ok: boolean;
  error: string | null;
}

/** The latest test restore of each database (of `databases`, or all), whatever backup it tested. */
export async function lastTestRestores(pool: Pick<pg.ClientBase, "query">, databases?: string[]): Promise<TestRestoreState[]> {
  const { rows } = await pool.query<TestRestoreState>(
    `select distinct on (database) database, id as backup_id, restore_tested_at as tested_at, restore_test_ok as ok, restore_test_error as error
     from pmt_jobs.backup where restore_tested_at is not null and ($1::text[] is null or database = any($1))
     order by database, restore_tested_at desc`,
    [databases ?? null],
  );
  return rows;
}

export async function insertRunning(pool: pg.Pool, database: string, format: BackupFormat, jobId: number | null): Promise<BackupRow> {
  const { rows } = await pool.query<BackupRow>("insert into pmt_jobs.backup (database, format, job_id) values ($1, $2, $3) returning *", [
    database,
    format,
    jobId,
  ]);
  return rows[0]!;
}

/** Earlier runs of this database still `running` were interrupted (backups of one database run one at a time). */
/** Marks the database's `running` rows (but `exceptId`'s) failed: their run died. Only the holder of the database's backup lock may call this. */
export async function failInterrupted(pool: pg.Pool, database: string, exceptId?: number): Promise<number> {
  const { rowCount } = await pool.query(
    `update pmt_jobs.backup set status = 'failed', finished_at = now(),
            error = coalesce(error, 'interrupted: the worker stopped during the backup')
     where database = $1 and status = 'running' and id is distinct from $2`,
    [database, exceptId ?? null],
  );
  return rowCount ?? 0;
}

/** A test restore's outcome, on the backup it restored. */
export async function recordTestRestore(pool: pg.Pool, id: number, outcome: { ok: boolean; seconds: number; error: string | null }): Promise<void> {
  await pool.query(
    `update pmt_jobs.backup set restore_tested_at = now(), restore_test_ok = $2,
            restore_test_duration = make_interval(secs => $3), restore_test_error = $4 where id = $1`,
    [id, outcome.ok, outcome.seconds, outcome.error],
  );
}

/** `backup verify` found the file intact. */
export async function markVerified(pool: pg.Pool, id: number): Promise<void> {
  await pool.query("update pmt_jobs.backup set verified_at = now() where id = $1", [id]);
}

export interface Succeeded {
  file: string;
  localPath: string;
  bytes: number;
  sha256: string;
  serverVersion: string;
  pgDumpVersion: string;
  tableCounts: Record<string, number>;
}

export async function markSucceeded(pool: pg.Pool, id: number, s: Succeeded): Promise<BackupRow> {
  const { rows } = await pool.query<BackupRow>(
    `update pmt_jobs.backup
     set status = 'succeeded', finished_at = now(), verified_at = now(), file = $2, local_path = $3, bytes = $4,
         sha256 = $5, server_version = $6, pg_dump_version = $7, table_counts = $8
     where id = $1 returning *`,
    [id, s.file, s.localPath, s.bytes, s.sha256, s.serverVersion, s.pgDumpVersion, JSON.stringify(s.tableCounts)],
  );
  return rows[0]!;
}

export async function markFailed(pool: pg.Pool, id: number, error: string, versions?: { server?: string; pgDump?: string }): Promise<void> {
  await pool.query(
    `update pmt_jobs.backup set status = 'failed', finished_at = now(), error = $2,
            server_version = coalesce($3, server_version), pg_dump_version = coalesce($4, pg_dump_version)
     where id = $1`,
    [id, error, versions?.server ?? null, versions?.pgDump ?? null],
  );
}

export async function lastSucceeded(pool: pg.Pool, database: string): Promise<BackupRow | undefined> {
  const { rows } = await pool.query<BackupRow>("select * from pmt_jobs.backup where database = $1 and status = 'succeeded' order by started_at desc limit 1", [
    database,
  ]);
  return rows[0];
}

export async function succeededOf(pool: pg.Pool, database: string): Promise<BackupRow[]> {
  const { rows } = await pool.query<BackupRow>("select * from pmt_jobs.backup where database = $1 and status = 'succeeded' order by started_at desc", [
    database,
  ]);
  return rows;
}

export async function getBackup(pool: pg.Pool, id: number): Promise<BackupRow | undefined> {
  const { rows } = await pool.query<BackupRow>("select * from pmt_jobs.backup where id = $1", [id]);
  return rows[0];
}

export async function listBackups(pool: pg.Pool, database?: string, limit = 50): Promise<BackupRow[]> {
  const { rows } = await pool.query<BackupRow>(
    "select * from pmt_jobs.backup where ($1::text is null or database = $1) order by started_at desc, id desc limit $2",
    [database ?? null, limit],
  );
  return rows;
}

export async function setTiers(pool: pg.Pool, id: number, tiers: string[]): Promise<void> {
  await pool.query("update pmt_jobs.backup set tiers = $2 where id = $1", [id, tiers]);
}

export async function markPruned(pool: pg.Pool, id: number): Promise<void> {
  await pool.query("update pmt_jobs.backup set status = 'pruned', pruned_at = now(), tiers = '{}' where id = $1 and status = 'succeeded'", [id]);
}

export async function knownFiles(pool: pg.Pool): Promise<Set<string>> {
  const { rows } = await pool.query<{ file: string }>("select file from pmt_jobs.backup where file is not null and status <> 'pruned'");
  return new Set(rows.map((r) => r.file));
}

/**
 * The file no longer matches the catalog: out of the tiers, never uploaded,
 * never the last good backup. Only a succeeded backup becomes corrupt; true if
 * this call marked it.
 */
export async function markCorrupt(pool: pg.Pool, id: number, reason: string): Promise<boolean> {
  const { rowCount } = await pool.query("update pmt_jobs.backup set status = 'corrupt', tiers = '{}', error = $2 where id = $1 and status = 'succeeded'", [
    id,
    reason,
  ]);
  return (rowCount ?? 0) > 0;
}

/** The last backup of a retired database (`database retire`): outside the tiers, never pruned, nor its offsite copy. */
export async function markFinal(pool: pg.Pool, id: number): Promise<void> {
  await pool.query("update pmt_jobs.backup set final = true where id = $1", [id]);
}
