/**
 * Applies the GFS policy to one database's catalog: tags the kept backups
 * with their tiers (catalog and manifest), deletes the files of the others and
 * marks them `pruned`. Runs only after a successful backup. Files in
 * BACKUP_DIR that the catalog does not know are reported, never deleted.
 */
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import { markPruned, setTiers, succeededOf, type BackupRow, knownFiles } from "../backups/catalog.js";
import { removePath } from "../backups/files.js";
import { manifestPath, readManifest, writeManifest } from "../backups/manifest.js";
import type { Config } from "../config.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import { unverifiedBackups } from "../offsite/copies.js";
import { planRetention, type Tier } from "./policy.js";

export interface RetentionResult {
  database: string;
  keep: { backup: BackupRow; tiers: Tier[] }[];
  prune: BackupRow[];
  unknownFiles: string[];
}

export async function planDatabase(config: Config, pool: pg.Pool, database: string, now = new Date()): Promise<RetentionResult> {
  const rows = await succeededOf(pool, database);
  const plan = planRetention(
    rows.map((r) => ({ id: r.id, at: r.started_at })),
    now,
    config.retention,
  );
  return {
    database,
    keep: rows.filter((r) => plan.keep.has(r.id)).map((r) => ({ backup: r, tiers: plan.keep.get(r.id)! })),
    prune: rows.filter((r) => plan.prune.includes(r.id)),
    unknownFiles: await unknownFiles(config, pool),
  };
}

/** Backup-looking files in BACKUP_DIR that no catalog row (other than pruned ones) names. */
export async function unknownFiles(config: Config, pool: pg.Pool): Promise<string[]> {
  if (!fs.existsSync(config.backup.dir)) return [];
  const known = await knownFiles(pool);
  return fs
    .readdirSync(config.backup.dir)
    .filter((name) => /\.(dump|tar|dir)$/.test(name) && !known.has(name))
    .sort();
}

export async function applyRetention(config: Config, pool: pg.Pool, logger: Logger, database: string, now = new Date()): Promise<RetentionResult> {
  const result = await planDatabase(config, pool, database, now);
  // With an offsite store, a backup whose copy is not verified yet stays, unless the disk is nearly full.
  if (config.offsite.url) {
    const unverified = await unverifiedBackups(pool, database);
    const waiting = result.prune.filter((b) => unverified.has(b.id));
    if (waiting.length) {
      const stat = fs.statfsSync(config.backup.dir);
      const free = stat.bavail * stat.bsize;
      if (free < config.offsite.minFreeBytes) {
        logger.error(
          { database, freeMb: Math.round(free / 2 ** 20), backups: waiting.map((b) => b.id) },
          "ALERT: free space in BACKUP_DIR is below BACKUP_MIN_FREE_MB; pruning backups that have no offsite copy yet",
        );
      } else {
        result.prune = result.prune.filter((b) => !unverified.has(b.id));
        result.keep.push(...waiting.map((backup) => ({ backup, tiers: [] as Tier[] })));
      }
    }
  }
  // A retired database's final backup is never pruned.
  const finals = result.prune.filter((b) => b.final);
  result.prune = result.prune.filter((b) => !b.final);
  result.keep.push(...finals.map((backup) => ({ backup, tiers: [] as Tier[] })));
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
