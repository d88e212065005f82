/** Stale backups, backups dated in the future and low disk space, every quarter hour, on an instance that backs something up. */
import { z } from "zod";
import { checkBackups } from "../backups/health.js";
import { duty } from "./context.js";

export const alertsCheckDuty = duty({
  task: "pmt_jobs.alerts_check",
  maintenance: true,
  // Cron-fired: no payload (anything given is ignored).
  payload: z.unknown(),
  cron: (_config, { backups }) =>
    backups.length
      ? [
          {
            match: "*/15 * * * *",
            identifier: "alerts_check",
            options: { backfillPeriod: 0, maxAttempts: 1, jobKey: "alerts_check", jobKeyMode: "replace" },
          },
        ]
      : [],
  body: (ctx) => async () => {
    await checkBackups(ctx, ctx.databaseUrl);
  },
});
