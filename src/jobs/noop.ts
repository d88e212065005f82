/** Does nothing (optionally waits): a probe for the queue, and the subject of the queue benchmark. */
import { z } from "zod";
import { duty } from "./context.js";

export const noopDuty = duty({
  task: "pmt_jobs.noop",
  maintenance: false,
  payload: z.object({ sleepMs: z.number().int().min(0).max(3_600_000).optional() }).passthrough(),
  invalidPayload: () => new Error(`noop payload: expected {"sleepMs": 0..3600000}`),
  body: () => async (payload, helpers) => {
    const ms = payload.sleepMs ?? 0;
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    helpers.logger.debug("noop done");
  },
});
