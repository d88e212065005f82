import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { startEmbedded } from "./embedded.js";

export interface Database {
  url: string;
  embedded: boolean;
  /** Stops the embedded server if this process started it; no-op for DATABASE_URL. */
  close(): Promise<void>;
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
