/**
 * The backup's steps, as the cron job (jobs/backup.ts) and `pmt-worker backup
 * run` both take them: one pg_dump of one database (backups/), its offsite
 * copy (offsite/: streamed as it is written, else an upload of its own), the
 * shrink check, then retention (retention/); `database retire`'s final backup
 * that is never pruned (finalBackup). A backup that fails for good alerts the
 * operator. Apart from the duty so that the command loads no more than a
 * backup needs (no zod 4, no nodemailer): its fixed cost, docs/performance.md.
 */
import { pipeline } from "node:stream/promises";
import type { JobHelpers } from "graphile-worker";
import type pg from "pg";
import { markFinal, type BackupFormat, type BackupRow } from "../backups/catalog.js";
import { runBackup, type BackupResult } from "../backups/run.js";
import type { BackupTarget } from "../backups/target.js";
import type { Config } from "../config.js";
import { PermanentJobError, errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import type { Mailer } from "../mail/transport.js";
import type { OffsiteDeps } from "../offsite/copies.js";
import type { Measure } from "../io/measure.js";

/** What a backup needs: a command has no mailer of its own (nor job). */
export interface BackupContext {
  config: Config;
  pool: pg.Pool;
  logger: Logger;
  databaseUrl: string;
}

/** What became of a new backup's offsite copy. */
export type OffsiteCopy =
  | { state: "none" } // no OFFSITE_URL
  | { state: "verified" } // streamed and proven, or uploaded now and proven
  | { state: "queued" } // an upload job of its own
  | { state: "failed"; error: Error }; // uploaded now, and that failed (offsite sync retries it)

/**
 * The dump, streamed to the offsite store as it is written when OFFSITE_STREAM
 * is on. `copied` says whether that streamed copy was read back and recorded;
 * if not (and OFFSITE_URL is set) the caller still owes the backup its upload.
 */
export async function backupWithStreamedCopy(
  deps: BackupContext & { onProgress?: (bytes: number) => void },
  target: BackupTarget,
  options: { format?: BackupFormat; jobId?: number },
): Promise<{ backup: BackupResult; copied: boolean }> {
  if (!deps.config.offsite.url || !deps.config.offsite.stream) return { backup: await runBackup(deps, target, options), copied: false };
  // Imported only here: the offsite modules load the AWS SDK.
  const { confirmStreamedCopy, copyKey, serverId, storeOf } = await import("../offsite/copies.js");
  const { etagMatches, PART_SIZE } = await import("../offsite/md5.js");
  const { Measure, measuringTap } = await import("../io/measure.js");
  const offsite: OffsiteDeps = { ...deps, store: storeOf(deps) };
  // Encrypted on the local disk already (BACKUP_ENCRYPT_LOCAL): the tee gets the age file's bytes, sent as they are.
  const sealed = deps.config.offsite.encryptLocal ? deps.config.offsite.encryptTo : undefined;
  const encryptTo = sealed ? undefined : deps.config.offsite.encryptTo;
  // MD5s (and, encrypted, the sha256) of exactly the bytes streamed, to compare with the store's ETag.
  let streamed: { key: string; plain: Measure; sent: Measure; done: Promise<{ etag?: string }> } | undefined;
  const backup = await runBackup(
    {
      ...deps,
      tee: (name) => {
        const store = offsite.store!;
        const key = copyKey(store, serverId(deps.config, deps.databaseUrl), { database: target.database, file: name }, !!encryptTo);
        const sent = new Measure({ sha256: !!encryptTo, md5PartSize: PART_SIZE });
        const sentTap = measuringTap(sent);
        if (!encryptTo) {
          streamed = { key, plain: sent, sent, done: store.putStream(key, sentTap) };
          return { stream: sentTap, done: streamed.done };
        }
        // Encrypted on its way: the plaintext counted, the age file measured as it leaves.
        const plain = new Measure({ sha256: false });
        const plainTap = measuringTap(plain);
        const done = (async () => {
          const { encryptStream } = await import("../io/age.js");
          const encrypted = await encryptStream(plainTap, encryptTo);
          const [put] = await Promise.all([store.putStream(key, sentTap), pipeline(encrypted, sentTap)]);
          return put;
        })();
        streamed = { key, plain, sent, done };
        return { stream: plainTap, done };
      },
    },
    target,
    options,
  );
  if (!backup.streamed || !streamed) return { backup, copied: false };
  const { etag } = await streamed.done.catch(() => ({ etag: undefined }));
  const checksumMatched = streamed.plain.bytes === Number(backup.bytes) && etagMatches(etag, streamed.sent.md5());
  const encrypted = encryptTo
    ? { recipients: encryptTo, stored: streamed.sent.result() }
    : sealed && { recipients: sealed, stored: { bytes: Number(backup.bytes), sha256: backup.sha256! } };
  return { backup, copied: await confirmStreamedCopy(offsite, backup, { key: streamed.key, checksumMatched, etag, encrypted }) };
}

/** The copy a backup still owes after its dump: queued as a job of its own (the cron job), or uploaded now (a command waits for it). */
async function owedCopy(ctx: BackupContext, backup: BackupRow, helpers: JobHelpers | undefined): Promise<OffsiteCopy> {
  if (helpers) {
    // In its own job: a store that is down retries without redoing the dump.
    const job = (await import("./offsite-upload.js")).uploadJobSpec(backup.id);
    await helpers.addJob(job.task, job.payload, job.options);
    return { state: "queued" };
  }
  const { uploadBackup } = await import("../offsite/copies.js");
  try {
    await uploadBackup(ctx, backup);
    return { state: "verified" };
  } catch (error) {
    return { state: "failed", error: error as Error };
  }
}

/**
 * One backup of one database, as the cron job (`job`: its helpers and the
 * worker's mailer) and `backup run` both take it: the dump and its offsite
 * copy; in a job, a failure on the last attempt alerts the operator and a
 * backup much smaller than the one before alerts too; then retention.
 */
export async function backupDatabase(
  ctx: BackupContext,
  target: BackupTarget,
  options: { format?: BackupFormat; onProgress?: (bytes: number) => void; job?: { helpers: JobHelpers; mailer: Mailer } } = {},
): Promise<{ backup: BackupResult; offsite: OffsiteCopy }> {
  const { job } = options;
  // Imported when used, not with this module (part of `backup run`'s fixed cost): retention while the backup runs,
  // alerts (nodemailer), the shrink check and the upload job only in the worker or on a failure.
  const retention = import("../retention/apply.js");
  retention.catch(() => {});
  let done: { backup: BackupResult; offsite: OffsiteCopy };
  try {
    const { backup, copied } = await backupWithStreamedCopy({ ...ctx, onProgress: options.onProgress }, target, {
      format: options.format,
      jobId: job ? Number(job.helpers.job.id) : undefined,
    });
    const offsite: OffsiteCopy = !ctx.config.offsite.url ? { state: "none" } : copied ? { state: "verified" } : await owedCopy(ctx, backup, job?.helpers);
    done = { backup, offsite };
  } catch (error) {
    const attempt = job?.helpers.job;
    if (attempt && (error instanceof PermanentJobError || attempt.attempts >= attempt.max_attempts)) {
      const { raiseAlert } = await import("../alerts/alerts.js");
      await raiseAlert(
        { ...ctx, mailer: job.mailer },
        `backup_failed:${target.database}`,
        `backup of ${target.database} failed for good`,
        `The backup of ${target.database} failed on its last attempt (${attempt.attempts} of ${attempt.max_attempts}): ${errorMessage(error)}`,
      );
    }
    throw error;
  }
  if (job) await (await import("../backups/health.js")).checkShrink({ ...ctx, mailer: job.mailer }, target.database);
  await (await retention).applyRetention(ctx.config, ctx.pool, ctx.logger, target.database);
  return done;
}

/**
 * `database retire`: a final backup of a database being deprecated, marked
 * final (it and its offsite copy are never pruned), uploaded now. The key of
 * its offsite copy, with OFFSITE_URL.
 */
export async function finalBackup(ctx: BackupContext, target: BackupTarget): Promise<{ backup: BackupRow; offsiteKey?: string }> {
  const row = await runBackup(ctx, target);
  await markFinal(ctx.pool, row.id);
  if (!ctx.config.offsite.url) return { backup: { ...row, final: true } };
  const { uploadBackup } = await import("../offsite/copies.js");
  return { backup: { ...row, final: true }, offsiteKey: await uploadBackup(ctx, { ...row, final: true }) };
}
