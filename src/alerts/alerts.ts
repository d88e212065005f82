/**
 * Operator alerts: logged every time, mailed to ALERT_EMAIL at most once per
 * condition per ALERT_REPEAT_HOURS (the pmt_jobs.alert row decides, so
 * several workers do not mail the same alert twice).
 */
import type pg from "pg";
import type { Config } from "../config.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import { createMailer, type Mailer } from "../mail/transport.js";
import { redactText } from "../redact.js";

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
export async function raiseAlertWith(
  deps: Omit<AlertDeps, "mailer"> & { mailer?: Mailer },
  condition: string,
  subject: string,
  body: string,
): Promise<boolean> {
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
