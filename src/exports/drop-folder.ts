/**
 * The legacy drop folder (DROP_DIR): a drop-in replacement for incron +
 * pmt_email.sh. Files named `<email>_<instance>.csv|.xml` are taken once
 * complete (size and mtime unchanged between two scans), moved into the
 * private spool and mailed by the export job. Anything else (a bad name, a
 * symlink, a folder, a device) is moved to DROP_DIR/rejected with a log line.
 * No shell is run and nothing is ever followed out of the folder.
 *
 * Several workers may watch one folder: the move (rename) is atomic, so each
 * file is taken by exactly one of them.
 */
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import { parseDropName } from "./drop-name.js";
import { copyPlainFile, openPlainFile, plainFileProblem, spoolDir, UnsafeFileError, type SpoolFile } from "./spool.js";

/** Where a file of `<email>_<instance>` goes: a database's pool, or why not now (`retry`) or never (`reject`). */
export type DropRoute = { pool: pg.Pool } | { retry: string } | { reject: string };

export interface DropFolderOptions {
  dir: string;
  pmtHome: string;
  /** The one database every file goes to (a worker serving one database)... */
  pool?: pg.Pool;
  /** ...or the database of each file's instance (several: PMT_DATABASES). */
  route?: (instance: string) => DropRoute;
  /** The served databases' names: a file name ending in `_<one of them>` names that instance, `_` and all (pmt_dev). */
  instances?: string[];
  logger: Logger;
  scanIntervalMs: number;
}

export interface DropFolder {
  /** One scan now; resolves with the names taken and rejected. */
  scan(): Promise<{ taken: string[]; rejected: string[] }>;
  stop(): Promise<void>;
}

export function startDropFolder(options: DropFolderOptions): DropFolder {
  const { dir, logger } = options;
  const route = options.route ?? ((): DropRoute => ({ pool: options.pool! }));
  /** Files left for a database that does not answer yet: logged once each. */
  const waiting = new Set<string>();
  const rejectedDir = path.join(dir, "rejected");
  /** name -> "size:mtime" seen at the previous scan */
  const seen = new Map<string, string>();
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;

  /**
   * Moves an entry to rejected/ under a dated name; `raw`: its name's bytes
   * when they are not UTF-8; `from`: where it is now when no longer in the
   * folder (taken into the spool, then refused).
   */
  function reject(name: string, reason: string, options: { raw?: Buffer; from?: string } = {}): void {
    const { raw, from } = options;
    try {
      fs.mkdirSync(rejectedDir, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    // A rejected/ that is a link (planted by whoever writes the folder) would move entries wherever it points.
    if (!fs.lstatSync(rejectedDir).isDirectory()) {
      logger.error({ file: name, reason, rejectedDir }, "drop folder: rejected/ is not a folder; the entry was not moved");
      if (from) fs.rmSync(from, { force: true }); // never leave it in the spool
      return;
    }
    // The dated name must still fit in 255 bytes.
    let tail = raw ? `name-not-utf8-${raw.toString("hex").slice(0, 64)}` : name;
    while (Buffer.byteLength(tail) > 200) tail = tail.slice(0, -1);
    // Two rejections of one name in one millisecond must not replace each other: a serial keeps both.
    const dated = path.join(rejectedDir, `${new Date().toISOString().replace(/[:.]/g, "-")}_${tail}`);
    let target = dated;
    for (let n = 2; fs.lstatSync(target, { throwIfNoEntry: false }); n++) target = `${dated}.${n}`;
    try {
      fs.renameSync(from ?? (raw ? Buffer.concat([Buffer.from(dir + path.sep), raw]) : path.join(dir, name)), target);
      logger.warn({ file: name, rejectedTo: target, reason }, "drop folder: file rejected, not mailed");
    } catch (error) {
      logger.error({ file: name, reason, err: errorMessage(error) }, "drop folder: could not move a rejected file");
    }
  }

  /**
   * Takes `name` as the file the scans saw (`seen`: its lstat). Returns false
   * when it was gone (another worker took it), "rejected" when what was there
   * failed the checks on the opened descriptor.
   */
  async function take(pool: pg.Pool, name: string, seen: fs.Stats, recipient: string, instance: string, format: "csv" | "iati"): Promise<boolean | "rejected"> {
    const spool = spoolDir(options.pmtHome);
    const base = `drop-${Date.now()}-${process.pid}-${name.replace(/[^A-Za-z0-9._@-]/g, "_")}`;
    const claimed = path.join(spool, `${base}.taken`);
    let source = claimed;
    try {
      fs.renameSync(path.join(dir, name), claimed);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return false; // another worker took it
      if (code !== "EXDEV") throw error;
      source = path.join(dir, name); // the spool is on another filesystem: read it in place
    }
    let copy: SpoolFile;
    try {
      copy = await copyChecked(source, seen, path.join(spool, base));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" && source !== claimed) return false;
      if (!(error instanceof UnsafeFileError)) {
        putBack(name, source, claimed);
        throw error;
      }
      reject(name, error.message, { from: source === claimed ? claimed : undefined });
      return "rejected";
    }
    try {
      const { rows } = await pool.query<{ id: number }>("select pmt_jobs.request_file_export($1, $2, $3, $4) as id", [format, recipient, instance, copy.path]);
      logger.info({ file: name, requestId: rows[0]!.id }, "drop folder: file queued for mailing");
    } catch (error) {
      // Nothing queued: the original goes back for the next scan.
      fs.rmSync(copy.path, { force: true });
      putBack(name, source, claimed);
      throw error;
    }
    removeOriginal(name, source);
    return true;
  }

  /** Opens `source` without following it, checks it is what the scans saw, copies it from the descriptor to `target`. */
  async function copyChecked(source: string, seen: fs.Stats, target: string): Promise<SpoolFile> {
    const opened = openPlainFile(source);
    try {
      const { stat } = opened;
      if (stat.dev !== seen.dev || stat.ino !== seen.ino || stat.size !== seen.size || stat.mtimeMs !== seen.mtimeMs) {
        throw new UnsafeFileError("it was replaced or changed after it was judged complete");
      }
      return await copyPlainFile(opened, stat.size, target);
    } finally {
      fs.closeSync(opened.fd);
    }
  }

  /** Unlinks the taken original (or whatever is at its name now; unlink never follows a link). */
  function removeOriginal(name: string, source: string): void {
    try {
      fs.unlinkSync(source);
    } catch (error) {
      logger.error({ file: name, path: source, err: errorMessage(error) }, "drop folder: a mailed file could not be removed");
    }
  }

  /** After a failure that is not the file's fault: the claimed original back under its name (a rename: links stay links). */
  function putBack(name: string, source: string, claimed: string): void {
    if (source !== claimed) return; // read in place: never moved
    try {
      fs.renameSync(claimed, path.join(dir, name));
    } catch (error) {
      logger.error({ file: name, spooled: claimed, err: errorMessage(error) }, "drop folder: could not put a file back");
    }
  }

  async function scan(): Promise<{ taken: string[]; rejected: string[] }> {
    const taken: string[] = [];
    const rejected: string[] = [];
    let entries: Buffer[];
    try {
      entries = fs.readdirSync(dir, { encoding: "buffer" });
    } catch (error) {
      logger.error({ dir, err: errorMessage(error) }, "drop folder: cannot read it");
      return { taken, rejected };
    }
    const present = new Set<string>();
    for (const raw of entries) {
      const name = raw.toString("utf8");
      if (name === "rejected" || name.startsWith(".")) continue;
      if (!Buffer.from(name).equals(raw)) {
        reject(name, "the file name is not valid UTF-8", { raw });
        rejected.push(name);
        continue;
      }
      present.add(name);
      // A first look only: take() checks again on the descriptor it reads.
      const stat = fs.lstatSync(path.join(dir, name), { throwIfNoEntry: false });
      if (!stat) continue;
      const problem = plainFileProblem(stat);
      if (problem) {
        reject(name, problem);
        rejected.push(name);
        continue;
      }
      const parsed = parseDropName(name, options.instances);
      if (!parsed.ok) {
        reject(name, parsed.reason);
        rejected.push(name);
        continue;
      }
      // Complete once it is the same file, its size and mtime unchanged, since the previous scan.
      const signature = `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
      if (seen.get(name) !== signature || stat.size === 0) {
        seen.set(name, signature);
        continue;
      }
      const routed = route(parsed.instance);
      if ("reject" in routed) {
        reject(name, routed.reject);
        rejected.push(name);
        continue;
      }
      if ("retry" in routed) {
        // Left where it is (and judged complete): taken at the first scan after its database answers.
        if (!waiting.has(name)) logger.warn({ file: name, reason: routed.retry }, "drop folder: file left for later");
        waiting.add(name);
        continue;
      }
      waiting.delete(name);
      seen.delete(name);
      try {
        const outcome = await take(routed.pool, name, stat, parsed.recipient, parsed.instance, parsed.format);
        if (outcome === "rejected") rejected.push(name);
        else if (outcome) taken.push(name);
      } catch (error) {
        logger.error({ file: name, err: errorMessage(error) }, "drop folder: could not queue the file; will retry");
      }
    }
    for (const name of seen.keys()) if (!present.has(name)) seen.delete(name);
    for (const name of waiting) if (!present.has(name)) waiting.delete(name);
    return { taken, rejected };
  }

  const timer = setInterval(() => {
    if (!stopped) running = running.then(scan).catch(() => {});
  }, options.scanIntervalMs);
  timer.unref();

  return {
    scan: () => {
      const next = running.then(scan);
      running = next.catch(() => {});
      return next;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
