/**
 * One backup of one database: pg_dump (chosen to match the server) streamed
 * through sha256 into `<name>.partial` (0600, in the 0700 BACKUP_DIR),
 * fsynced, verified with `pg_restore --list`, then renamed, with its manifest
 * beside it and its row in pmt_jobs.backup. A failed or killed run leaves no
 * file that looks like a backup.
 *
 * Row counts of every table are taken in the very snapshot pg_dump dumps
 * (pg_export_snapshot + pg_dump --snapshot), while it dumps, so a test
 * restore can check it got the same data.
 */
import { spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { childEnv } from "../child-env.js";
import type { Config } from "../config.js";
import { clientConfig } from "../db/pool.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import { redactText } from "../redact.js";
import { failInterrupted, insertRunning, lastSucceeded, markFailed, markSucceeded, type BackupFormat, type BackupRow } from "./catalog.js";
import { ensurePrivateDir, fsyncDir, fsyncFile, hashDirectory, removePath } from "./files.js";
import { countRows } from "./counts.js";
import { writeManifest } from "./manifest.js";
import { lockBackup, type BackupLock } from "./lock.js";
import { chooseTool, findTools, searchDirs, serverMajor, type PgTool } from "./pgtools.js";
import { libpqEnv, type BackupTarget } from "./target.js";

export interface BackupDeps {
  config: Config;
  /** The queue database, where the catalog lives. */
  pool: pg.Pool;
  logger: Logger;
  /** Where pg_dump's output goes (tests pass a stream that fails like a full disk). */
  createOutput?: (partialPath: string) => Writable;
  /** Called with the pg_dump process once it runs (tests kill it). */
  onPgDump?: (child: ChildProcess) => void;
  /** Called as bytes are written (progress bars). */
  onProgress?: (bytes: number) => void;
  /**
   * OFFSITE_STREAM: a second destination fed while the local file is written
   * (custom and tar formats). A failure there never fails the backup.
   */
  tee?: (name: string) => { stream: Writable; done: Promise<unknown> };
}

export type BackupResult = BackupRow & { streamed: boolean };

const EXTENSION: Record<BackupFormat, string> = { custom: "dump", tar: "tar", directory: "dir" };
const FORMAT_FLAG: Record<BackupFormat, string> = { custom: "c", tar: "t", directory: "d" };

/** `pmt_20261126T000000Z`: database and UTC start time. */
export function backupName(database: string, at: Date, format: BackupFormat): string {
  const stamp = at.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");
  return `${database.replace(/[^A-Za-z0-9_-]/g, "_")}_${stamp}.${EXTENSION[format]}`;
}

/** The environment for pg_dump/pg_restore: the target's libpq settings and nothing of ours but childEnv's few (no secrets). */
export function toolEnv(url: string): NodeJS.ProcessEnv {
  return childEnv(libpqEnv(url));
}

interface ServerInfo {
  major: number;
  version: string;
}

async function serverInfo(client: pg.Client): Promise<ServerInfo> {
  const { rows } = await client.query<{ num: string; version: string }>(
    "select current_setting('server_version_num') as num, current_setting('server_version') as version",
  );
  return { major: serverMajor(Number(rows[0]!.num)), version: rows[0]!.version.split(" ")[0]! };
}

function checkSpace(dir: string, needed: number): void {
  const stat = fs.statfsSync(dir);
  const free = stat.bavail * stat.bsize;
  if (free < needed) {
    const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MB`;
    throw new Error(
      `not enough free space in ${dir}: ${mb(free)} free, ${mb(needed)} needed (last backup x BACKUP_SPACE_FACTOR); nothing was written`,
    );
  }
}

/** Runs a tool to completion; rejects with its stderr (passwords removed) on failure. */
export function runTool(tool: PgTool, args: string[], url: string, onChild?: (c: ChildProcess) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool.path, args, { env: toolEnv(url), stdio: ["ignore", "pipe", "pipe"] });
    onChild?.(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${path.basename(tool.path)} ${signal ? `was killed (${signal})` : `exited with ${code}`}: ${redactText(stderr.trim()) || "no message"}`));
    });
  });
}

export async function runBackup(deps: BackupDeps, target: BackupTarget, options: { format?: BackupFormat; jobId?: number } = {}): Promise<BackupResult> {
  const { config, pool } = deps;
  const format = options.format ?? config.backup.format;
  const dir = config.backup.dir;
  ensurePrivateDir(dir);

  // One run per database: a second one refuses here, before any row or file.
  const lock = await lockBackup(pool, target.database);
  try {
    return await runLocked(deps, target, format, options.jobId ?? null, lock);
  } finally {
    await lock.release();
  }
}

async function runLocked(deps: BackupDeps, target: BackupTarget, format: BackupFormat, jobId: number | null, lock: BackupLock): Promise<BackupResult> {
  const { config, pool, logger } = deps;
  const dir = config.backup.dir;
  const row = await insertRunning(pool, target.database, format, jobId);
  // Holding the lock, no other run of this database is alive: its running rows and .partial files are leftovers.
  const interrupted = await failInterrupted(pool, target.database, row.id);
  if (interrupted) logger.warn({ database: target.database, interrupted }, "earlier backup runs were interrupted; marked failed");
  removeLeftovers(dir, target.database);

  let name = backupName(target.database, row.started_at, format);
  // Two runs in the same second (a manual run beside the cron one) must not overwrite each other.
  if (fs.existsSync(path.join(dir, name))) name = name.replace(/(\.[a-z]+)$/, `_${row.id}$1`);
  const finalPath = path.join(dir, name);
  const partialPath = `${finalPath}.partial`;
  const snapshotClient = new pg.Client(clientConfig(target.url, { application_name: "pmt-worker backup" }));
  snapshotClient.on("error", () => {});
  let versions: { server?: string; pgDump?: string } = {};
  let child: ChildProcess | undefined;
  let tee: { stream: Writable; done: Promise<unknown> } | undefined;
  let teeFailed = false;
  let lockLost: Error | undefined;
  lock.onLost((error) => {
    lockLost = error;
    if (child && child.exitCode === null) child.kill("SIGKILL");
  });
  try {
    await snapshotClient.connect();
    const server = await serverInfo(snapshotClient);
    versions = { server: server.version };
    const dirs = searchDirs(config.backup.pgBinDir);
    const pgDump = chooseTool("pg_dump", findTools("pg_dump", dirs), server);
    const pgRestore = chooseTool("pg_restore", findTools("pg_restore", dirs), server);
    versions.pgDump = pgDump.version;

    const previous = await lastSucceeded(pool, target.database);
    if (previous?.bytes) checkSpace(dir, previous.bytes * config.backup.spaceFactor);

    await snapshotClient.query("begin isolation level repeatable read read only");
    // The counts run beside pg_dump: one process, not parallel workers competing with the dump for the cores.
    await snapshotClient.query("set local max_parallel_workers_per_gather = 0");
    const snapshot = (await snapshotClient.query<{ s: string }>("select pg_export_snapshot() as s")).rows[0]!.s;
    const counting = countRows(snapshotClient);
    counting.catch(() => {});

    const args = [`--format=${FORMAT_FLAG[format]}`, `--snapshot=${snapshot}`, "--no-password"];
    let bytes = 0;
    let sha256: string;
    let files: { name: string; bytes: number; sha256: string }[] | undefined;
    if (format === "directory") {
      await runTool(pgDump, [...args, `--jobs=${config.backup.jobs}`, `--file=${partialPath}`], target.url, (c) => {
        child = c;
        deps.onPgDump?.(c);
      });
      const hashed = await hashDirectory(partialPath);
      ({ bytes, sha256, files } = hashed);
      for (const f of hashed.files) fsyncFile(path.join(partialPath, f.name));
    } else {
      const hash = crypto.createHash("sha256");
      tee = deps.tee?.(name);
      if (tee) {
        tee.done.catch((error) => {
          teeFailed = true;
          tee!.stream.destroy(); // wakes a write waiting for "drain"
          logger.warn({ database: target.database, err: redactText(errorMessage(error)) }, "streaming the backup offsite failed; it will be uploaded afterwards");
        });
        tee.stream.on("error", () => (teeFailed = true));
      }
      const measure = new Transform({
        transform(chunk: Buffer, _e, done) {
          hash.update(chunk);
          bytes += chunk.length;
          deps.onProgress?.(bytes);
          if (tee && !teeFailed && !tee.stream.write(chunk)) {
            // The store is slower than the disk: wait for it rather than buffer without bound
            // (or stop waiting when it fails).
            const stream = tee.stream;
            const resume = () => {
              stream.off("drain", resume).off("close", resume).off("error", resume);
              done(null, chunk);
            };
            stream.once("drain", resume).once("close", resume).once("error", resume);
            return;
          }
          done(null, chunk);
        },
        flush(done) {
          if (tee && !teeFailed) tee.stream.end();
          done();
        },
      });
      const output = deps.createOutput?.(partialPath) ?? fs.createWriteStream(partialPath, { mode: 0o600, flags: "wx" });
      const proc = spawn(pgDump.path, args, { env: toolEnv(target.url), stdio: ["ignore", "pipe", "pipe"] });
      child = proc;
      deps.onPgDump?.(proc);
      let stderr = "";
      proc.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
      const exited = new Promise<void>((resolve, reject) => {
        proc.on("error", reject);
        proc.on("close", (code, signal) => {
          if (code === 0) resolve();
          else reject(new Error(`pg_dump ${signal ? `was killed (${signal})` : `exited with ${code}`}: ${redactText(stderr.trim()) || "no message"}`));
        });
      });
      exited.catch(() => {});
      try {
        await pipeline(proc.stdout, measure, output);
      } catch (error) {
        proc.kill("SIGKILL");
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOSPC" || code === "EDQUOT") {
          throw new Error(`disk full writing ${partialPath} (${code}); the partial file was removed, earlier backups are untouched`, { cause: error });
        }
        await exited; // pg_dump's own error says more than the closed pipe
        throw error;
      }
      await exited;
      sha256 = hash.digest("hex");
      fsyncFile(partialPath);
    }
    const tableCounts = await counting;
    await snapshotClient.query("commit");
    if (tee) await tee.done.catch(() => {});

    // A backup that pg_restore cannot read does not count.
    const listing = await runTool(pgRestore, ["--list", partialPath], target.url);
    if (!listing.includes("TABLE DATA") && !listing.includes("Archive created")) {
      throw new Error(`pg_restore --list found no contents in ${partialPath}`);
    }

    // Without the lock another run may have started: it owns the folder now.
    if (lockLost) throw lockLost;
    fs.renameSync(partialPath, finalPath);
    fsyncDir(finalPath);
    const done = await markSucceeded(pool, row.id, {
      file: name,
      localPath: finalPath,
      bytes,
      sha256,
      serverVersion: server.version,
      pgDumpVersion: pgDump.version,
      tableCounts,
    });
    writeManifest(finalPath, {
      kind: "pmt-worker backup",
      version: 1,
      database: target.database,
      format,
      file: name,
      bytes,
      sha256,
      files,
      server_version: server.version,
      pg_dump_version: pgDump.version,
      tiers: done.tiers,
      started_at: done.started_at.toISOString(),
      finished_at: (done.finished_at ?? new Date()).toISOString(),
      table_counts: tableCounts,
    });
    logger.info({ database: target.database, file: name, bytes, format }, "backup succeeded");
    return { ...done, streamed: tee !== undefined && !teeFailed };
  } catch (error) {
    if (tee && !teeFailed) tee.stream.destroy(new Error("the backup failed"));
    if (child && child.exitCode === null) child.kill("SIGKILL");
    const pid = (snapshotClient as unknown as { processID?: number }).processID;
    if (pid) await pool.query("select pg_cancel_backend($1)", [pid]).catch(() => {});
    if (!lockLost) removePath(partialPath);
    const message = redactText(errorMessage(lockLost ?? error));
    await markFailed(pool, row.id, message, versions).catch((e) => logger.error({ err: errorMessage(e) }, "could not record a failed backup"));
    logger.error({ database: target.database, err: message }, "backup failed");
    throw error;
  } finally {
    await snapshotClient.end().catch(() => {});
  }
}

/** Whether `name` is a backup file of this database (exactly, as isPartialOf). */
export function isBackupOf(name: string, database: string): boolean {
  const prefix = database.replace(/[^A-Za-z0-9_-]/g, "_");
  return name.startsWith(`${prefix}_`) && /^_\d{8}T\d{6}Z(_\d+)?\.(dump|tar|dir)$/.test(name.slice(prefix.length));
}

/** Whether `name` is a `.partial` of this database's backups (exactly: `pmt_...` is not `pmt_test_...`'s). */
export function isPartialOf(name: string, database: string): boolean {
  const prefix = database.replace(/[^A-Za-z0-9_-]/g, "_");
  return name.startsWith(`${prefix}_`) && /^_\d{8}T\d{6}Z(_\d+)?\.(dump|tar|dir)\.partial$/.test(name.slice(prefix.length));
}

/** `.partial` files and folders of this database left by a killed run. Only the holder of its backup lock may call this. */
export function removeLeftovers(dir: string, database: string): string[] {
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (isPartialOf(name, database)) {
      removePath(path.join(dir, name));
      removed.push(name);
    }
  }
  return removed;
}
