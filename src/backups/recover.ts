/**
 * At worker start: backups left `running` by a run that died are marked
 * failed, and their `.partial` files removed, so a killed run never leaves
 * anything that looks like a backup. A database is cleaned up only while
 * holding its backup lock: a run still alive (the CLI, another worker, on
 * any host) holds it, and its row and files are left alone.
 */
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import type { Logger } from "../log.js";
import { failInterrupted } from "./catalog.js";
import { removePath } from "./files.js";
import { tryLockBackup } from "./lock.js";
import { isPartialOf } from "./run.js";

export async function recoverBackups(dir: string, pool: pg.Pool, logger: Logger): Promise<{ failed: number; removed: string[] }> {
  const { rows } = await pool.query<{ database: string }>("select distinct database from pmt_jobs.backup");
  const partials = fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => name.endsWith(".partial")) : [];
  let failed = 0;
  const removed: string[] = [];
  for (const { database } of rows) {
    const mine = partials.filter((name) => isPartialOf(name, database));
    const running = await pool.query("select 1 from pmt_jobs.backup where database = $1 and status = 'running' limit 1", [database]);
    if (mine.length === 0 && !running.rowCount) continue;
    const lock = await tryLockBackup(pool, database);
    if (!lock) continue; // a run is alive
    try {
      failed += await failInterrupted(pool, database);
      for (const name of mine) {
        removePath(path.join(dir, name));
        removed.push(name);
      }
    } finally {
      await lock.release();
    }
  }
  // A .partial of no catalogued database was not written by a run of ours (every run writes its row first): left alone.
  if (failed || removed.length) logger.warn({ failed, removed }, "cleaned up after interrupted backups");
  return { failed, removed };
}
