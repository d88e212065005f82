/**
 * Applies the GFS policy to one database's catalog: tags the kept backups
 * with their tiers (catalog and manifest), deletes the files of the others
 * (dump, globals file, manifest) and marks them `pruned`. Runs only after a successful backup. Files in
 * BACKUP_DIR that the catalog does not know are reported, never deleted.
 */
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import { knownFiles, markPruned, setTiers, succeededOf, type BackupRow } from "../backups/catalog.js";
import { removePath } from "../backups/files.js";
import { globalsPath } from "../backups/globals.js";
import { manifestPath, readManifest, writeManifest } from "../backups/manifest.js";
import type { Config } from "../config.js";
import { isBackupOf } from "../backups/run.js";
import { errorMessage } from "../errors.js";
import { freeBytes } from "../io/space.js";
import { createLogger, type Logger } from "../log.js";
import { planRetention, type Tier } from "./policy.js";

export interface RetentionResult {
  database: string;
  /** Kept backups with the tiers that keep them, or why they are held outside the tiers. */
  keep: { backup: BackupRow; tiers: Tier[]; held?: "final" | "offsite pending" }[];
  prune: BackupRow[];
  /** Backups pruned although their offsite copy is not done, because BACKUP_DIR is nearly full. */
  pruneWithoutCopy: BackupRow[];
  unknownFiles: string[];
  /** Applied with `only`: backups this plan would prune that were not among those confirmed, left as they are. */
  deferred: BackupRow[];
}

/**
 * The GFS plan for one database, with the rails: a retired database's final
 * backup is outside the tiers and always kept; with an offsite store, a
 * backup whose copy is not done right now (proven against the store's
 * listing at this moment, or pruned by remote retention) is kept unless
 * BACKUP_DIR is below BACKUP_MIN_FREE_MB. `recordLost`: mark copies found
 * lost as failed (applying; a plan only reports).
 */
export async function planDatabase(
  config: Config,
  pool: pg.Pool,
  database: string,
  now = new Date(),
  options: { logger?: Logger; recordLost?: boolean } = {},
): Promise<RetentionResult> {
  const rows = await succeededOf(pool, database);
  const finals = rows.filter((r) => r.final);
  const regular = rows.filter((r) => !r.final);
  const plan = planRetention(
    regular.map((r) => ({ id: r.id, at: r.started_at })),
    now,
    config.retention,
  );
  const keep: RetentionResult["keep"] = [
    ...regular.filter((r) => plan.keep.has(r.id)).map((r) => ({ backup: r, tiers: plan.keep.get(r.id)! })),
    ...finals.map((backup) => ({ backup, tiers: [] as Tier[], held: "final" as const })),
  ];
  let prune = regular.filter((r) => plan.prune.includes(r.id));
  let pruneWithoutCopy: BackupRow[] = [];
  if (config.offsite.url && prune.length) {
    // Imported only here: the offsite modules load the AWS SDK.
    const { offsiteDoneNow } = await import("../offsite/copies.js");
    const logger = options.logger ?? createLogger("silent");
    const done = await offsiteDoneNow(
      { config, pool, logger },
      prune.map((b) => b.id),
      options.recordLost ?? false,
    );
    const pending = new Set(prune.filter((b) => !done.has(b.id)).map((b) => b.id));
    const waiting = prune.filter((b) => pending.has(b.id));
    const lowSpace = fs.existsSync(config.backup.dir) && freeBytes(config.backup.dir) < config.offsite.minFreeBytes;
    if (lowSpace) pruneWithoutCopy = waiting;
    else {
      prune = prune.filter((b) => !pending.has(b.id));
      keep.push(...waiting.map((backup) => ({ backup, tiers: [] as Tier[], held: "offsite pending" as const })));
    }
  }
  return { database, keep, prune, pruneWithoutCopy, unknownFiles: await unknownFiles(config, pool), deferred: [] };
}

/**
 * Backup-looking files in BACKUP_DIR that no catalog row (other than pruned
 * ones) names, leaving out those of databases the worker's other instances
 * back up into the same folder (their catalogs know them).
 */
export async function unknownFiles(config: Config, pool: pg.Pool): Promise<string[]> {
  if (!fs.existsSync(config.backup.dir)) return [];
  const known = await knownFiles(pool);
  const others = config.backup.others ?? [];
  return fs
    .readdirSync(config.backup.dir)
    .filter((name) => /\.(dump|tar|dir)(\.age)?$/.test(name) && !known.has(name) && !others.some((db) => isBackupOf(name, db)))
    .sort();
}

/**
 * Plans again (a backup finished or copied since a plan was shown is decided
 * on as it is now) and applies: tiers written, pruned backups deleted.
 * `only`: prune no backup outside these ids (those a person confirmed); one
 * the new plan adds is left for the next run (`deferred`), and one the
 * confirmed plan had but the new one keeps is kept.
 */
export async function applyRetention(
  config: Config,
  pool: pg.Pool,
  logger: Logger,
  database: string,
  now = new Date(),
  options: { only?: ReadonlySet<number> } = {},
): Promise<RetentionResult> {
  const planned = await planDatabase(config, pool, database, now, { logger, recordLost: true });
  const confirmed = (b: BackupRow) => !options.only || options.only.has(b.id);
  const result: RetentionResult = {
    ...planned,
    prune: planned.prune.filter(confirmed),
    pruneWithoutCopy: planned.pruneWithoutCopy.filter(confirmed),
    deferred: planned.prune.filter((b) => !confirmed(b)),
  };
  if (result.pruneWithoutCopy.length) {
    logger.error(
      { database, backups: result.pruneWithoutCopy.map((b) => b.id) },
      "ALERT: free space in BACKUP_DIR is below BACKUP_MIN_FREE_MB; pruning backups that have no offsite copy yet",
    );
  }
  for (const { backup, tiers } of result.keep) {
    if (backup.tiers.join(",") === tiers.join(",")) continue;
    await setTiers(pool, backup.id, tiers);
    const manifest = backup.local_path ? readManifest(backup.local_path) : undefined;
    if (manifest && backup.local_path) writeManifest(backup.local_path, { ...manifest, tiers });
  }
  for (const backup of result.prune) {
    try {
      if (backup.local_path) {
        removePath(backup.local_path);
        removePath(globalsPath(backup.local_path));
        removePath(manifestPath(backup.local_path));
      }
      await markPruned(pool, backup.id);
      logger.info({ database, file: backup.file, startedAt: backup.started_at }, "backup pruned by retention");
    } catch (error) {
      logger.error({ database, file: backup.file, err: errorMessage(error) }, "could not prune a backup; left in place");
    }
  }
  if (result.unknownFiles.length) {
    logger.warn(
      { dir: config.backup.dir, files: result.unknownFiles.map((f) => path.basename(f)) },
      "files in BACKUP_DIR that the catalog does not know; left alone",
    );
  }
  return result;
}
