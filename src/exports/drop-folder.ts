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
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import { parseDropName } from "./drop-name.js";
import { spoolDir } from "./spool.js";

export interface DropFolderOptions {
  dir: string;
  pmtHome: string;
  pool: pg.Pool;
  logger: Logger;
  scanIntervalMs: number;
}

export interface DropFolder {
  /** One scan now; resolves with the names taken and rejected. */
  scan(): Promise<{ taken: string[]; rejected: string[] }>;
  stop(): Promise<void>;
}

/** rename, or copy + unlink across filesystems (EXDEV). */
async function move(from: string, to: string): Promise<void> {
  try {
    fs.renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
    await pipeline(fs.createReadStream(from), fs.createWriteStream(to, { mode: 0o600, flags: "wx" }));
    fs.unlinkSync(from);
  }
}

export function startDropFolder(options: DropFolderOptions): DropFolder {
  const { dir, pool, logger } = options;
  const rejectedDir = path.join(dir, "rejected");
  /** name -> "size:mtime" seen at the previous scan */
  const seen = new Map<string, string>();
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;

  /** Moves an entry to rejected/ under a dated name; `raw`: its name's bytes when they are not UTF-8. */
  function reject(name: string, reason: string, raw?: Buffer): void {
    fs.mkdirSync(rejectedDir, { recursive: true, mode: 0o700 });
    // The dated name must still fit in 255 bytes.
    let tail = raw ? `name-not-utf8-${raw.toString("hex").slice(0, 64)}` : name;
    while (Buffer.byteLength(tail) > 200) tail = tail.slice(0, -1);
    const target = path.join(rejectedDir, `${new Date().toISOString().replace(/[:.]/g, "-")}_${tail}`);
    try {
      fs.renameSync(raw ? Buffer.concat([Buffer.from(dir + path.sep), raw]) : path.join(dir, name), target);
      logger.warn({ file: name, rejectedTo: target, reason }, "drop folder: file rejected, not mailed");
    } catch (error) {
      logger.error({ file: name, reason, err: errorMessage(error) }, "drop folder: could not move a rejected file");
    }
  }

  async function take(name: string, recipient: string, instance: string, format: "csv" | "iati"): Promise<boolean> {
    const spooled = path.join(spoolDir(options.pmtHome), `drop-${Date.now()}-${process.pid}-${name.replace(/[^A-Za-z0-9._@-]/g, "_")}`);
    try {
      await move(path.join(dir, name), spooled);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false; // another worker took it
      throw error;
    }
    fs.chmodSync(spooled, 0o600);
    try {
      const { rows } = await pool.query<{ id: number }>("select pmt_jobs.request_file_export($1, $2, $3, $4) as id", [
        format,
        recipient,
        instance,
        spooled,
      ]);
      logger.info({ file: name, requestId: rows[0]!.id }, "drop folder: file queued for mailing");
      return true;
    } catch (error) {
      // Nothing queued: put it back for the next scan.
      await move(spooled, path.join(dir, name)).catch(() => {});
      throw error;
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
        reject(name, "the file name is not valid UTF-8", raw);
        rejected.push(name);
        continue;
      }
      present.add(name);
      const stat = fs.lstatSync(path.join(dir, name), { throwIfNoEntry: false });
      if (!stat) continue;
      if (stat.isSymbolicLink() || !stat.isFile()) {
        reject(name, stat.isSymbolicLink() ? "a symbolic link is never followed" : "not a regular file");
        rejected.push(name);
        continue;
      }
      const parsed = parseDropName(name);
      if (!parsed.ok) {
        reject(name, parsed.reason);
        rejected.push(name);
        continue;
      }
      // Complete once its size and mtime did not change since the previous scan.
      const signature = `${stat.size}:${stat.mtimeMs}`;
      if (seen.get(name) !== signature || stat.size === 0) {
        seen.set(name, signature);
        continue;
      }
      seen.delete(name);
      try {
        if (await take(name, parsed.recipient, parsed.instance, parsed.format)) taken.push(name);
      } catch (error) {
        logger.error({ file: name, err: errorMessage(error) }, "drop folder: could not queue the file; will retry");
      }
    }
    for (const name of seen.keys()) if (!present.has(name)) seen.delete(name);
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
