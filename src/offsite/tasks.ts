/** The offsite jobs: one upload per backup right after it succeeds, and the nightly sync. */
import type { Task } from "graphile-worker";
import { z } from "zod";
import { raiseAlert } from "../alerts/alerts.js";
import { LocalFileMismatch } from "../backups/files.js";
import { PermanentJobError, errorMessage } from "../errors.js";
import type { Mailer } from "../mail/transport.js";
import { syncOffsite, uploadById, type OffsiteDeps } from "./copies.js";

const uploadPayload = z.object({ backupId: z.number().int().positive() });

export function offsiteUploadTask(deps: OffsiteDeps & { mailer: Mailer }): Task {
  return async (payload, helpers) => {
    const parsed = uploadPayload.safeParse(payload);
    if (!parsed.success) throw new PermanentJobError(`offsite upload payload: expected {"backupId": <id>}`);
    try {
      await uploadById(deps, parsed.data.backupId);
    } catch (error) {
      // A refused corrupt file has raised its own alert.
      const corrupt = (error as Error).cause instanceof LocalFileMismatch;
      if (!corrupt && (error instanceof PermanentJobError || helpers.job.attempts >= helpers.job.max_attempts)) {
        await raiseAlert(
          deps,
          `upload_failed:${parsed.data.backupId}`,
          `offsite copy of backup ${parsed.data.backupId} failed for good`,
          `Uploading backup ${parsed.data.backupId} failed on its last attempt (${helpers.job.attempts} of ${helpers.job.max_attempts}): ${errorMessage(error)}. pmt-worker offsite sync retries it.`,
        );
      }
      throw error;
    }
  };
}

export function offsiteSyncTask(deps: OffsiteDeps & { mailer: Mailer }): Task {
  return async () => {
    const result = await syncOffsite(deps);
    if (result.failed.length) {
      throw new Error(`offsite sync: ${result.failed.map((f) => `backup ${f.backup}: ${f.error}`).join("; ")}`);
    }
  };
}
