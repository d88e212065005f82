/**
 * The databases to back up (BACKUP_DATABASES: names on DATABASE_URL's server
 * or full URLs). The libpq environment pg_dump gets for one is pgtools/tools.ts's.
 */
import { UserError } from "../errors.js";
import { redactUrl } from "../redact.js";

export interface BackupTarget {
  /** The name in the catalog, file names and job payloads. */
  database: string;
  url: string;
}

/**
 * What the worker instance of `databaseUrl` backs up: `backup.targets` when
 * the instances were resolved (db/databases.ts), else BACKUP_DATABASES or
 * the database itself.
 */
export function backupTargets(databaseUrl: string, backup: { databases: string[]; targets?: BackupTarget[] }): BackupTarget[] {
  if (backup.targets) return backup.targets;
  const configured = backup.databases;
  const items = configured.length ? configured : [new URL(databaseUrl).pathname.slice(1)];
  const targets = items.map((item) => {
    if (/^postgres(ql)?:\/\//.test(item)) {
      return { database: decodeURIComponent(new URL(item).pathname.slice(1)), url: item };
    }
    const url = new URL(databaseUrl);
    url.pathname = `/${encodeURIComponent(item)}`;
    return { database: item, url: url.toString() };
  });
  const names = new Set<string>();
  for (const t of targets) {
    if (!t.database) throw new UserError(`BACKUP_DATABASES: ${redactUrl(t.url)} names no database`);
    if (names.has(t.database)) throw new UserError(`BACKUP_DATABASES: database ${t.database} is listed twice (names must be unique)`);
    names.add(t.database);
  }
  return targets;
}

export function findTarget(targets: BackupTarget[], database: string): BackupTarget {
  const t = targets.find((x) => x.database === database);
  if (!t) {
    throw new UserError(
      `database ${JSON.stringify(database)} is not one this worker backs up (${targets.map((x) => x.database).join(", ")}): see BACKUP_DATABASES`,
    );
  }
  return t;
}
