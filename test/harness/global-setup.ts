/**
 * One PostgreSQL for the whole run: TEST_DATABASE_URL (an admin connection
 * that may CREATE DATABASE) when set, else an embedded PostgreSQL 15 in a
 * temporary folder. Test files get their own database from it (harness/db.ts).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbedded } from "../../src/db/embedded.js";
import { createLogger } from "../../src/log.js";
import { faultTable, readFaults } from "./fault-table.js";
import { freePort } from "./net.js";

declare module "vitest" {
  export interface ProvidedContext {
    adminUrl: string;
    /** JSON lines of the fault-injection scenarios' outcomes (harness/faults.ts). */
    faultLog: string;
  }
}

/** The fault-injection summary, printed once every file has run. */
function printFaults(file: string): void {
  const rows = readFaults(file);
  fs.rmSync(file, { force: true });
  if (!rows.length) return;
  const lost = rows.reduce((n, r) => n + r.lost, 0);
  process.stdout.write(`\nFault injection: ${rows.length} scenarios, data lost ${lost}\n${faultTable(rows)}`);
}

export default async function setup(project: TestProject) {
  const faultLog = path.join(os.tmpdir(), `pmt-faults-${process.pid}-${Date.now()}.jsonl`);
  project.provide("faultLog", faultLog);
  if (process.env.TEST_DATABASE_URL) {
    project.provide("adminUrl", process.env.TEST_DATABASE_URL);
    return () => printFaults(faultLog);
  }
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-test-pg-"));
  fs.chmodSync(home, 0o711);
  const server = await startEmbedded(home, await freePort(), createLogger("warn"));
  const url = new URL(server.url);
  url.pathname = "/postgres";
  project.provide("adminUrl", url.toString());
  return async () => {
    printFaults(faultLog);
    await server.stop();
    fs.rmSync(home, { recursive: true, force: true });
  };
}
