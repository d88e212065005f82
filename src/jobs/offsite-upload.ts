/**
 * One backup's offsite copy, queued by the backup job when the dump was not
 * streamed to the store (or its streamed copy could not be proven): in a job
 * of its own, so a store that is down retries without redoing the dump.
 */
import { z } from "zod";
import { raiseAlert } from "../alerts/alerts.js";
import { LocalFileMismatch } from "../backups/files.js";
import { PermanentJobError, errorMessage } from "../errors.js";
import { duty } from "./context.js";

export const offsiteUploadDuty = duty({
  task: "pmt_jobs.offsite_upload",
  maintenance: true,
  payload: z.object({ backupId: z.number().int().positive() }),
  invalidPayload: () => new PermanentJobError(`offsite upload payload: expected {"backupId": <id>}`),
  body:
    (ctx) =>
    async ({ backupId }, helpers) => {
      // Imported here: `backup run` loads this file for uploadJobSpec, and the offsite modules load the AWS SDK.
      const { uploadById } = await import("../offsite/copies.js");
      try {
        await uploadById(ctx, backupId);
      } catch (error) {
        // A refused corrupt file has raised its own alert.
        const corrupt = (error as Error).cause instanceof LocalFileMismatch;
        if (!corrupt && (error instanceof PermanentJobError || helpers.job.attempts >= helpers.job.max_attempts)) {
          await raiseAlert(
            ctx,
            `upload_failed:${backupId}`,
            `offsite copy of backup ${backupId} failed for good`,
            `Uploading backup ${backupId} failed on its last attempt (${helpers.job.attempts} of ${helpers.job.max_attempts}): ${errorMessage(error)}. pmt-worker offsite sync retries it.`,
          );
        }
        throw error;
      }
    },
});

/** The upload job for one backup (its job key makes a second one for the same backup replace the first). */
export function uploadJobSpec(backupId: number) {
  return { task: offsiteUploadDuty.task, payload: { backupId }, options: { queueName: "offsite", jobKey: `offsite:${backupId}`, maxAttempts: 12 } } as const;
}
