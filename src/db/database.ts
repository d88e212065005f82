import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { instancesOf, servedDatabases, type Instance } from "./databases.js";
import { startEmbedded } from "./embedded.js";

export interface Database {
  url: string;
  embedded: boolean;
  /** Stops the embedded server if this process started it; no-op for DATABASE_URL. */
  close(): Promise<void>;
}

/** Every served database (PMT_DATABASES, else DATABASE_URL's or the embedded one's) with its configuration. */
export interface Databases {
  instances: Instance[];
  embedded: boolean;
  /** DATABASE_URL or the embedded server's URL; undefined when only PMT_DATABASES's URLs say where. */
  url: string | undefined;
  close(): Promise<void>;
}

/**
 * The served databases: PMT_DATABASES needs no embedded server (its names are
 * on DATABASE_URL's server); without it, as openDatabase.
 */
export async function openDatabases(config: Config, logger: Logger): Promise<Databases> {
  const database = config.pmtDatabases.length && !config.databaseUrl ? undefined : await openDatabase(config, logger);
  try {
    return {
      instances: instancesOf(config, servedDatabases(config, database?.url)),
      embedded: database?.embedded ?? false,
      url: database?.url,
      close: () => database?.close() ?? Promise.resolve(),
    };
  } catch (error) {
    await database?.close();
    throw error;
  }
}

/**
 * DATABASE_URL when set; otherwise the embedded PostgreSQL under PMT_HOME,
 * started if it is not already running.
 */
export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  if (config.databaseUrl) {
    return { url: config.databaseUrl, embedded: false, close: async () => {} };
  }
  const embedded = await startEmbedded(config.pmtHome, config.embeddedPgPort, logger);
  return { url: embedded.url, embedded: true, close: () => embedded.stop() };
}
