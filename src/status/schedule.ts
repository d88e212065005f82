/**
 * What the worker's crontab runs and when each entry fires next, for
 * `pmt-worker status`. The crontab itself is built by worker/crontab.ts from
 * each duty's declaration in jobs/, whose modules load the whole worker (zod 4,
 * mail, the AWS SDK): status, which must start fast, reads the same
 * configuration here instead, and test/unit/schedule.test.ts holds the two to
 * the same entries and the same firing minutes. Times are UTC, as
 * graphile-worker's cron.
 */
// graphile-worker's own parser of one crontab expression, as config.ts validates them with.
import { createCronMatcher } from "graphile-worker/dist/cronMatcher.js";
import type { Config } from "../config.js";

/** As jobs/test-restore.ts's TEST_RESTORE_CRON_DEFAULT (the test above checks it). */
const TEST_RESTORE_DEFAULT = "0 4 * * 0";

export interface ScheduleEntry {
  /** The crontab identifier (backup:<database>, history_prune, ...). */
  identifier: string;
  task: string;
  /** The crontab expression. */
  match: string;
}

/** The crontab entries of a worker serving this configuration, in the crontab's order. */
export function scheduleOf(config: Config, backups: { database: string }[], embedded: boolean): ScheduleEntry[] {
  const testRestore = config.backup.testRestoreCron ?? (embedded ? "off" : TEST_RESTORE_DEFAULT);
  return [
    ...(backups.length ? [{ identifier: "alerts_check", task: "pmt_jobs.alerts_check", match: "*/15 * * * *" }] : []),
    ...(config.offsite.url ? [{ identifier: "offsite_sync", task: "pmt_jobs.offsite_sync", match: config.offsite.syncCron }] : []),
    ...(testRestore !== "off" && backups.length ? [{ identifier: "backup_test_restore", task: "pmt_jobs.backup_test_restore", match: testRestore }] : []),
    ...backups.map((b) => ({ identifier: `backup:${b.database}`, task: "pmt_jobs.backup", match: config.backup.cron })),
    { identifier: "history_prune", task: "pmt_jobs.history_prune", match: config.historyPruneCron },
    { identifier: "spool_prune", task: "pmt_jobs.spool_prune", match: "17 * * * *" },
  ];
}

/** Minutes searched ahead for the next firing: past four years, a 29 February falls on any weekday asked for. */
const HORIZON_MINUTES = 5 * 366 * 24 * 60;

/**
 * The first whole minute after `from` that `match` fires at (graphile-worker
 * fires at the start of a matching minute), or null if none within five years.
 * Whole days and hours that cannot match are skipped.
 */
export function nextRun(match: string, from: Date = new Date()): Date | null {
  const matches = createCronMatcher(match, "status");
  const day = new Date(Math.floor(from.getTime() / 60_000) * 60_000 + 60_000);
  const end = day.getTime() + HORIZON_MINUTES * 60_000;
  // The first day searched starts at `from`'s next minute, the others at midnight.
  let firstHour = day.getUTCHours();
  let firstMinute = day.getUTCMinutes();
  day.setUTCHours(0, 0, 0, 0);
  while (day.getTime() < end) {
    const digest = { date: day.getUTCDate(), month: day.getUTCMonth() + 1, dow: day.getUTCDay() };
    // Whole days, then hours, that cannot match are skipped with one probe of each of their minutes.
    const hourMatches = (hour: number, fromMinute = 0) => {
      for (let min = fromMinute; min < 60; min++) if (matches({ ...digest, hour, min })) return min;
      return -1;
    };
    for (let hour = firstHour; hour < 24; hour++) {
      const min = hourMatches(hour, hour === firstHour ? firstMinute : 0);
      if (min >= 0) return new Date(day.getTime() + hour * 3_600_000 + min * 60_000);
    }
    firstHour = 0;
    firstMinute = 0;
    day.setUTCDate(day.getUTCDate() + 1);
  }
  return null;
}
