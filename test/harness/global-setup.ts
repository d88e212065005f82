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
import { serversUnder, stopServer } from "./leftovers.js";
import { freePort } from "./net.js";

declare module "vitest" {
  export interface ProvidedContext {
    adminUrl: string;
    /** JSON lines of the fault-injection scenarios' outcomes (harness/faults.ts). */
    faultLog: string;
  }
}

/**
 * The fault-injection summary, once every file has run: the table goes to
 * test-output/faults.txt and one line to the console, so a run's last lines
 * (all a CI log may keep) stay vitest's summary of what failed.
 */
function printFaults(file: string, project: string): void {
  const rows = readFaults(file);
  fs.rmSync(file, { force: true });
  if (!rows.length) return;
  const lost = rows.reduce((n, r) => n + r.lost, 0);
  // npm test's table is faults.txt; another suite's (the container test's) is named after its project.
  const out = path.resolve("test-output", project === "integration" || !project ? "faults.txt" : `faults-${project}.txt`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, faultTable(rows));
  process.stdout.write(`\nFault injection: ${rows.length} scenarios, data lost ${lost} (table: ${path.relative(process.cwd(), out)})\n`);
}

function ourTempFolders(tmp: string): Set<string> {
  return new Set(fs.readdirSync(tmp).filter((name) => name.startsWith("pmt-")));
}

/**
 * One temporary folder for the whole run: TMPDIR points at it for the test
 * processes (forked after this) and everything they spawn, so whatever a
 * test leaves there goes with it at the end. 01777, like /tmp itself:
 * processes of other users started by the tests (the embedded servers'
 * postgres user as root, the deployment guide's service user) make their own
 * temporary files in it, and the sticky bit keeps each one's files its own.
 */
function runTempFolder(): { dir: string; tmp: string; before: Set<string> } {
  const tmp = os.tmpdir();
  const before = ourTempFolders(tmp);
  const dir = fs.mkdtempSync(path.join(tmp, "pmt-test-run-"));
  fs.chmodSync(dir, 0o1777);
  process.env.TMPDIR = dir;
  return { dir, tmp, before };
}

/**
 * The end-of-run check: servers still running under the run's folder are
 * stopped and named, loudly (a test that does not clean up after itself);
 * then the folder goes, and pmt-* folders that appeared in the real temporary
 * folder (written by something that ignored TMPDIR) are named in a note.
 */
function cleanUp(run: { dir: string; tmp: string; before: Set<string> }): void {
  const problems: string[] = [];
  for (const server of serversUnder(run.dir)) {
    const stopped = stopServer(server);
    problems.push(`PostgreSQL (pid ${server.pid}) left running on ${path.relative(run.dir, server.dataDir)}: ${stopped ? "stopped now" : "STILL RUNNING"}`);
  }
  fs.rmSync(run.dir, { recursive: true, force: true });
  if (problems.length) {
    process.stderr.write(`\n!!! The test run left things behind (a test does not clean up after itself):\n${problems.map((p) => `!!!   ${p}\n`).join("")}`);
  }
  // Not attributable for sure: another test run may be going on at the same time.
  const appeared = [...ourTempFolders(run.tmp)].filter((name) => !run.before.has(name));
  if (appeared.length) {
    process.stderr.write(
      `note: ${appeared.length} pmt-* folders appeared in ${run.tmp} during the run, outside its own folder (this run's unless another ran at the same time): ${appeared.join(", ")}\n`,
    );
  }
}

export default async function setup(project: TestProject) {
  const run = runTempFolder();
  const faultLog = path.join(run.dir, "faults.jsonl");
  project.provide("faultLog", faultLog);
  if (process.env.TEST_DATABASE_URL) {
    project.provide("adminUrl", process.env.TEST_DATABASE_URL);
    return () => {
      printFaults(faultLog, project.name);
      cleanUp(run);
    };
  }
  const home = fs.mkdtempSync(path.join(run.dir, "pmt-test-pg-"));
  fs.chmodSync(home, 0o711);
  const server = await startEmbedded(home, await freePort(), createLogger("warn"));
  const url = new URL(server.url);
  url.pathname = "/postgres";
  project.provide("adminUrl", url.toString());
  return async () => {
    printFaults(faultLog, project.name);
    await server.stop();
    cleanUp(run);
  };
}
