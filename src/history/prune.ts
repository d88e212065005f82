import { sql } from "kysely";
import type { Db } from "../db/schema.js";

export const PRUNE_BATCH_SIZE = 5000;

/**
 * Deletes finished history rows older than `retentionDays`, in batches of
 * PRUNE_BATCH_SIZE so no single statement holds locks for long. Running rows
 * are never pruned. Returns how many rows went.
 */
export async function pruneHistory(db: Db, retentionDays: number, batchSize = PRUNE_BATCH_SIZE): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await sql<{ n: number }>`
      with doomed as (
        select id from pmt_jobs.job_run
        where started_at < now() - make_interval(days => ${retentionDays})
          and status <> 'running'
        order by started_at
        limit ${batchSize}
      )
      delete from pmt_jobs.job_run r using doomed where r.id = doomed.id`.execute(db);
    const n = Number(result.numAffectedRows ?? 0);
    total += n;
    if (n < batchSize) return total;
    await new Promise((r) => setTimeout(r, 50));
  }
}
