/** The offsite jobs: one upload per backup right after it succeeds, and the nightly sync. */
import type { Task } from "graphile-worker";
import { z } from "zod";
import { PermanentJobError } from "../errors.js";
import { syncOffsite, uploadById, type OffsiteDeps } from "./copies.js";

const uploadPayload = z.object({ backupId: z.number().int().positive() });

export function offsiteUploadTask(deps: OffsiteDeps): Task {
  return async (payload) => {
    const parsed = uploadPayload.safeParse(payload);
    if (!parsed.success) throw new PermanentJobError(`offsite upload payload: expected {"backupId": <id>}`);
    await uploadById(deps, parsed.data.backupId);
  };
}

export function offsiteSyncTask(deps: OffsiteDeps): Task {
  return async () => {
    const result = await syncOffsite(deps);
    if (result.failed.length) {
      throw new Error(`offsite sync: ${result.failed.map((f) => `backup ${f.backup}: ${f.error}`).join("; ")}`);
    }
  };
}
