/**
 * The export job: one export request, queued by pmt_filter_csv / pmt_filter_iati
 * or the drop folder, rendered and mailed exactly once (exports/deliver.ts).
 */
import { z } from "zod";
import { PermanentJobError } from "../errors.js";
import { exportDelivery } from "../exports/deliver.js";
import { duty } from "./context.js";

export const exportDuty = duty({
  task: "pmt_jobs.export",
  maintenance: false,
  payload: z.object({ requestId: z.number().int().positive() }),
  invalidPayload: () => new PermanentJobError(`export job payload: expected {"requestId": <id>}`),
  body: (ctx) => {
    const deliver = exportDelivery(ctx);
    return async ({ requestId }, { job }) => deliver(requestId, { jobId: job.id, attempt: job.attempts, workerId: job.locked_by ?? "" });
  },
});
