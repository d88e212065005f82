import { pino } from "pino";
import { loadConfig, type Config } from "../config.js";
import { openDatabases } from "../db/database.js";
import { selectInstances } from "../db/databases.js";
import { createDb } from "../db/kysely.js";
import { checkConnection, createPool, type Pool } from "../db/pool.js";
import type { Db } from "../db/schema.js";
import { UserError } from "../errors.js";
import { errorText } from "../redact.js";
import { createLogger, type Logger } from "../log.js";

export interface CommandContext {
  /** The served database this context is for (its name). */
  database: string;
  config: Config;
  logger: Logger;
  url: string;
  pool: Pool;
  db: Db;
}

/** A command's logger: on stderr, so that stdout carries only its output; warnings and worse unless LOG_LEVEL says more. */
export function commandLogger(config: Config): Logger {
  return createLogger(config.logLevel === "info" ? "warn" : config.logLevel, pino.destination(2));
}

/** A missing pmt_jobs or graphile_worker table: the database was never migrated. */
function explainUnmigrated(error: unknown, database: string): unknown {
  const e = error as { code?: string; message?: string };
  if (e.code === "42P01" && /pmt_jobs\.|graphile_worker\./.test(e.message ?? "")) {
    return new UserError(`database ${database} has no pmt-worker schema yet (${e.message}): run pmt-worker migrate first`, { cause: error });
  }
  return error;
}

async function withPool<T>(config: Config, logger: Logger, database: string, url: string, fn: (ctx: CommandContext) => Promise<T>): Promise<T> {
  const pool = createPool(url, { max: 2, applicationName: "pmt-worker cli" });
  try {
    await checkConnection(pool, url);
    return await fn({ database, config, logger, url, pool, db: createDb(pool) });
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
 */
export async function withDatabases<T>(
  options: { database?: string; first?: boolean },
  fn: (ctx: CommandContext) => Promise<T>,
): Promise<T[]> {
  const config = loadConfig();
  const logger = commandLogger(config);
  const databases = await openDatabases(config, logger);
  try {
    let instances = selectInstances(databases.instances, options.database);
    if (options.first) instances = instances.slice(0, 1);
    const results: T[] = [];
    for (const instance of instances) {
      try {
        results.push(await withPool(instance.config, logger, instance.name, instance.url, fn));
      } catch (error) {
        if (instances.length === 1) throw error;
        process.stderr.write(`pmt-worker: ${instance.name}: ${errorText(error)}\n`);
        process.exitCode = 1;
      }
    }
    return results;
  } finally {
    await databases.close();
  }
}
