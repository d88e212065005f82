/**
 * Remote GFS: the offsite copies of each database kept by no offsite tier
 * (OFFSITE_KEEP_*) are deleted from the store and marked pruned; a retired
 * database's final copy never is. Part of `offsite sync`.
 */
import type pg from "pg";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { globalsKey, markCopyPruned } from "../offsite/copies.js";
import type { OffsiteStore } from "../offsite/store.js";
import { planRetention } from "./policy.js";

export async function applyRemoteRetention(deps: { config: Config; pool: pg.Pool; logger: Logger }, store: OffsiteStore, now: Date): Promise<string[]> {
  const { rows } = await deps.pool.query<{ backup_id: number; key: string; database: string; started_at: Date; final: boolean; format: string }>(
    `select c.backup_id, c.key, b.database, b.started_at, b.final, b.format
     from pmt_jobs.backup_copy c join pmt_jobs.backup b on b.id = c.backup_id
     where c.target = $1 and c.status = 'verified'`,
    [store.description],
  );
  const pruned: string[] = [];
  const byDatabase = new Map<string, typeof rows>();
  for (const r of rows) byDatabase.set(r.database, [...(byDatabase.get(r.database) ?? []), r]);
  for (const copies of byDatabase.values()) {
    const plan = planRetention(
      copies.filter((c) => !c.final).map((c) => ({ id: c.backup_id, at: c.started_at })),
      now,
      { ...deps.config.retention, ...deps.config.offsite.retain },
    );
    for (const copy of copies) {
      if (copy.final || !plan.prune.includes(copy.backup_id)) continue;
      const objects = copy.format === "directory" ? (await store.list(`${copy.key}/`)).map((o) => o.key) : [copy.key];
      // The dump, its globals (roles), then its manifest: a half-pruned copy still has the manifest that names it.
      for (const key of [...objects, globalsKey(copy.key), `${copy.key}.json`]) await store.remove(key);
      await markCopyPruned(deps.pool, copy.backup_id, store.description);
      pruned.push(copy.key);
    }
  }
  if (pruned.length) deps.logger.info({ pruned }, "offsite copies pruned by remote retention");
  return pruned;
}
