/**
 * The export limits live in pmt_jobs.export_limits (one row), where the SQL
 * functions read them and an operator changes them from psql. The
 * EXPORT_LIMIT_* variables that are set pin their columns: written at every
 * worker start and `migrate`; unset ones leave the table as it is.
 */
import type pg from "pg";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";

/** Writes the limits set in the environment; returns the columns written. */
export async function applyExportLimits(pool: pg.Pool, limits: Partial<Config["exportLimits"]>, logger: Logger): Promise<string[]> {
  const columns: [string, number | undefined][] = [
    ["per_recipient_per_hour", limits.perRecipientPerHour],
    ["per_role_per_hour", limits.perRolePerHour],
    ["max_queued", limits.maxQueued],
    ["filter_timeout", limits.filterTimeoutMs],
  ];
  const set = columns.filter((c): c is [string, number] => c[1] !== undefined);
  if (!set.length) return [];
  const assignments = set.map(([column], i) =>
    column === "filter_timeout" ? `${column} = make_interval(secs => $${i + 1}::numeric / 1000)` : `${column} = $${i + 1}`,
  );
  // The row may have been deleted (which means no limits): bring it back first.
  await pool.query("insert into pmt_jobs.export_limits default values on conflict do nothing");
  await pool.query(
    `update pmt_jobs.export_limits set ${assignments.join(", ")}`,
    set.map(([, value]) => value),
  );
  logger.info({ limits: Object.fromEntries(set) }, "export limits set from the environment");
  return set.map(([column]) => column);
}

/**
 * Forgets the limit keys of roles and recipients with no request in the last
 * hour (they count nothing any more). Keys held by a transaction under way are
 * skipped, never waited for.
 */
export async function pruneLimitKeys(pool: pg.Pool): Promise<number> {
  const { rowCount } = await pool.query(`
    delete from pmt_jobs.export_limit_key k using (
      select key from pmt_jobs.export_limit_key where touched_at < now() - interval '1 hour' for update skip locked
    ) old where k.key = old.key`);
  return rowCount ?? 0;
}
