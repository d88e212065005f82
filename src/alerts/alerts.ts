/**
 * Operator alerts: logged every time, mailed to ALERT_EMAIL at most once per
 * condition per ALERT_REPEAT_HOURS (the pmt_jobs.alert row decides, so
 * several workers do not mail the same alert twice).
 */
import fs from "node:fs";
import type pg from "pg";
import type { Config } from "../config.js";
import { errorMessage } from "../errors.js";
import { freeBytes } from "../io/space.js";
import type { Logger } from "../log.js";
import { createMailer, type Mailer } from "../mail/transport.js";
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

const unusedMailer: Mailer = {
  target: "none",
  send: () => Promise.reject(new Error("ALERT_EMAIL is not set")),
  close: () => {},
};

/**
 * raiseAlert for callers that may have no mailer of their own (a CLI command):
 * one is made from the configuration for this alert and closed after it.
 */
export async function raiseAlertWith(deps: Omit<AlertDeps, "mailer"> & { mailer?: Mailer }, condition: string, subject: string, body: string): Promise<boolean> {
  if (deps.mailer) return raiseAlert({ ...deps, mailer: deps.mailer }, condition, subject, body);
  // Without ALERT_EMAIL nothing is mailed: no mailer (nor outbox folder) is made.
  if (!deps.config.alerts.email) return raiseAlert({ ...deps, mailer: unusedMailer }, condition, subject, body);
  const mailer = createMailer(deps.config);
  try {
    return await raiseAlert({ ...deps, mailer }, condition, subject, body);
  } finally {
    mailer.close();
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
        never
          ? `no successful backup of ${target.database} yet`
          : `no successful backup of ${target.database} for ${Math.floor(age)} hours`,
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
        `only ${Math.round(free / 2 ** 20)} MB free in ${config.backup.dir}`,
        `Free space in BACKUP_DIR (${config.backup.dir}) is below BACKUP_MIN_FREE_MB (${Math.round(config.offsite.minFreeBytes / 2 ** 20)} MB).`,
      );
    }
  }
}
