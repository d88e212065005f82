/**
 * The crontab, built from configuration rather than a hand-edited file.
 * Each item has a stable identifier, so graphile-worker fires it once across
 * all workers and backfills a run missed while every worker was down.
 */
import { parseCronItems, type ParsedCronItem } from "graphile-worker";
import type { Config } from "../config.js";
import { TASK } from "./tasks.js";

export const TEST_RESTORE_CRON_DEFAULT = "0 4 * * 0";

export function buildCronItems(config: Config, backups: { database: string }[] = [], options: { embedded?: boolean } = {}): ParsedCronItem[] {
  const testRestore = config.backup.testRestoreCron ?? (options.embedded ? "off" : TEST_RESTORE_CRON_DEFAULT);
  return parseCronItems([
    ...(backups.length
      ? [
          {
            // Stale backups and low disk space, every quarter hour.
            task: TASK.alertsCheck,
            match: "*/15 * * * *",
            identifier: "alerts_check",
            options: { backfillPeriod: 0, maxAttempts: 1, jobKey: "alerts_check", jobKeyMode: "replace" as const },
          },
        ]
      : []),
    ...(config.offsite.url
      ? [
          {
            task: TASK.offsiteSync,
            match: config.offsite.syncCron,
            identifier: "offsite_sync",
            options: { backfillPeriod: 6 * 3600 * 1000, maxAttempts: 3, queueName: "offsite", jobKey: "offsite_sync", jobKeyMode: "replace" as const },
          },
        ]
      : []),
    ...(testRestore !== "off" && backups.length
      ? [
          {
            task: TASK.testRestore,
            match: testRestore,
            identifier: "backup_test_restore",
            options: { backfillPeriod: 0, maxAttempts: 1, jobKey: "backup_test_restore", jobKeyMode: "replace" as const },
          },
        ]
      : []),
    // One pg_dump per database per run; a database's backups queue behind each other.
    ...backups.map((b) => ({
      task: TASK.backup,
      match: config.backup.cron,
      identifier: `backup:${b.database}`,
      payload: { database: b.database },
      options: { backfillPeriod: 6 * 3600 * 1000, maxAttempts: 3, queueName: `backup:${b.database}`, jobKey: `backup:${b.database}`, jobKeyMode: "replace" as const },
    })),
    {
      task: TASK.historyPrune,
      match: config.historyPruneCron,
      identifier: "history_prune",
      options: { backfillPeriod: 24 * 3600 * 1000, maxAttempts: 3, jobKey: "history_prune", jobKeyMode: "replace" },
    },
    {
      // Each worker host has its own spool, so this runs on whichever worker takes it;
      // files older than a day are leftovers wherever they are.
      task: TASK.spoolPrune,
      match: "17 * * * *",
      identifier: "spool_prune",
      options: { backfillPeriod: 0, maxAttempts: 1, jobKey: "spool_prune", jobKeyMode: "replace" },
    },
  ]);
}
