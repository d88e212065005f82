import { pino } from "pino";
import { loadConfig, type Config } from "../config.js";
import { openDatabase } from "../db/database.js";
import { createDb } from "../db/kysely.js";
import { checkConnection, createPool, type Pool } from "../db/pool.js";
import type { Db } from "../db/schema.js";
import { UserError } from "../errors.js";
import { createLogger, type Logger } from "../log.js";

export interface CommandContext {
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

/**
 * Runs a command against the database: DATABASE_URL, or the embedded default
 * (reused if running, else started for the command and stopped after).
 * Logs go to stderr so that stdout carries only the command's output.
 */
export async function withDatabase<T>(fn: (ctx: CommandContext) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const logger = commandLogger(config);
  const database = await openDatabase(config, logger);
  const pool = createPool(database.url, { max: 2, applicationName: "pmt-worker cli" });
  try {
    await checkConnection(pool, database.url);
    return await fn({ config, logger, url: database.url, pool, db: createDb(pool) });
  } catch (error) {
    const e = error as { code?: string; message?: string };
    if (e.code === "42P01" && /pmt_jobs\.|graphile_worker\./.test(e.message ?? "")) {
      throw new UserError(`the database has no pmt-worker schema yet (${e.message}): run pmt-worker migrate first`, { cause: error });
    }
    throw error;
  } finally {
    await pool.end();
    await database.close();
  }
}
