/**
 * At worker start: backups left `running` by a worker that died are marked
 * failed, and `.partial` files no running backup owns are removed, so a
 * killed run never leaves anything that looks like a backup.
 */
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import type { Logger } from "../log.js";
import { removePath } from "./files.js";

export async function recoverBackups(dir: string, pool: pg.Pool, logger: Logger): Promise<{ failed: number; removed: string[] }> {
  // A running row whose job is no longer locked by a live worker cannot finish.
  const { rowCount } = await pool.query(
    `update pmt_jobs.backup b set status = 'failed', finished_at = now(),
            error = coalesce(b.error, 'interrupted: the worker stopped during the backup')
     where b.status = 'running'
       and not exists (select 1 from graphile_worker.jobs j where j.id = b.job_id and j.locked_at is not null)
       and b.started_at < now() - interval '1 minute'`,
  );
  const removed: string[] = [];
  if (fs.existsSync(dir)) {
    const { rows } = await pool.query<{ database: string }>("select distinct database from pmt_jobs.backup where status = 'running'");
    const busy = rows.map((r) => `${r.database.replace(/[^A-Za-z0-9_-]/g, "_")}_`);
    for (const name of fs.readdirSync(dir)) {
      if (!name.endsWith(".partial") || busy.some((p) => name.startsWith(p))) continue;
      removePath(path.join(dir, name));
      removed.push(name);
    }
  }
  if (rowCount || removed.length) logger.warn({ failed: rowCount, removed }, "cleaned up after interrupted backups");
  return { failed: rowCount ?? 0, removed };
}
