/** The backup job: one pg_dump of one database, then retention for it. */
import type { Task } from "graphile-worker";
import type pg from "pg";
import { z } from "zod";
import type { Config } from "../config.js";
import { PermanentJobError } from "../errors.js";
import type { Logger } from "../log.js";
import { applyRetention } from "../retention/apply.js";
import { PassThrough } from "node:stream";
import { confirmStreamedCopy, copyKey, serverId, storeOf } from "../offsite/copies.js";
import { runBackup } from "./run.js";
import { backupTargets } from "./target.js";

const payloadSchema = z.object({
  database: z.string().min(1),
  format: z.enum(["custom", "tar", "directory"]).optional(),
});

export function backupTask(deps: { config: Config; pool: pg.Pool; logger: Logger; databaseUrl: string }): Task {
  return async (payload, helpers) => {
    const parsed = payloadSchema.safeParse(payload);
    if (!parsed.success) throw new PermanentJobError(`backup job payload: expected {"database": "<name>", "format"?: "custom|tar|directory"}`);
    const target = backupTargets(deps.databaseUrl, deps.config.backup.databases).find((t) => t.database === parsed.data.database);
    if (!target) throw new PermanentJobError(`database ${parsed.data.database} is not in BACKUP_DATABASES`);
    const offsite = { ...deps, databaseUrl: deps.databaseUrl };
    const stream = deps.config.offsite.url && deps.config.offsite.stream;
    const backup = await runBackup(
      {
        ...deps,
        tee: stream
          ? (name) => {
              const store = storeOf(offsite);
              const key = copyKey(store, serverId(deps.config, deps.databaseUrl), { database: target.database, file: name });
              const pass = new PassThrough();
              return { stream: pass, done: store.putStream(key, pass) };
            }
          : undefined,
      },
      target,
      { format: parsed.data.format, jobId: Number(helpers.job.id) },
    );
    const confirmed = backup.streamed && (await confirmStreamedCopy(offsite, backup));
    if (deps.config.offsite.url && !confirmed) {
      // Offsite right away, in its own job: a store that is down retries without redoing the dump.
      await helpers.addJob("pmt_jobs.offsite_upload", { backupId: backup.id }, { queueName: "offsite", jobKey: `offsite:${backup.id}`, maxAttempts: 12 });
    }
    await applyRetention(deps.config, deps.pool, deps.logger, target.database);
  };
}
