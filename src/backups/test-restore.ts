/**
 * The weekly proof that backups restore: the newest successful backup of a
 * database is restored into a scratch database, its tables and row counts
 * compared with those recorded in the dump's own snapshot, the scratch
 * database dropped, and the result recorded on the backup row.
 */
import crypto from "node:crypto";
import pg from "pg";
import type { Config } from "../config.js";
import { clientConfig, openClient } from "../db/pool.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import { redactText } from "../redact.js";
import { readIdentityFile } from "../io/age.js";
import { lastSucceeded, recordTestRestore, type BackupRow } from "./catalog.js";
import { restoreBackup } from "./restore.js";
import { backupTargets } from "./target.js";

export interface TestRestoreResult {
  backup: BackupRow;
  ok: boolean;
  seconds: number;
  problems: string[];
}

export function compareCounts(expected: Record<string, number>, actual: Record<string, number>): string[] {
  const problems: string[] = [];
  for (const [table, n] of Object.entries(expected)) {
    if (!(table in actual)) problems.push(`table ${table} is missing`);
    else if (actual[table] !== n) problems.push(`table ${table} has ${actual[table]} rows, ${n} were dumped`);
  }
  for (const table of Object.keys(actual)) if (!(table in expected)) problems.push(`table ${table} was not in the dump's snapshot`);
  return problems;
}

/** An encrypted file's identities: given (--identity-file), else BACKUP_IDENTITY_FILE's, read now (never kept). */
async function identitiesFor(config: Config, backup: BackupRow, options: { identities?: string[] }): Promise<string[] | undefined> {
  if (!backup.local_path?.endsWith(".age") || options.identities) return options.identities;
  if (!config.offsite.identityFile) return undefined;
  return readIdentityFile(config.offsite.identityFile, "BACKUP_IDENTITY_FILE");
}

export async function testRestore(
  config: Config,
  pool: pg.Pool,
  databaseUrl: string,
  database: string,
  logger: Logger,
  options: { identities?: string[] } = {},
): Promise<TestRestoreResult | undefined> {
  const backup = await lastSucceeded(pool, database);
  if (!backup) {
    logger.warn({ database }, "test restore: no successful backup to restore");
    return undefined;
  }
  // Backup ids are per catalog: several served databases may test-restore their backup 1 at the same moment.
  const scratch = `pmt_restore_test_${backup.id}_${Date.now().toString(36)}_${crypto.randomBytes(3).toString("hex")}`;
  let problems: string[] = [];
  let seconds = 0;
  try {
    const restored = await restoreBackup(config, pool, databaseUrl, backup.id, scratch, undefined, {
      identities: await identitiesFor(config, backup, options),
    });
    seconds = restored.seconds;
    problems = compareCounts(backup.table_counts ?? {}, restored.tables);
  } catch (error) {
    problems = [redactText(errorMessage(error))];
  } finally {
    const target = backupTargets(databaseUrl, config.backup).find((t) => t.database === database);
    const admin = new URL(target?.url ?? databaseUrl);
    admin.pathname = "/postgres";
    const client = openClient(clientConfig(admin.toString()));
    await client
      .connect()
      .then(
        () => client.query(`drop database if exists ${pg.escapeIdentifier(scratch)} with (force)`),
        () => undefined,
      )
      .catch((e) => logger.error({ scratch, err: errorMessage(e) }, "could not drop the scratch database"));
    await client.end().catch(() => {});
  }
  const ok = problems.length === 0;
  await recordTestRestore(pool, backup.id, { ok, seconds, error: ok ? null : problems.join("; ") });
  (ok ? logger.info.bind(logger) : logger.error.bind(logger))(
    { database, backup: backup.id, seconds, problems },
    ok ? "test restore passed" : "test restore FAILED",
  );
  return { backup, ok, seconds, problems };
}
