/** Job history older than HISTORY_RETENTION_DAYS, and the export limit keys nobody used lately, deleted on HISTORY_PRUNE_CRON. */
import { z } from "zod";
import { pruneLimitKeys } from "../exports/limits.js";
import { pruneHistory } from "../history/runs.js";
import { duty } from "./context.js";

export const historyPruneDuty = duty({
  task: "pmt_jobs.history_prune",
  maintenance: true,
  // Cron-fired: no payload (anything given is ignored).
  payload: z.unknown(),
  cron: (config) => [
    {
      match: config.historyPruneCron,
      identifier: "history_prune",
      options: { backfillPeriod: 24 * 3600 * 1000, maxAttempts: 3, jobKey: "history_prune", jobKeyMode: "replace" },
    },
  ],
  body: (ctx) => async () => {
    const deleted = await pruneHistory(ctx.db, ctx.config.historyRetentionDays);
    const limitKeys = await pruneLimitKeys(ctx.pool);
    ctx.logger.info({ deleted, limitKeys, retentionDays: ctx.config.historyRetentionDays }, "job history pruned");
  },
});
