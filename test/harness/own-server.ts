/**
 * A PostgreSQL of a test's own (embedded, in a temporary folder), migrated,
 * that the test may restart: for the tests that take the server down, which
 * the shared harness server must never be.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll } from "vitest";
import { startEmbedded, type EmbeddedDatabase } from "../../src/db/embedded.js";
import { migrate } from "../../src/db/migrate.js";
import { createPool } from "../../src/db/pool.js";
import { createLogger } from "../../src/log.js";
import { freePort } from "./net.js";

export interface OwnServer {
  url: string;
  /** Fast shutdown, then start again on the same port and data. */
  restart(): Promise<void>;
  /** Fast shutdown (for an outage of the test's choosing); `start` brings it back on the same port and data. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startOwnServer(): Promise<OwnServer> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-own-pg-"));
  fs.chmodSync(home, 0o711);
  const logger = createLogger("silent");
  const port = await freePort();
  let server: EmbeddedDatabase = await startEmbedded(home, port, logger);
  afterAll(async () => {
    await server.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });
  const pool = createPool(server.url);
  await migrate(pool, logger);
  await pool.end();
  return {
    url: server.url,
    async restart() {
      await server.stop();
      server = await startEmbedded(home, port, logger);
    },
    stop: () => server.stop(),
    async start() {
      server = await startEmbedded(home, port, logger);
    },
  };
}
