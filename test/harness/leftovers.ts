/**
 * What a test run must not leave behind: PostgreSQL servers of its own
 * (embedded, started with pg_ctl, so they outlive the process that started
 * them) and temporary folders. The run's temporary folders all live in one
 * folder (global-setup.ts points TMPDIR at it), so finding them is a walk.
 */
import fs from "node:fs";
import path from "node:path";
import { isAlive } from "../../src/db/embedded.js";

export interface Server {
  dataDir: string;
  pid: number;
}

/** The live server of a data directory (its postmaster.pid), if any. */
export function serverOf(dataDir: string): Server | undefined {
  const pidFile = path.join(dataDir, "postmaster.pid");
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, "utf8").split("\n")[0]);
  } catch {
    return undefined;
  }
  return pid > 0 && isAlive(pid) ? { dataDir, pid } : undefined;
}

/** Live servers whose data directory lies under `root` (data directories of PMT_HOMEs: root/x/pg, root/x/y/pg...). */
export function serversUnder(root: string, depth = 4): Server[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch {
    return [];
  }
  const here = entries.some((e) => e.name === "postmaster.pid") ? serverOf(root) : undefined;
  if (here) return [here];
  if (depth === 0) return [];
  // Symbolic links are followed for data directories only (as root, PMT_HOME/pg may point elsewhere).
  return entries.filter((e) => e.isDirectory() || (e.isSymbolicLink() && e.name === "pg")).flatMap((e) => serversUnder(path.join(root, e.name), depth - 1));
}

/**
 * Fast shutdown by signal (no binaries needed, so it also works from an
 * exit hook), waiting up to `timeoutMs` for the server to go.
 */
export function stopServer(server: Server, timeoutMs = 10_000): boolean {
  try {
    process.kill(server.pid, "SIGINT");
  } catch {
    return true;
  }
  const until = Date.now() + timeoutMs;
  while (isAlive(server.pid) && Date.now() < until) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  return !isAlive(server.pid);
}
