/**
 * Operator alerts: logged every time, mailed to ALERT_EMAIL at most once per
 * condition per ALERT_REPEAT_HOURS (the pmt_jobs.alert row decides, so
 * several workers do not mail the same alert twice).
 */
import fs from "node:fs";
import type pg from "pg";
import type { Config } from "../config.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import type { Mailer } from "../mail/transport.js";
import { redactText } from "../redact.js";
import { backupTargets } from "../backups/target.js";

export interface AlertDeps {
  config: Config;
  pool: pg.Pool;
  logger: Logger;
  mailer: Mailer;
}

/** Records the condition; mails it if ALERT_EMAIL is set and it was not mailed within the repeat window. True if mailed. */
export async function raiseAlert(deps: AlertDeps, condition: string, subject: string, body: string): Promise<boolean> {
  const { config, pool, logger } = deps;
  const text = redactText(body);
  logger.error({ alert: condition }, `ALERT: ${subject}`);
  const { rows } = await pool.query<{ send: boolean }>(
    `insert into pmt_jobs.alert (condition, subject, last_sent_at)
     values ($1, $2, case when $3 then now() end)
     on conflict (condition) do update
       set subject = excluded.subject, last_seen_at = now(), times_seen = pmt_jobs.alert.times_seen + 1,
           last_sent_at = case when $3 and (pmt_jobs.alert.last_sent_at is null
                                            or pmt_jobs.alert.last_sent_at < now() - make_interval(hours => $4))
                               then now() else pmt_jobs.alert.last_sent_at end
     -- mailed by this very statement: its last_sent_at is this transaction's now()
     returning (last_sent_at is not null and last_sent_at = now() and $3) as send`,
    [condition, subject, Boolean(config.alerts.email), config.alerts.repeatHours],
  );
  if (!rows[0]?.send || !config.alerts.email) return false;
  try {
    await deps.mailer.send({
      from: config.mailFrom,
      to: config.alerts.email,
      subject: `[pmt-worker] ${subject}`,
      text: `${text}\n\nCondition: ${condition}. Repeated at most every ${config.alerts.repeatHours} h while it lasts.\n`,
    });
    return true;
  } catch (error) {
    // The alert stays recorded; let the next occurrence try again.
    await pool.query("update pmt_jobs.alert set last_sent_at = null where condition = $1", [condition]);
    logger.error({ alert: condition, err: errorMessage(error) }, "could not mail the alert");
    return false;
  }
}

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

/** The periodic check: stale backups and low disk space. */
export async function checkBackups(deps: AlertDeps, databaseUrl: string): Promise<void> {
  const { config, pool } = deps;
  for (const target of backupTargets(databaseUrl, config.backup.databases)) {
    const { rows } = await pool.query<{ age_hours: number | null }>(
      "select extract(epoch from now() - max(finished_at)) / 3600 as age_hours from pmt_jobs.backup where database = $1 and status = 'succeeded'",
      [target.database],
    );
    const age = rows[0]?.age_hours;
    // A fresh install has had no chance to back up yet: "none yet" counts only once this
    // worker has run for BACKUP_MAX_AGE_HOURS.
    const never = age === null || age === undefined;
    if (never && process.uptime() / 3600 < config.alerts.maxAgeHours) continue;
    if (never || age > config.alerts.maxAgeHours) {
      await raiseAlert(
        deps,
        `backup_stale:${target.database}`,
        never
          ? `no successful backup of ${target.database} yet`
          : `no successful backup of ${target.database} for ${Math.floor(age)} hours`,
        `The newest successful backup of ${target.database} is older than BACKUP_MAX_AGE_HOURS (${config.alerts.maxAgeHours}). See pmt-worker status and pmt_jobs.backup_status.`,
      );
    }
  }
  if (fs.existsSync(config.backup.dir)) {
    const stat = fs.statfsSync(config.backup.dir);
    const free = stat.bavail * stat.bsize;
    if (free < config.offsite.minFreeBytes) {
      await raiseAlert(
        deps,
        "backup_dir_low",
        `only ${Math.round(free / 2 ** 20)} MB free in ${config.backup.dir}`,
        `Free space in BACKUP_DIR (${config.backup.dir}) is below BACKUP_MIN_FREE_MB (${Math.round(config.offsite.minFreeBytes / 2 ** 20)} MB).`,
      );
    }
  }
}
