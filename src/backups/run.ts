/**
 * One backup of one database: pg_dump (chosen to match the server) streamed
 * through sha256 into `<name>.partial` (0600, in the 0700 BACKUP_DIR),
 * fsynced, verified with `pg_restore --list`, then renamed, with its manifest
 * beside it and its row in pmt_jobs.backup. A failed or killed run leaves no
 * file that looks like a backup.
 *
 * Row counts of every table are taken in the very snapshot pg_dump dumps
 * (pg_export_snapshot + pg_dump --snapshot), while it dumps, so a test
 * restore can check it got the same data. So are the roles, memberships and
 * database settings the dump needs on a new server (globals.ts), written to
 * `<name>.globals.json` beside it: a run that cannot capture them fails.
 */
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import type { Config } from "../config.js";
import { clientConfig } from "../db/pool.js";
import { UserError, errorMessage } from "../errors.js";
import { encryptStream } from "../io/age.js";
import { Measure, measuringTap, Tee, type Measured } from "../io/measure.js";
import { freeBytes } from "../io/space.js";
import type { Logger } from "../log.js";
import { runTool, serverVersion, startTool, toolFor, type PgTool, type ServerVersion } from "../pgtools/tools.js";
import { redactText } from "../redact.js";
import { failInterrupted, insertRunning, lastSucceeded, markFailed, markSucceeded, type BackupFormat, type BackupRow } from "./catalog.js";
import { ensurePrivateDir, fsyncDir, fsyncFile, hashDirectory, removePath } from "./files.js";
import { countRows } from "./counts.js";
import { captureGlobals } from "./globals-capture.js";
import { globalsPath, writeGlobals, type Globals } from "./globals.js";
import { writeManifest } from "./manifest.js";
import { lockBackup, type BackupLock } from "./lock.js";
import type { BackupTarget } from "./target.js";

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

/** `pmt_20261126T000000Z.dump`: database, UTC start time, format; `.age` after it when encrypted on the local disk. */
export function backupName(database: string, at: Date, format: BackupFormat, sealed = false): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
  return `${database.replace(/[^A-Za-z0-9_-]/g, "_")}_${stamp}.${EXTENSION[format]}${sealed ? ".age" : ""}`;
}

export async function runBackup(deps: BackupDeps, target: BackupTarget, options: { format?: BackupFormat; jobId?: number } = {}): Promise<BackupResult> {
  const { config, pool } = deps;
  const format = options.format ?? config.backup.format;
  const dir = config.backup.dir;
  ensurePrivateDir(dir);

  // One run per database: a second one refuses here, before any row or file.
  if (config.offsite.encryptLocal && format === "directory") {
    throw new UserError("BACKUP_ENCRYPT_LOCAL encrypts one file: use the custom or tar format (--format), not directory; nothing was written");
  }
  const lock = await lockBackup(pool, target.database);
  try {
    return await runLocked(deps, target, format, options.jobId ?? null, lock);
  } finally {
    await lock.release();
  }
}

/** One run under way: what its steps share, and what a failure must stop or clean up. */
interface Run {
  deps: BackupDeps;
  target: BackupTarget;
  format: BackupFormat;
  row: BackupRow;
  name: string;
  finalPath: string;
  partialPath: string;
  /** Holds the snapshot pg_dump dumps, and counts its rows. */
  snapshotClient: pg.Client;
  /** Recorded on the row even when the run fails. */
  versions: { server?: string; pgDump?: string };
  /** pg_dump, once it runs. */
  child?: ChildProcess;
  tee?: Tee;
  /** BACKUP_ENCRYPT_LOCAL: the recipients the file is encrypted to as it is written. */
  sealed?: string[];
  /** For an encrypted file: pg_restore --list of the plaintext, read while it was written. */
  listing?: Promise<string>;
  /** Set when the backup lock was lost: another run may own the folder now. */
  lockLost?: Error;
  /** The globals file, once its writing started: removed if the dump never gets its final name. */
  globalsFile?: string;
}

/** A dump's size and sha256 (and, for the directory format, each file's). */
interface Dumped {
  bytes: number;
  sha256: string;
  files?: { name: string; bytes: number; sha256: string }[];
  /** An encrypted file: the size and sha256 of what pg_dump wrote (bytes/sha256 above are the file's). */
  plaintext?: Measured;
}

async function runLocked(deps: BackupDeps, target: BackupTarget, format: BackupFormat, jobId: number | null, lock: BackupLock): Promise<BackupResult> {
  const { logger } = deps;
  const run = await startRun(deps, target, format, jobId);
  lock.onLost((error) => {
    run.lockLost = error;
    killDump(run);
  });
  try {
    await run.snapshotClient.connect();
    const server = await serverVersion(run.snapshotClient);
    run.versions = { server: server.version };
    const tools = chooseTools(deps.config, server);
    run.versions.pgDump = tools.pgDump.version;
    await checkSpace(deps, target.database);

    const snapshot = await openSnapshot(run.snapshotClient);
    const dumped =
      format === "directory"
        ? await dumpDirectory(run, tools.pgDump, snapshot.id)
        : run.sealed
          ? await dumpSealed(run, tools, snapshot.id)
          : await dumpFile(run, tools.pgDump, snapshot.id);
    const tableCounts = await snapshot.counting;
    const globals = await captureInSnapshot(run, server);
    await run.snapshotClient.query("commit");
    if (run.tee) await run.tee.settled();

    await checkListing(tools.pgRestore, run.partialPath, target.url, run.listing);
    // Without the lock another run may have started: it owns the folder now.
    if (run.lockLost) throw run.lockLost;
    const done = await publish(run, dumped, server, tools.pgDump, { tableCounts, globals });
    logger.info({ database: target.database, file: run.name, bytes: dumped.bytes, format }, "backup succeeded");
    return { ...done, streamed: run.tee !== undefined && !run.tee.failed };
  } catch (error) {
    await failRun(run, error);
    throw error;
  } finally {
    await run.snapshotClient.end().catch(() => {});
  }
}

/** The catalog row, the leftovers of runs that died, and the file's name. */
async function startRun(deps: BackupDeps, target: BackupTarget, format: BackupFormat, jobId: number | null): Promise<Run> {
  const { config, pool, logger } = deps;
  const dir = config.backup.dir;
  const row = await insertRunning(pool, target.database, format, jobId);
  // Holding the lock, no other run of this database is alive: its running rows and .partial files are leftovers.
  const interrupted = await failInterrupted(pool, target.database, row.id);
  if (interrupted) logger.warn({ database: target.database, interrupted }, "earlier backup runs were interrupted; marked failed");
  removeLeftovers(dir, target.database);

  const sealed = config.offsite.encryptLocal ? config.offsite.encryptTo : undefined;
  let name = backupName(target.database, row.started_at, format, !!sealed);
  // Two runs in the same second (a manual run beside the cron one) must not overwrite each other.
  if (fs.existsSync(path.join(dir, name))) name = name.replace(/(\.(dump|tar|dir)(\.age)?)$/, `_${row.id}$1`);
  const finalPath = path.join(dir, name);
  const snapshotClient = new pg.Client(clientConfig(target.url, { application_name: "pmt-worker backup" }));
  snapshotClient.on("error", () => {});
  return { deps, target, format, row, name, finalPath, partialPath: `${finalPath}.partial`, snapshotClient, versions: {}, ...(sealed ? { sealed } : {}) };
}

function chooseTools(config: Config, server: ServerVersion): { pgDump: PgTool; pgRestore: PgTool } {
  return { pgDump: toolFor("pg_dump", server, config.backup.pgBinDir), pgRestore: toolFor("pg_restore", server, config.backup.pgBinDir) };
}

/** Room for a backup the size of the last one (times BACKUP_SPACE_FACTOR), before anything is written. */
async function checkSpace(deps: BackupDeps, database: string): Promise<void> {
  const { config } = deps;
  const previous = await lastSucceeded(deps.pool, database);
  if (!previous?.bytes) return;
  const dir = config.backup.dir;
  const needed = previous.bytes * config.backup.spaceFactor;
  const free = freeBytes(dir);
  if (free < needed) {
    const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MB`;
    throw new Error(`not enough free space in ${dir}: ${mb(free)} free, ${mb(needed)} needed (last backup x BACKUP_SPACE_FACTOR); nothing was written`);
  }
}

/** The globals of the dumped database, read in the dump's snapshot; a failure fails the backup, saying what failed. */
async function captureInSnapshot(run: Run, server: ServerVersion): Promise<Globals> {
  try {
    return await captureGlobals(run.snapshotClient, run.target.database, server.version);
  } catch (error) {
    throw new Error(
      `could not capture the roles, memberships and database settings of ${run.target.database} (the .globals.json beside each backup): ${errorMessage(error)}`,
      { cause: error },
    );
  }
}

/** The snapshot pg_dump will dump, and the row counts of every table taken in it while it dumps. */
async function openSnapshot(client: pg.Client): Promise<{ id: string; counting: Promise<Record<string, number>> }> {
  await client.query("begin isolation level repeatable read read only");
  // The counts run beside pg_dump: one process, not parallel workers competing with the dump for the cores.
  await client.query("set local max_parallel_workers_per_gather = 0");
  const id = (await client.query<{ s: string }>("select pg_export_snapshot() as s")).rows[0]!.s;
  const counting = countRows(client);
  counting.catch(() => {});
  return { id, counting };
}

function dumpArgs(format: BackupFormat, snapshot: string): string[] {
  return [`--format=${FORMAT_FLAG[format]}`, `--snapshot=${snapshot}`, "--no-password"];
}

/** Directory format: pg_dump writes the folder itself (in parallel); then every file is hashed and fsynced. */
async function dumpDirectory(run: Run, pgDump: PgTool, snapshot: string): Promise<Dumped> {
  const { deps } = run;
  const args = [...dumpArgs(run.format, snapshot), `--jobs=${deps.config.backup.jobs}`, `--file=${run.partialPath}`];
  await runTool(pgDump, args, run.target.url, (c) => {
    run.child = c;
    deps.onPgDump?.(c);
  });
  const hashed = await hashDirectory(run.partialPath);
  for (const f of hashed.files) fsyncFile(path.join(run.partialPath, f.name));
  return hashed;
}

/** Custom and tar formats: pg_dump's stdout through the measuring tap (and the offsite tee) into the .partial, fsynced. */
async function dumpFile(run: Run, pgDump: PgTool, snapshot: string): Promise<Dumped> {
  const { deps, partialPath } = run;
  run.tee = openTee(run);
  const measure = new Measure();
  const tap = measuringTap(measure, { onProgress: deps.onProgress, tee: run.tee });
  const output = deps.createOutput?.(partialPath) ?? fs.createWriteStream(partialPath, { mode: 0o600, flags: "wx" });
  const dump = startTool(pgDump, dumpArgs(run.format, snapshot), run.target.url, { stdin: "ignore", stdout: "pipe" });
  run.child = dump.child;
  deps.onPgDump?.(dump.child);
  try {
    await pipeline(dump.stdout!, tap, output);
  } catch (error) {
    dump.child.kill("SIGKILL");
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOSPC" || code === "EDQUOT") {
      throw new Error(`disk full writing ${partialPath} (${code}); the partial file was removed, earlier backups are untouched`, { cause: error });
    }
    await dump.exited; // pg_dump's own error says more than the closed pipe
    throw error;
  }
  await dump.exited;
  const dumped = measure.result();
  fsyncFile(partialPath);
  return dumped;
}

/**
 * BACKUP_ENCRYPT_LOCAL: pg_dump's stdout measured (the plaintext's sha256, for
 * the manifest) and fed to `pg_restore --list` on its stdin (the check a file
 * gets, without plaintext on the disk), encrypted to the recipients, then the
 * age file measured (the catalog's size and sha256, the offsite tee) into the
 * .partial, fsynced.
 */
async function dumpSealed(run: Run, tools: { pgDump: PgTool; pgRestore: PgTool }, snapshot: string): Promise<Dumped> {
  const { deps, partialPath } = run;
  run.tee = openTee(run);
  const lister = startTool(tools.pgRestore, ["--list"], run.target.url, { stdin: "pipe", stdout: "pipe" });
  let listed = "";
  lister.stdout!.on("data", (d) => (listed += d));
  run.listing = lister.exited.then(() => listed);
  run.listing.catch(() => {});
  // pg_restore stops reading once it has the table of contents: a lister that is gone is fed no more, and its verdict is its exit.
  const listTee = new Tee(lister.child.stdin!, lister.exited, () => {});
  const plain = new Measure();
  const sealed = new Measure();
  const plainTap = measuringTap(plain, { tee: listTee });
  const encrypted = await encryptStream(plainTap, run.sealed!);
  const output = deps.createOutput?.(partialPath) ?? fs.createWriteStream(partialPath, { mode: 0o600, flags: "wx" });
  const dump = startTool(tools.pgDump, dumpArgs(run.format, snapshot), run.target.url, { stdin: "ignore", stdout: "pipe" });
  run.child = dump.child;
  deps.onPgDump?.(dump.child);
  try {
    await Promise.all([pipeline(dump.stdout!, plainTap), pipeline(encrypted, measuringTap(sealed, { onProgress: deps.onProgress, tee: run.tee }), output)]);
  } catch (error) {
    dump.child.kill("SIGKILL");
    lister.child.kill("SIGKILL");
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOSPC" || code === "EDQUOT") {
      throw new Error(`disk full writing ${partialPath} (${code}); the partial file was removed, earlier backups are untouched`, { cause: error });
    }
    await dump.exited;
    throw error;
  }
  await dump.exited;
  fsyncFile(partialPath);
  return { ...sealed.result(), plaintext: plain.result() };
}

/** The OFFSITE_STREAM destination, if any: its failure is logged and leaves the copy to the upload job. */
function openTee(run: Run): Tee | undefined {
  const { deps, target } = run;
  const second = deps.tee?.(run.name);
  if (!second) return undefined;
  return new Tee(second.stream, second.done, (error) => {
    deps.logger.warn(
      { database: target.database, err: redactText(errorMessage(error)) },
      "streaming the backup offsite failed; it will be uploaded afterwards",
    );
  });
}

/** A backup that pg_restore cannot read does not count. */
async function checkListing(pgRestore: PgTool, partialPath: string, url: string, read?: Promise<string>): Promise<void> {
  const listing = read ? await read : await runTool(pgRestore, ["--list", partialPath], url);
  if (!listing.includes("TABLE DATA") && !listing.includes("Archive created")) {
    throw new Error(`pg_restore --list found no contents in ${partialPath}`);
  }
}

/** The .partial becomes the backup: its globals file written, renamed (durably), its row succeeded, its manifest beside it. */
async function publish(
  run: Run,
  dumped: Dumped,
  server: ServerVersion,
  pgDump: PgTool,
  taken: { tableCounts: Record<string, number>; globals: Globals },
): Promise<BackupRow> {
  const { deps, target, name, finalPath } = run;
  const { tableCounts } = taken;
  // Before the dump is renamed: a dump never stands without its globals file.
  run.globalsFile = globalsPath(finalPath);
  const globals = writeGlobals(finalPath, taken.globals);
  fs.renameSync(run.partialPath, finalPath);
  fsyncDir(finalPath);
  const { bytes, sha256, files } = dumped;
  const done = await markSucceeded(deps.pool, run.row.id, {
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
    format: run.format,
    file: name,
    // An encrypted file: the plaintext's here, the file's under encryption (the catalog's).
    bytes: dumped.plaintext?.bytes ?? bytes,
    sha256: dumped.plaintext?.sha256 ?? sha256,
    files,
    ...(run.sealed ? { encryption: { format: "age" as const, recipients: run.sealed, bytes, sha256 } } : {}),
    server_version: server.version,
    pg_dump_version: pgDump.version,
    tiers: done.tiers,
    started_at: done.started_at.toISOString(),
    finished_at: (done.finished_at ?? new Date()).toISOString(),
    // Table names are the database's: not written beside an encrypted file (the catalog keeps them).
    table_counts: run.sealed ? {} : tableCounts,
    globals,
  });
  return done;
}

function killDump(run: Run): void {
  if (run.child && run.child.exitCode === null) run.child.kill("SIGKILL");
}

/** Stops whatever still runs, removes the .partial (unless another run owns the folder now), records the failure. */
async function failRun(run: Run, error: unknown): Promise<void> {
  const { deps, target } = run;
  run.tee?.abort(new Error("the backup failed"));
  killDump(run);
  const pid = (run.snapshotClient as unknown as { processID?: number }).processID;
  if (pid) await deps.pool.query("select pg_cancel_backend($1)", [pid]).catch(() => {});
  if (!run.lockLost) {
    removePath(run.partialPath);
    if (run.globalsFile && !fs.existsSync(run.finalPath)) {
      removePath(run.globalsFile);
      removePath(`${run.globalsFile}.partial`);
    }
  }
  const message = redactText(errorMessage(run.lockLost ?? error));
  await markFailed(deps.pool, run.row.id, message, run.versions).catch((e) => deps.logger.error({ err: errorMessage(e) }, "could not record a failed backup"));
  deps.logger.error({ database: target.database, err: message }, "backup failed");
}

/** Whether `name` is a backup file of this database (exactly, as isPartialOf). */
export function isBackupOf(name: string, database: string): boolean {
  const prefix = database.replace(/[^A-Za-z0-9_-]/g, "_");
  return name.startsWith(`${prefix}_`) && /^_\d{8}T\d{6}Z(_\d+)?\.(dump|tar|dir)(\.age)?$/.test(name.slice(prefix.length));
}

/**
 * Whether `name` is a `.partial` of this database's backups (exactly: `pmt_...` is not `pmt_test_...`'s):
 * of a dump, or of its globals file (written by the run that holds the lock; a manifest's `.partial` may be retention's, in flight).
 */
export function isPartialOf(name: string, database: string): boolean {
  const prefix = database.replace(/[^A-Za-z0-9_-]/g, "_");
  return name.startsWith(`${prefix}_`) && /^_\d{8}T\d{6}Z(_\d+)?\.(dump|tar|dir)(\.age)?(\.globals\.json)?\.partial$/.test(name.slice(prefix.length));
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
