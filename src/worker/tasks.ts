/**
 * The task list. Each task is a thin shell around a module that does the work;
 * every one is wrapped by withHistory in worker/runner.ts.
 */
import type { Task } from "graphile-worker";
import type pg from "pg";
import { z } from "zod";
import type { Config } from "../config.js";
import type { Db } from "../db/schema.js";
import { checkBackups } from "../alerts/alerts.js";
import { backupTask } from "../backups/task.js";
import { testRestoreTask } from "../backups/test-restore.js";
import { offsiteSyncTask, offsiteUploadTask } from "../offsite/tasks.js";
import { pruneSpool } from "../exports/spool.js";
import { pruneLimitKeys } from "../exports/limits.js";
import { exportTask } from "../exports/task.js";
import { pruneHistory } from "../history/prune.js";
import type { Logger } from "../log.js";
import type { Mailer } from "../mail/transport.js";

export interface TaskContext {
  config: Config;
  /** The queue database's URL (backups of names in BACKUP_DATABASES are on its server). */
  databaseUrl: string;
  /** The queue database's name (several share one spool). */
  database: string;
  db: Db;
  pool: pg.Pool;
  logger: Logger;
  mailer: Mailer;
}

export const TASK = {
  historyPrune: "pmt_jobs.history_prune",
  noop: "pmt_jobs.noop",
  export: "pmt_jobs.export",
  spoolPrune: "pmt_jobs.spool_prune",
  backup: "pmt_jobs.backup",
  testRestore: "pmt_jobs.backup_test_restore",
  offsiteUpload: "pmt_jobs.offsite_upload",
  offsiteSync: "pmt_jobs.offsite_sync",
  alertsCheck: "pmt_jobs.alerts_check",
} as const;

/**
 * Run by the maintenance runner, in slots of their own (MAINTENANCE_CONCURRENCY),
 * so a backup never waits behind exports; every other task (exports, noop,
 * an embedding application's) runs in WORKER_CONCURRENCY's slots.
 */
export const MAINTENANCE_TASKS: ReadonlySet<string> = new Set([
  TASK.backup,
  TASK.testRestore,
  TASK.offsiteUpload,
  TASK.offsiteSync,
  TASK.alertsCheck,
  TASK.historyPrune,
  TASK.spoolPrune,
]);

/** Spool files are kept at least this long, so an export being retried never loses its file. */
export const SPOOL_MIN_AGE_HOURS = 24;

const noopPayload = z.object({ sleepMs: z.number().int().min(0).max(3_600_000).optional() }).passthrough();

export function buildTasks(ctx: TaskContext): Record<string, Task> {
  return {
    [TASK.backup]: backupTask({ config: ctx.config, pool: ctx.pool, logger: ctx.logger, databaseUrl: ctx.databaseUrl, mailer: ctx.mailer }),
    [TASK.alertsCheck]: async () => {
      await checkBackups({ config: ctx.config, pool: ctx.pool, logger: ctx.logger, mailer: ctx.mailer }, ctx.databaseUrl);
    },
    [TASK.offsiteUpload]: offsiteUploadTask({ config: ctx.config, pool: ctx.pool, logger: ctx.logger, databaseUrl: ctx.databaseUrl, mailer: ctx.mailer }),
    [TASK.offsiteSync]: offsiteSyncTask({ config: ctx.config, pool: ctx.pool, logger: ctx.logger, databaseUrl: ctx.databaseUrl, mailer: ctx.mailer }),
    [TASK.testRestore]: testRestoreTask({ config: ctx.config, pool: ctx.pool, logger: ctx.logger, databaseUrl: ctx.databaseUrl, mailer: ctx.mailer }),
    [TASK.export]: exportTask({ config: ctx.config, pool: ctx.pool, logger: ctx.logger, mailer: ctx.mailer, database: ctx.database }),
    [TASK.spoolPrune]: async () => {
      const hours = Math.max(ctx.config.exportKeepHours, SPOOL_MIN_AGE_HOURS);
      const deleted = pruneSpool(ctx.config.pmtHome, hours);
      ctx.logger.info({ deleted, hours }, "export spool pruned");
    },
    [TASK.historyPrune]: async () => {
      const deleted = await pruneHistory(ctx.db, ctx.config.historyRetentionDays);
      const limitKeys = await pruneLimitKeys(ctx.pool);
      ctx.logger.info({ deleted, limitKeys, retentionDays: ctx.config.historyRetentionDays }, "job history pruned");
    },
    /** Does nothing (optionally waits): a probe for the queue, and the subject of the queue benchmark. */
    [TASK.noop]: async (payload, helpers) => {
      const parsed = noopPayload.safeParse(payload ?? {});
      if (!parsed.success) throw new Error(`noop payload: expected {"sleepMs": 0..3600000}`);
      const ms = parsed.data.sleepMs ?? 0;
      if (ms > 0) await new Promise((r) => setTimeout(r, ms));
      helpers.logger.debug("noop done");
    },
  };
}
