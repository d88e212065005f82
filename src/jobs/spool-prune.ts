/** Export files left in the spool past EXPORT_KEEP_HOURS (at least a day), deleted every hour. */
import { z } from "zod";
import { pruneSpool } from "../exports/spool.js";
import { duty } from "./context.js";

/** Spool files are kept at least this long, so an export being retried never loses its file. */
export const SPOOL_MIN_AGE_HOURS = 24;

export const spoolPruneDuty = duty({
  task: "pmt_jobs.spool_prune",
  maintenance: true,
  // Cron-fired: no payload (anything given is ignored).
  payload: z.unknown(),
  cron: () => [
    {
      // Each worker host has its own spool, so this runs on whichever worker takes it;
      // files older than a day are leftovers wherever they are.
      match: "17 * * * *",
      identifier: "spool_prune",
      options: { backfillPeriod: 0, maxAttempts: 1, jobKey: "spool_prune", jobKeyMode: "replace" },
    },
  ],
  body: (ctx) => async () => {
    const hours = Math.max(ctx.config.exportKeepHours, SPOOL_MIN_AGE_HOURS);
    const deleted = pruneSpool(ctx.config.pmtHome, hours);
    ctx.logger.info({ deleted, hours }, "export spool pruned");
  },
});
