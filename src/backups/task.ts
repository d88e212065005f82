/**
 * The backup job: one pg_dump of one database, its offsite copy (streamed, or
 * an upload job of its own), the shrink check, then retention. A backup that
 * fails for good alerts the operator.
 */
import type { JobHelpers, Task } from "graphile-worker";
import type pg from "pg";
import { z } from "zod";
import { checkShrink, raiseAlert } from "../alerts/alerts.js";
import type { Config } from "../config.js";
import { PermanentJobError, errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import type { Mailer } from "../mail/transport.js";
import { confirmStreamedCopy, copyKey, serverId, storeOf, type OffsiteDeps } from "../offsite/copies.js";
import { Measure, measuringTap } from "../io/measure.js";
import { etagMatches, PART_SIZE } from "../offsite/md5.js";
import { applyRetention } from "../retention/apply.js";
import type { BackupFormat } from "./catalog.js";
import { runBackup, type BackupResult } from "./run.js";
import { backupTargets, type BackupTarget } from "./target.js";

const payloadSchema = z.object({
  database: z.string().min(1),
  format: z.enum(["custom", "tar", "directory"]).optional(),
});

export interface BackupTaskDeps {
  config: Config;
  pool: pg.Pool;
  logger: Logger;
  databaseUrl: string;
  mailer: Mailer;
}

/**
 * The dump, streamed to the offsite store as it is written when OFFSITE_STREAM
 * is on. `copied` says whether that streamed copy was read back and recorded;
 * if not (and OFFSITE_URL is set) the caller still owes the backup its upload.
 */
export async function backupWithStreamedCopy(
  deps: Omit<BackupTaskDeps, "mailer"> & { onProgress?: (bytes: number) => void },
  target: BackupTarget,
  options: { format?: BackupFormat; jobId?: number },
): Promise<{ backup: BackupResult; copied: boolean }> {
  const stream = Boolean(deps.config.offsite.url && deps.config.offsite.stream);
  const offsite: OffsiteDeps = stream ? { ...deps, store: storeOf(deps) } : deps;
  // MD5s of exactly the bytes streamed, to compare with the store's ETag.
  let streamed: { md5: Measure; done: Promise<{ etag?: string }> } | undefined;
  const backup = await runBackup(
    {
      ...deps,
      tee: stream
        ? (name) => {
            const store = offsite.store!;
            const md5 = new Measure({ sha256: false, md5PartSize: PART_SIZE });
            const pass = measuringTap(md5);
            const key = copyKey(store, serverId(deps.config, deps.databaseUrl), { database: target.database, file: name });
            streamed = { md5, done: store.putStream(key, pass) };
            return { stream: pass, done: streamed.done };
          }
        : undefined,
    },
    target,
    options,
  );
  if (!backup.streamed || !streamed) return { backup, copied: false };
  const { etag } = await streamed.done.catch(() => ({ etag: undefined }));
  const proven = streamed.md5.bytes === Number(backup.bytes) && etagMatches(etag, streamed.md5.md5());
  return { backup, copied: await confirmStreamedCopy(offsite, backup, proven, etag) };
}

/** The dump, then its offsite copy: confirmed if it was streamed, else queued as an upload job. */
async function backupAndCopy(deps: BackupTaskDeps, target: BackupTarget, format: BackupFormat | undefined, helpers: JobHelpers): Promise<void> {
  const { backup, copied } = await backupWithStreamedCopy(deps, target, { format, jobId: Number(helpers.job.id) });
  if (deps.config.offsite.url && !copied) {
    // In its own job: a store that is down retries without redoing the dump.
    await helpers.addJob("pmt_jobs.offsite_upload", { backupId: backup.id }, { queueName: "offsite", jobKey: `offsite:${backup.id}`, maxAttempts: 12 });
  }
}

export function backupTask(deps: BackupTaskDeps): Task {
  return async (payload, helpers) => {
    const parsed = payloadSchema.safeParse(payload);
    if (!parsed.success) throw new PermanentJobError(`backup job payload: expected {"database": "<name>", "format"?: "custom|tar|directory"}`);
    const target = backupTargets(deps.databaseUrl, deps.config.backup).find((t) => t.database === parsed.data.database);
    if (!target) throw new PermanentJobError(`database ${parsed.data.database} is not in BACKUP_DATABASES`);
    try {
      await backupAndCopy(deps, target, parsed.data.format, helpers);
    } catch (error) {
      if (error instanceof PermanentJobError || helpers.job.attempts >= helpers.job.max_attempts) {
        await raiseAlert(
          deps,
          `backup_failed:${target.database}`,
          `backup of ${target.database} failed for good`,
          `The backup of ${target.database} failed on its last attempt (${helpers.job.attempts} of ${helpers.job.max_attempts}): ${errorMessage(error)}`,
        );
      }
      throw error;
    }
    await checkShrink(deps, target.database);
    await applyRetention(deps.config, deps.pool, deps.logger, target.database);
  };
}
