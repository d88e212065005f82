/**
 * The backup duty: the cron job of each database backed up, taking
 * backupDatabase's steps (backup-database.ts, shared with `pmt-worker backup
 * run`) with the worker's helpers and mailer.
 */
import { z } from "zod";
import { backupTargets } from "../backups/target.js";
import { PermanentJobError } from "../errors.js";
import { backupDatabase } from "./backup-database.js";
import { duty } from "./context.js";

export const backupDuty = duty({
  task: "pmt_jobs.backup",
  maintenance: true,
  payload: z.object({
    database: z.string().min(1),
    format: z.enum(["custom", "tar", "directory"]).optional(),
  }),
  invalidPayload: () => new PermanentJobError(`backup job payload: expected {"database": "<name>", "format"?: "custom|tar|directory"}`),
  // One pg_dump per database per run; a database's backups queue behind each other.
  cron: (config, { backups }) =>
    backups.map((b) => ({
      match: config.backup.cron,
      identifier: `backup:${b.database}`,
      payload: { database: b.database },
      options: {
        backfillPeriod: 6 * 3600 * 1000,
        maxAttempts: 3,
        queueName: `backup:${b.database}`,
        jobKey: `backup:${b.database}`,
        jobKeyMode: "replace" as const,
      },
    })),
  body: (ctx) => async (payload, helpers) => {
    const target = backupTargets(ctx.databaseUrl, ctx.config.backup).find((t) => t.database === payload.database);
    if (!target) throw new PermanentJobError(`database ${payload.database} is not in BACKUP_DATABASES`);
    await backupDatabase(ctx, target, { format: payload.format, job: { helpers, mailer: ctx.mailer } });
  },
});
