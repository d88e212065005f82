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
import { serverOf, stopServer } from "./leftovers.js";
import { freePort } from "./net.js";

export interface OwnServer {
  url: string;
  /** Fast shutdown, then start again on the same port and data. */
  restart(): Promise<void>;
  /** Fast shutdown (for an outage of the test's choosing); `start` brings it back on the same port and data. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * The servers of this test file and their folders. Tests call startOwnServer
 * inside it(), where an afterAll would never run (the servers were left
 * running), so one hook is registered here, when the file is collected; the
 * exit hook covers a test process that ends without running it.
 */
const owned = new Map<string, () => Promise<void>>();

async function stopOwned(): Promise<void> {
  for (const [home, stop] of owned) {
    await stop().catch(() => {});
    fs.rmSync(home, { recursive: true, force: true });
    owned.delete(home);
  }
}

afterAll(stopOwned);
process.on("exit", () => {
  for (const home of owned.keys()) {
    const server = serverOf(path.join(home, "pg"));
    if (server) stopServer(server);
    fs.rmSync(home, { recursive: true, force: true });
  }
});

export async function startOwnServer(): Promise<OwnServer> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-own-pg-"));
  fs.chmodSync(home, 0o711);
  const logger = createLogger("silent");
  const port = await freePort();
  let server: EmbeddedDatabase = await startEmbedded(home, port, logger);
  owned.set(home, () => server.stop());
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
