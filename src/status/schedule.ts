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
  /** The database its jobs' payload names (a backup entry). */
  database?: string;
}

/** The crontab entries of a worker serving this configuration, in the crontab's order. */
export function scheduleOf(config: Config, backups: { database: string }[], embedded: boolean): ScheduleEntry[] {
  const testRestore = config.backup.testRestoreCron ?? (embedded ? "off" : TEST_RESTORE_DEFAULT);
  return [
    ...(backups.length ? [{ identifier: "alerts_check", task: "pmt_jobs.alerts_check", match: "*/15 * * * *" }] : []),
    ...(config.offsite.url ? [{ identifier: "offsite_sync", task: "pmt_jobs.offsite_sync", match: config.offsite.syncCron }] : []),
    ...(testRestore !== "off" && backups.length ? [{ identifier: "backup_test_restore", task: "pmt_jobs.backup_test_restore", match: testRestore }] : []),
    ...backups.map((b) => ({ identifier: `backup:${b.database}`, task: "pmt_jobs.backup", match: config.backup.cron, database: b.database })),
    { identifier: "history_prune", task: "pmt_jobs.history_prune", match: config.historyPruneCron },
    { identifier: "spool_prune", task: "pmt_jobs.spool_prune", match: "17 * * * *" },
  ];
}

/** Minutes searched ahead for the next firing: past four years, a 29 February falls on any weekday asked for. */
const HORIZON_MINUTES = 5 * 366 * 24 * 60;

const ALL_MINUTES = Array.from({ length: 60 }, (_, i) => i);
const ALL_HOURS = Array.from({ length: 24 }, (_, i) => i);

/**
 * The first whole minute after `from` that `match` fires at (graphile-worker
 * fires at the start of a matching minute), or null if none within five years.
 * Day by day: a day matches if its first candidate minute does (the minute
 * and hour fields do not depend on the day), then its hours and minutes in
 * order, from the lists graphile-worker's matcher parsed (every minute and
 * hour when an upgrade stops attaching them: slower, same answer).
 */
export function nextRun(match: string, from: Date = new Date()): Date | null {
  const matches = createCronMatcher(match, "status");
  const parsed = (matches as { parsedCronMatch?: { minutes: number[]; hours: number[] } }).parsedCronMatch;
  const minutes = parsed?.minutes ?? ALL_MINUTES;
  const hours = parsed?.hours ?? ALL_HOURS;
  const first = new Date(Math.floor(from.getTime() / 60_000) * 60_000 + 60_000);
  const day = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), first.getUTCDate()));
  const end = day.getTime() + HORIZON_MINUTES * 60_000;
  for (; day.getTime() < end; day.setUTCDate(day.getUTCDate() + 1)) {
    const digest = { date: day.getUTCDate(), month: day.getUTCMonth() + 1, dow: day.getUTCDay() };
    // With the parsed lists one probe decides; without them, any minute of the day.
    const probe = parsed ? [[hours[0]!, minutes[0]!]] : hours.flatMap((hour) => minutes.map((min) => [hour, min]));
    if (!probe.some(([hour, min]) => matches({ ...digest, hour: hour!, min: min! }))) continue;
    for (const hour of hours) {
      for (const min of minutes) {
        const at = day.getTime() + hour * 3_600_000 + min * 60_000;
        if (at >= first.getTime() && matches({ ...digest, hour, min })) return new Date(at);
      }
    }
  }
  return null;
}
