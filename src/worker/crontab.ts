/**
 * The crontab, built from configuration rather than a hand-edited file: the
 * entries each duty in jobs/ declares. Each item has a stable identifier, so
 * graphile-worker fires it once across all workers and backfills a run missed
 * while every worker was down.
 */
import { parseCronItems, type ParsedCronItem } from "graphile-worker";
import type { Config } from "../config.js";
import { JOBS } from "../jobs/index.js";

export { TEST_RESTORE_CRON_DEFAULT } from "../jobs/test-restore.js";

export function buildCronItems(config: Config, backups: { database: string }[] = [], options: { embedded?: boolean } = {}): ParsedCronItem[] {
  return parseCronItems(
    JOBS.flatMap((job) => (job.cron?.(config, { backups, embedded: options.embedded }) ?? []).map((item) => ({ ...item, task: job.task }))),
  );
}
