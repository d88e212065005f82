/**
 * The PMT databases one worker serves (PMT_DATABASES, else DATABASE_URL's
 * alone), and which of them keeps the catalog of each database it backs up.
 *
 * Each served database is an instance of PMT with its own queue, history and
 * backup catalog in its own schema pmt_jobs, so that pmt_filter_csv enqueues
 * in the caller's transaction. A served database backs itself up; a database
 * in BACKUP_DATABASES that is not served (a non-PMT database, say) is backed up
 * by the first served one, whose catalog then holds its backups.
 */
import type { Config } from "../config.js";
import { UserError } from "../errors.js";
import { redactUrl } from "../redact.js";

export interface NamedDatabase {
  /** The database's name: the instance in mail bodies, the catalog's `database`, the `database` label. */
  name: string;
  url: string;
}

/** Names (on `baseUrl`'s server) or postgres:// URLs, each with its name; names must be unique. */
export function resolveDatabases(baseUrl: string | undefined, items: string[], variable: string): NamedDatabase[] {
  const resolved = items.map((item) => {
    if (/^postgres(ql)?:\/\//.test(item)) return { name: decodeURIComponent(new URL(item).pathname.slice(1)), url: item };
    if (!baseUrl) {
      throw new UserError(
        `${variable}: ${JSON.stringify(item)} is a database name, which needs DATABASE_URL to say the server; set DATABASE_URL or give full postgres:// URLs`,
      );
    }
    const url = new URL(baseUrl);
    url.pathname = `/${encodeURIComponent(item)}`;
    return { name: item, url: url.toString() };
  });
  const names = new Set<string>();
  for (const d of resolved) {
    if (!d.name) throw new UserError(`${variable}: ${redactUrl(d.url)} names no database`);
    // Instances are told apart by name (catalog rows, offsite folders, drop-folder file names): one name, one database.
    const key = d.name.toLowerCase();
    if (names.has(key)) throw new UserError(`${variable}: database ${d.name} is listed twice (names must be unique, whatever the server)`);
    names.add(key);
  }
  return resolved;
}

/** True when PMT_DATABASES is set: several instances (or one named explicitly) rather than DATABASE_URL's database. */
export function multiDatabase(config: Config): boolean {
  return config.pmtDatabases.length > 0;
}

/**
 * The served databases. `defaultUrl`: DATABASE_URL's (or the embedded
 * server's) database, served alone when PMT_DATABASES is unset.
 */
export function servedDatabases(config: Config, defaultUrl: string | undefined): NamedDatabase[] {
  if (multiDatabase(config)) return resolveDatabases(config.databaseUrl, config.pmtDatabases, "PMT_DATABASES");
  if (!defaultUrl) throw new UserError("no database: set DATABASE_URL (or PMT_DATABASES), or leave both unset for the embedded PostgreSQL");
  return resolveDatabases(undefined, [defaultUrl], "DATABASE_URL");
}

/** One served database with the configuration its jobs see: the backups it runs and catalogs. */
export interface Instance extends NamedDatabase {
  config: Config;
}

/**
 * Each served database with its own configuration: `config.backup.targets`
 * lists what it backs up (itself, unless BACKUP_DATABASES says otherwise;
 * BACKUP_DATABASES's other databases fall to the first served one).
 */
export function instancesOf(config: Config, served: NamedDatabase[]): Instance[] {
  const listed = config.backup.databases.length ? resolveDatabases(config.databaseUrl ?? served[0]?.url, config.backup.databases, "BACKUP_DATABASES") : served;
  const owner = (name: string) => served.find((s) => s.name.toLowerCase() === name.toLowerCase()) ?? served[0]!;
  return served.map((s) => ({
    ...s,
    config: {
      ...config,
      backup: {
        ...config.backup,
        targets: listed.filter((t) => owner(t.name) === s).map((t) => ({ database: t.name, url: t.url })),
        others: listed.filter((t) => owner(t.name) !== s).map((t) => t.name),
      },
    },
  }));
}

/**
 * The instances a command works on: all, or with `database` the one serving
 * it or keeping its backups' catalog (a database of BACKUP_DATABASES).
 */
export function selectInstances(instances: Instance[], database: string | undefined): Instance[] {
  if (database === undefined) return instances;
  const found =
    instances.find((i) => i.name === database) ??
    instances.find((i) => i.name.toLowerCase() === database.toLowerCase()) ??
    instances.find((i) => i.config.backup.targets?.some((t) => t.database === database));
  if (!found) {
    const known = [...new Set([...instances.map((i) => i.name), ...instances.flatMap((i) => (i.config.backup.targets ?? []).map((t) => t.database))])];
    throw new UserError(`--database ${JSON.stringify(database)}: not a database this worker serves or backs up (${known.join(", ")})`);
  }
  return [found];
}
