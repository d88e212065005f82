/**
 * Everything the worker does, one file each. worker/ registers these tasks
 * and their cron entries by looping over this list (in this order: the
 * crontab's order).
 */
import { alertsCheckDuty } from "./alerts-check.js";
import { backupDuty } from "./backup.js";
import type { RegisteredDuty } from "./context.js";
import { exportDuty } from "./export.js";
import { historyPruneDuty } from "./history-prune.js";
import { noopDuty } from "./noop.js";
import { offsiteSyncDuty } from "./offsite-sync.js";
import { offsiteUploadDuty } from "./offsite-upload.js";
import { spoolPruneDuty } from "./spool-prune.js";
import { testRestoreDuty } from "./test-restore.js";

export type { CronScope, Duty, JobContext, RegisteredDuty } from "./context.js";

/** Every duty, by the name the code uses for it. */
export const DUTIES = {
  alertsCheck: alertsCheckDuty,
  offsiteSync: offsiteSyncDuty,
  testRestore: testRestoreDuty,
  backup: backupDuty,
  historyPrune: historyPruneDuty,
  spoolPrune: spoolPruneDuty,
  export: exportDuty,
  offsiteUpload: offsiteUploadDuty,
  noop: noopDuty,
} as const satisfies Record<string, RegisteredDuty>;

export const JOBS: readonly RegisteredDuty[] = Object.values(DUTIES);
