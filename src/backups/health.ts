/**
 * The alerts about backups themselves: a backup much smaller than the one
 * before it, and the periodic check (stale backups, rows dated in the
 * future, low disk space in BACKUP_DIR).
 */
import fs from "node:fs";
import { raiseAlert, type AlertDeps } from "../alerts/alerts.js";
import { freeBytes } from "../io/space.js";
import { backupTargets } from "./target.js";
import { humanBytes } from "../human.js";

/** After a successful backup: much smaller than the previous one? */
export async function checkShrink(deps: AlertDeps, database: string): Promise<void> {
  const { rows } = await deps.pool.query<{ bytes: number; file: string }>(
    "select bytes, file from pmt_jobs.backup where database = $1 and status in ('succeeded', 'pruned') and bytes is not null order by started_at desc limit 2",
    [database],
  );
  const [latest, previous] = rows;
  if (!latest || !previous) return;
  if (Number(latest.bytes) * 100 < Number(previous.bytes) * deps.config.alerts.shrinkPercent) {
    await raiseAlert(
      deps,
      `backup_shrunk:${database}`,
      `backup of ${database} shrank to ${Math.round((Number(latest.bytes) * 100) / Number(previous.bytes))}% of the previous one`,
      `The newest backup of ${database} (${latest.file}, ${latest.bytes} bytes) is below ${deps.config.alerts.shrinkPercent}% of the previous one (${previous.file}, ${previous.bytes} bytes). Was data deleted, or is the dump incomplete?`,
    );
  }
}

/**
 * The periodic check: stale backups, backups dated in the future, low disk
 * space. The age is that of the newest successful backup not dated in the
 * future: a row written while the clock was ahead neither silences the stale
 * alert until that date nor shows a negative age; it raises its own alert.
 */
export async function checkBackups(deps: AlertDeps, databaseUrl: string): Promise<void> {
  const { config, pool } = deps;
  for (const target of backupTargets(databaseUrl, config.backup)) {
    const { rows } = await pool.query<{ age_hours: number | null; future: number; newest_future: Date | null }>(
      `select extract(epoch from now() - max(finished_at) filter (where status = 'succeeded' and finished_at <= now())) / 3600 as age_hours,
              count(*) filter (where started_at > now() or finished_at > now())::int as future,
              greatest(max(started_at) filter (where started_at > now()), max(finished_at) filter (where finished_at > now())) as newest_future
       from pmt_jobs.backup where database = $1`,
      [target.database],
    );
    const { age_hours: age, future, newest_future: newestFuture } = rows[0] ?? { age_hours: null, future: 0, newest_future: null };
    if (future > 0) {
      await raiseAlert(
        deps,
        `backup_future:${target.database}`,
        `${future} backup ${future === 1 ? "row" : "rows"} of ${target.database} dated in the future`,
        `${future} row(s) of pmt_jobs.backup for ${target.database} are dated after now (the latest ${newestFuture?.toISOString()}): the database server's clock was ahead when they were written. Backup ages ignore them (the last successful backup is the newest one dated before now); retention keeps them outside the tiers. Check the server's clock (NTP).`,
      );
    }
    // A fresh install has had no chance to back up yet: "none yet" counts only once this
    // worker has run for BACKUP_MAX_AGE_HOURS.
    const never = age === null || age === undefined;
    if (never && process.uptime() / 3600 < config.alerts.maxAgeHours) continue;
    if (never || age > config.alerts.maxAgeHours) {
      await raiseAlert(
        deps,
        `backup_stale:${target.database}`,
        never ? `no successful backup of ${target.database} yet` : `no successful backup of ${target.database} for ${Math.floor(age)} hours`,
        `The newest successful backup of ${target.database} is older than BACKUP_MAX_AGE_HOURS (${config.alerts.maxAgeHours}). See pmt-worker status and pmt_jobs.backup_status.`,
      );
    }
  }
  if (fs.existsSync(config.backup.dir)) {
    const free = freeBytes(config.backup.dir);
    if (free < config.offsite.minFreeBytes) {
      await raiseAlert(
        deps,
        "backup_dir_low",
        `only ${humanBytes(free)} free in ${config.backup.dir}`,
        `Free space in BACKUP_DIR (${config.backup.dir}) is below BACKUP_MIN_FREE_MB (${Math.round(config.offsite.minFreeBytes / 2 ** 20)} MB).`,
      );
    }
  }
}
