/**
 * The weekly proof that backups restore (BACKUP_TEST_RESTORE_CRON): each
 * backed-up database's newest backup restored into a scratch database and
 * compared (backups/test-restore.ts). A failure is recorded on the backup row
 * (shown by `status`, `backup list` and `doctor`), alerts the operator, and
 * fails the job: a backup that cannot be restored must never pass unnoticed.
 */
import { z } from "zod";
import { raiseAlert } from "../alerts/alerts.js";
import { backupTargets } from "../backups/target.js";
import { testRestore } from "../backups/test-restore.js";
import { duty } from "./context.js";

export const TEST_RESTORE_CRON_DEFAULT = "0 4 * * 0";
/** The test restores' queue: the scheduled one and one asked for in the console run one after the other, never side by side. */
export const TEST_RESTORE_QUEUE = "test-restore";

export const testRestoreDuty = duty({
  task: "pmt_jobs.backup_test_restore",
  maintenance: true,
  // Cron-fired: no payload (anything given is ignored).
  payload: z.unknown(),
  cron: (config, { backups, embedded }) => {
    const match = config.backup.testRestoreCron ?? (embedded ? "off" : TEST_RESTORE_CRON_DEFAULT);
    if (match === "off" || !backups.length) return [];
    return [
      {
        match,
        identifier: "backup_test_restore",
        options: { backfillPeriod: 0, maxAttempts: 1, queueName: TEST_RESTORE_QUEUE, jobKey: "backup_test_restore", jobKeyMode: "replace" },
      },
    ];
  },
  body: (ctx) => async () => {
    const failures: string[] = [];
    for (const target of backupTargets(ctx.databaseUrl, ctx.config.backup)) {
      const result = await testRestore(ctx.config, ctx.pool, ctx.databaseUrl, target.database, ctx.logger);
      if (result && !result.ok) {
        failures.push(`${target.database} (backup ${result.backup.id}): ${result.problems.join("; ")}`);
        await raiseAlert(
          ctx,
          `test_restore_failed:${target.database}`,
          `test restore of ${target.database} failed`,
          `The scheduled test restore of ${target.database} (backup ${result.backup.id}) failed: ${result.problems.join("; ")}\n\n` +
            "Until one passes, nobody knows whether the backups can be restored. `pmt-worker doctor` says whether the worker's role may restore (CREATEDB); " +
            "`pmt-worker backup test-restore` runs one now.",
        );
      }
    }
    if (failures.length) throw new Error(`test restore failed for ${failures.join(" | ")}`);
  },
});
