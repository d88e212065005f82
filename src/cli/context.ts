/**
 * What a command that opens a database runs in: the configuration, a logger
 * on stderr, the served databases (embedded or not) and a pool for each.
 * The modules behind it (config and its schemas, pg) are imported when a
 * command opens a database, not when the CLI starts; pino when the command
 * first logs; kysely when it asks for it (ctx.db()).
 */
import type { Config } from "../config.js";
import type { Pool } from "../db/pool.js";
import type { Db } from "../db/schema.js";
import { UserError } from "../errors.js";
import { errorText } from "../redact.js";
import { createLogger, lazyLogger, stderrDestination, type Logger } from "../log.js";

export interface CommandContext {
  /** The served database this context is for (its name). */
  database: string;
  /** True when the command covers more than one database: its output then says which database each part is of. */
  several: boolean;
  /** The database is the embedded PostgreSQL under PMT_HOME (the demo). */
  embedded: boolean;
  config: Config;
  logger: Logger;
  url: string;
  pool: Pool;
  /** kysely over `pool`, loaded on the first call (about 250 modules the commands that query with plain SQL never need). */
  db(): Promise<Db>;
}

/**
 * A command's logger: on stderr, so that stdout carries only its output; warnings and worse unless LOG_LEVEL says more.
 * Made on its first use: a command that logs nothing does not load pino.
 */
export function commandLogger(config: Config): Logger {
  return lazyLogger(() => createLogger(config.logLevel === "info" ? "warn" : config.logLevel, stderrDestination(), config.logFormat));
}

/**
 * Imports modules that load pg. pg asks, as it loads, whether it runs in a
 * Cloudflare Worker: it reads `navigator`, and where there is none (Node 20)
 * it makes a fetch Response to find out, which loads undici, fetch's
 * implementation: half a bare node start, for nothing. A `navigator` there for
 * the time of the import answers first (not a Worker's); on Node 21 and later,
 * which have their own, this does nothing.
 */
export async function importPg<T>(load: () => Promise<T>): Promise<T> {
  if ("navigator" in globalThis) return load();
  Object.defineProperty(globalThis, "navigator", { value: { userAgent: "Node.js" }, configurable: true });
  try {
    return await load();
  } finally {
    delete (globalThis as { navigator?: unknown }).navigator;
  }
}

/** A missing pmt_jobs or graphile_worker table: the database was never migrated. */
function explainUnmigrated(error: unknown, database: string): unknown {
  const e = error as { code?: string; message?: string };
  if (e.code === "42P01" && /pmt_jobs\.|graphile_worker\./.test(e.message ?? "")) {
    return new UserError(`database ${database} has no pmt-worker schema yet (${e.message}): run pmt-worker migrate first`, { cause: error });
  }
  return error;
}

async function withPool<T>(
  target: { config: Config; database: string; url: string; several: boolean; embedded: boolean },
  logger: Logger,
  fn: (ctx: CommandContext) => Promise<T>,
): Promise<T> {
  const { config, database, url, several, embedded } = target;
  const { checkConnection, createPool } = await import("../db/pool.js");
  const pool = createPool(url, { max: 2, applicationName: "pmt-worker cli" });
  let db: Promise<Db> | undefined;
  const kysely = () => (db ??= import("../db/kysely.js").then(({ createDb }) => createDb(pool)));
  try {
    await checkConnection(pool, url);
    return await fn({ database, several, embedded, config, logger, url, pool, db: kysely });
  } catch (error) {
    throw explainUnmigrated(error, database);
  } finally {
    await pool.end();
  }
}

/**
 * Runs a command against the database: DATABASE_URL, or the embedded default
 * (reused if running, else started for the command and stopped after).
 * Logs go to stderr so that stdout carries only the command's output.
 * With PMT_DATABASES, the first served database (see withDatabases).
 */
export async function withDatabase<T>(fn: (ctx: CommandContext) => Promise<T>): Promise<T> {
  const [result] = await withDatabases({ first: true }, fn);
  return result!;
}

/**
 * Runs a command against every served database in turn (PMT_DATABASES, else
 * the one of withDatabase), or with `database` the one serving it or keeping
 * its backups' catalog; each context's config lists what that database backs
 * up. A database that cannot be reached is reported on stderr and skipped when
 * there are others (the command then exits 1); results in the list's order.
 * `parallel`: all at once (commands that run until stopped, like watch).
 * `requireOne`: the command needs exactly one database (a catalog id means
 * nothing without its catalog): with several and no `database`, an error
 * naming the command, before anything runs. `ownCheck`: the command checks
 * `database` against its backup targets itself (findTarget): with one database
 * served, an unknown name is the command's to report, as it always was.
 */
export async function withDatabases<T>(
  options: { database?: string; first?: boolean; parallel?: boolean; requireOne?: string; ownCheck?: boolean },
  fn: (ctx: CommandContext) => Promise<T>,
): Promise<T[]> {
  const { loadConfig } = await import("../config.js");
  const [{ openDatabases }, { selectInstances }] = await importPg(() =>
    Promise.all([import("../db/database.js"), import("../db/databases.js"), import("../db/pool.js")]),
  );
  const config = loadConfig();
  const logger = commandLogger(config);
  const databases = await openDatabases(config, logger);
  try {
    let instances = options.ownCheck && databases.instances.length === 1 ? databases.instances : selectInstances(databases.instances, options.database);
    if (options.first) instances = instances.slice(0, 1);
    if (options.requireOne && instances.length > 1) {
      throw new UserError(
        `${options.requireOne}: this worker serves several databases (${instances.map((i) => i.name).join(", ")}), each with its own catalog and ids: say which with --database <name>`,
      );
    }
    const several = instances.length > 1;
    const one = async (instance: (typeof instances)[number]): Promise<{ ok: true; value: T } | { ok: false }> => {
      try {
        return {
          ok: true,
          value: await withPool({ config: instance.config, database: instance.name, url: instance.url, several, embedded: databases.embedded }, logger, fn),
        };
      } catch (error) {
        if (!several) throw error;
        process.stderr.write(`pmt-worker: ${instance.name}: ${errorText(error)}\n`);
        process.exitCode = 1;
        return { ok: false };
      }
    };
    const outcomes: Awaited<ReturnType<typeof one>>[] = [];
    if (options.parallel) outcomes.push(...(await Promise.all(instances.map(one))));
    else for (const instance of instances) outcomes.push(await one(instance));
    return outcomes.flatMap((o) => (o.ok ? [o.value] : []));
  } finally {
    await databases.close();
  }
}
