/**
 * One backup per database at a time: a session advisory lock in the catalog's
 * database (DATABASE_URL), keyed on the backed-up database's name, held on a
 * connection of its own for the whole run. The worker and the CLI, on any
 * host, back up through that same database, so each sees the other's lock
 * (a lock file in BACKUP_DIR would not be seen from another host, nor cleaned
 * up by a crash; a session lock ends with its session, so a killed run
 * frees it). A run that cannot take it refuses at once and touches no file;
 * `.partial` leftovers are removed only by the lock's holder.
 */
import os from "node:os";
import type pg from "pg";

/** pg_advisory_lock's first key: "pmt" 02 (migrate uses the one-key form, a separate space). */
export const BACKUP_LOCK_CLASS = 0x706d7402;

/** Another run holds the database's backup lock. */
export class BackupBusyError extends Error {
  constructor(
    readonly database: string,
    holder: string,
  ) {
    super(`another backup of ${database} is running (${holder}); this run did not start and touched nothing: wait for it to finish (pmt-worker status)`);
    this.name = "BackupBusyError";
  }
}

export interface BackupLock {
  /** Called if the lock's connection is lost mid-run: the run must stop, another may start. */
  onLost(callback: (error: Error) => void): void;
  release(): Promise<void>;
}

/** Who holds the lock: the running catalog row and the holder's connection, as far as they are visible. */
async function describeHolder(client: pg.PoolClient, database: string): Promise<string> {
  const { rows } = await client.query<{ id: number | null; started_at: Date | null; holder: string | null }>(
    `select (select b.id from pmt_jobs.backup b where b.database = $2 and b.status = 'running' order by b.started_at desc limit 1) as id,
            (select b.started_at from pmt_jobs.backup b where b.database = $2 and b.status = 'running' order by b.started_at desc limit 1) as started_at,
            (select a.application_name from pg_catalog.pg_locks l join pg_catalog.pg_stat_activity a on a.pid = l.pid
             where l.locktype = 'advisory' and l.granted and l.objsubid = 2
               and l.classid = $1::bigint::oid and l.objid = (pg_catalog.hashtext($2)::bigint & 4294967295)::oid
             limit 1) as holder`,
    [BACKUP_LOCK_CLASS, database],
  );
  const r = rows[0];
  const parts = [r?.id ? `backup ${r.id}, started ${r.started_at!.toISOString()}` : undefined, r?.holder?.replace(/^pmt-worker backup lock /, "")].filter(
    Boolean,
  );
  return parts.length ? parts.join(", ") : "its catalog row is not visible yet";
}

/**
 * Takes the backup lock of `database` on a connection of its own from the
 * catalog's pool, or throws BackupBusyError naming the holder. The
 * connection is closed on release (never returned to the pool holding a
 * lock).
 */
export async function lockBackup(pool: pg.Pool, database: string): Promise<BackupLock> {
  const client = await pool.connect();
  let released = false;
  const lost: ((error: Error) => void)[] = [];
  try {
    const { rows } = await client.query<{ ok: boolean }>("select pg_catalog.pg_try_advisory_lock($1, pg_catalog.hashtext($2)) as ok", [
      BACKUP_LOCK_CLASS,
      database,
    ]);
    if (!rows[0]!.ok) throw new BackupBusyError(database, await describeHolder(client, database));
    // Named so that a refused run can say who holds it.
    await client.query("select pg_catalog.set_config('application_name', $1, false)", [
      `pmt-worker backup lock ${os.hostname()} pid ${process.pid}`.slice(0, 63),
    ]);
  } catch (error) {
    client.release(true);
    throw error;
  }
  const gone = (error: Error) => {
    if (released) return;
    released = true;
    client.release(true);
    for (const callback of lost) callback(new Error(`lost the backup lock of ${database} (${error.message}); stopped, so that another run may start cleanly`));
  };
  client.on("error", gone);
  client.on("end", () => gone(new Error("the connection to the catalog's database closed")));
  return {
    onLost: (callback) => lost.push(callback),
    async release() {
      if (released) return;
      released = true;
      // Closing the session releases the lock, even if the unlock itself fails.
      await client.query("select pg_catalog.pg_advisory_unlock($1, pg_catalog.hashtext($2))", [BACKUP_LOCK_CLASS, database]).catch(() => {});
      client.release(true);
    },
  };
}

/** Takes the lock only if it is free, for cleanup that must not race a run: undefined when a run holds it. */
export async function tryLockBackup(pool: pg.Pool, database: string): Promise<BackupLock | undefined> {
  try {
    return await lockBackup(pool, database);
  } catch (error) {
    if (error instanceof BackupBusyError) return undefined;
    throw error;
  }
}
