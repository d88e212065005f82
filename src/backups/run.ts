/**
 * One backup of one database: pg_dump (chosen to match the server) streamed
 * through sha256 into `<name>.partial` (0600, in the 0700 BACKUP_DIR) and,
 * as it is written, into `pg_restore --list` (a dump it cannot read fails the
 * run), fsynced, then renamed, with its manifest beside it and its row in
 * pmt_jobs.backup. A failed or killed run leaves no file that looks like a
 * backup.
 *
 * Row counts of every table are taken in the very snapshot pg_dump dumps
 * (pg_export_snapshot + pg_dump --snapshot), while it dumps, so a test
 * restore can check it got the same data. So are the roles, memberships and
 * database settings the dump needs on a new server (globals.ts), written to
 * `<name>.globals.json` beside it: a run that cannot capture them fails.
 *
 * What pg_dump does not do is the run's fixed cost (docs/performance.md,
 * backup): so the tools' versions are asked while the lock and the catalog
 * row are taken, the snapshot opens in one round trip, and the globals, the
 * listing and most of the disk flushing happen while pg_dump runs.
 */
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import type { Config } from "../config.js";
import { clientConfig, openClient } from "../db/pool.js";
import { UserError, errorMessage } from "../errors.js";
import { encryptStream } from "../io/age.js";
import { Measure, measuringTap, sha256Of, Tee, type Measured } from "../io/measure.js";
import { freeBytes } from "../io/space.js";
import type { Logger } from "../log.js";
import { prefetchTools, runTool, serverMajor, startTool, toolForAsync, type PgTool, type ServerVersion } from "../pgtools/tools.js";
import { redactText } from "../redact.js";
import { failInterrupted, insertRunning, lastSucceeded, markFailed, markSucceeded, type BackupFormat, type BackupRow } from "./catalog.js";
import { ensurePrivateDir, fsyncDir, fsyncFile, hashDirectory, removePath } from "./files.js";
import { countRows } from "./counts.js";
import { captureGlobals } from "./globals-capture.js";
import { globalsPath, type Globals } from "./globals.js";
import { writeManifest } from "./manifest.js";
import { lockBackup, type BackupLock } from "./lock.js";
import type { BackupTarget } from "./target.js";
import { humanBytes } from "../human.js";

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
  // Asked while the lock and the catalog row are taken (a process start each; Debian's wrapper is Perl).
  prefetchTools(config.backup.pgBinDir);
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
  /** pg_restore --list reading the dump as it is written (not for the directory format). */
  lister?: ChildProcess;
  tee?: Tee;
  /** BACKUP_ENCRYPT_LOCAL: the recipients the file is encrypted to as it is written. */
  sealed?: string[];
  /** pg_restore --list of what pg_dump wrote, read while it was written (custom and tar; the plaintext of an encrypted file). */
  listing?: Promise<string>;
  /** Set when the backup lock was lost: another run may own the folder now. */
  lockLost?: Error;
  /** The globals file, once its writing started: removed if the dump never gets its final name. */
  globalsFile?: string;
  /** Its writing, waited for before a failed run removes it. */
  globalsWriting?: Promise<unknown>;
  /** The snapshot client's connection, started with the catalog row. */
  connecting: Promise<unknown>;
}

/** The globals file written (as `.partial`, fsynced) while pg_dump runs: renamed beside the dump when it is published. */
interface GlobalsWritten {
  partial: string;
  /** What the manifest records. */
  summary: { file: string; bytes: number; sha256: string; roles: string[] };
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
    // The snapshot opened while the space is checked: nothing is written before both are done.
    const [snapshot] = await Promise.all([openSnapshot(run.snapshotClient, run.connecting), checkSpace(deps, target.database)]);
    const { server } = snapshot;
    run.versions = { server: server.version };
    const tools = await chooseTools(deps.config, server);
    run.versions.pgDump = tools.pgDump.version;

    // In the snapshot, while pg_dump dumps it: the globals (written at once), then the row counts.
    const captured = captureInSnapshot(run, server);
    const globals = captured.then((g) => writeGlobalsPartial(run, g));
    run.globalsWriting = globals;
    const counting = captured.then(() => countRows(run.snapshotClient));
    globals.catch(() => {});
    counting.catch(() => {});
    const dumped =
      format === "directory"
        ? await dumpDirectory(run, tools.pgDump, snapshot.id)
        : run.sealed
          ? await dumpSealed(run, tools, snapshot.id)
          : await dumpFile(run, tools, snapshot.id);
    const taken = { globals: await globals, tableCounts: await counting };
    await run.snapshotClient.query("commit");
    if (run.tee) await run.tee.settled();

    await checkListing(tools.pgRestore, run.partialPath, target.url, run.listing);
    // Without the lock another run may have started: it owns the folder now.
    if (run.lockLost) throw run.lockLost;
    const done = await publish(run, dumped, server, tools.pgDump, taken);
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
  // Connecting (TCP, authentication, a backend started) while the catalog is written.
  const snapshotClient = openClient(clientConfig(target.url, { application_name: "pmt-worker backup" }));
  const connecting = snapshotClient.connect();
  connecting.catch(() => {});
  let row: BackupRow;
  try {
    row = await insertRunning(pool, target.database, format, jobId);
    // Holding the lock, no other run of this database is alive: its running rows and .partial files are leftovers.
    const interrupted = await failInterrupted(pool, target.database, row.id);
    if (interrupted) logger.warn({ database: target.database, interrupted }, "earlier backup runs were interrupted; marked failed");
    removeLeftovers(dir, target.database);
  } catch (error) {
    await snapshotClient.end().catch(() => {});
    throw error;
  }

  const sealed = config.offsite.encryptLocal ? config.offsite.encryptTo : undefined;
  let name = backupName(target.database, row.started_at, format, !!sealed);
  // Two runs in the same second (a manual run beside the cron one) must not overwrite each other.
  if (fs.existsSync(path.join(dir, name))) name = name.replace(/(\.(dump|tar|dir)(\.age)?)$/, `_${row.id}$1`);
  const finalPath = path.join(dir, name);
  return {
    deps,
    target,
    format,
    row,
    name,
    finalPath,
    partialPath: `${finalPath}.partial`,
    snapshotClient,
    connecting,
    versions: {},
    ...(sealed ? { sealed } : {}),
  };
}

async function chooseTools(config: Config, server: ServerVersion): Promise<{ pgDump: PgTool; pgRestore: PgTool }> {
  const [pgDump, pgRestore] = await Promise.all([
    toolForAsync("pg_dump", server, config.backup.pgBinDir),
    toolForAsync("pg_restore", server, config.backup.pgBinDir),
  ]);
  return { pgDump, pgRestore };
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
    throw new Error(
      `not enough free space in ${dir}: ${humanBytes(free)} free, ${humanBytes(needed)} needed (last backup x BACKUP_SPACE_FACTOR); nothing was written`,
    );
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

/** Connects and exports the snapshot pg_dump will dump (one round trip); the server's version with it. */
async function openSnapshot(client: pg.Client, connecting: Promise<unknown>): Promise<{ id: string; server: ServerVersion }> {
  await connecting;
  // The counts run beside pg_dump: one process, not parallel workers competing with the dump for the cores.
  const results = (await client.query(`begin isolation level repeatable read read only;
    set local max_parallel_workers_per_gather = 0;
    select pg_export_snapshot() as s, current_setting('server_version_num') as num, current_setting('server_version') as version`)) as unknown as pg.QueryResult[];
  const { s, num, version } = results[2]!.rows[0] as { s: string; num: string; version: string };
  return { id: s, server: { major: serverMajor(Number(num)), version: version.split(" ")[0]! } };
}

/** The globals file as `.partial`, fsynced, while pg_dump runs: publish renames it beside the dump. */
async function writeGlobalsPartial(run: Run, globals: Globals): Promise<GlobalsWritten> {
  run.globalsFile = globalsPath(run.finalPath);
  const partial = `${run.globalsFile}.partial`;
  // globals.ts's writeGlobals, in two halves: the same text, the same summary.
  const text = JSON.stringify(globals, null, 2) + "\n";
  const handle = await fs.promises.open(partial, "w", 0o600);
  try {
    await handle.writeFile(text);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  return {
    partial,
    summary: { file: path.basename(run.globalsFile), bytes: Buffer.byteLength(text), sha256: sha256Of(text), roles: globals.roles.map((r) => r.name) },
  };
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
  dumpFinished(run);
  const hashed = await hashDirectory(run.partialPath);
  for (const f of hashed.files) fsyncFile(path.join(run.partialPath, f.name));
  return hashed;
}

/**
 * Custom and tar formats: pg_dump's stdout into `pg_restore --list`, and
 * through the measuring tap (and the offsite tee) into the .partial, flushed
 * to the disk as it is written, fsynced.
 */
async function dumpFile(run: Run, tools: { pgDump: PgTool; pgRestore: PgTool }, snapshot: string): Promise<Dumped> {
  const { deps, partialPath } = run;
  run.tee = openTee(run);
  const listTap = measuringTap(new Measure({ sha256: false }), { tee: startListing(run, tools.pgRestore) });
  const measure = new Measure();
  const output = deps.createOutput?.(partialPath) ?? fs.createWriteStream(partialPath, { mode: 0o600, flags: "wx" });
  const flush = flushAsWritten(output);
  const tap = measuringTap(measure, {
    onProgress: (bytes) => {
      flush(bytes);
      deps.onProgress?.(bytes);
    },
    tee: run.tee,
  });
  const dump = startDump(run, tools.pgDump, snapshot);
  try {
    await pipeline(dump.stdout!, listTap, tap, output);
  } catch (error) {
    dump.child.kill("SIGKILL");
    run.lister?.kill("SIGKILL");
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOSPC" || code === "EDQUOT") {
      throw new Error(`disk full writing ${partialPath} (${code}); the partial file was removed, earlier backups are untouched`, { cause: error });
    }
    await dump.exited; // pg_dump's own error says more than the closed pipe
    throw error;
  }
  await dump.exited;
  dumpFinished(run);
  const dumped = measure.result();
  fsyncFile(partialPath);
  return dumped;
}

/** pg_dump started on the snapshot; logged (debug) with the time since the process started, the benchmark's breakdown. */
function startDump(run: Run, pgDump: PgTool, snapshot: string): ReturnType<typeof startTool> {
  const dump = startTool(pgDump, dumpArgs(run.format, snapshot), run.target.url, { stdin: "ignore", stdout: "pipe" });
  run.child = dump.child;
  run.deps.onPgDump?.(dump.child);
  // Also makes the logger now, while pg_dump runs, rather than after it (a command's logger is made on first use).
  run.deps.logger.debug({ database: run.target.database, process_ms: Math.round(performance.now()) }, "pg_dump started");
  return dump;
}

function dumpFinished(run: Run): void {
  run.deps.logger.debug({ database: run.target.database, process_ms: Math.round(performance.now()) }, "pg_dump finished");
}

/** `pg_restore --list` fed the dump as it is written: the check a file gets, without reading it back after. */
function startListing(run: Run, pgRestore: PgTool): Tee {
  const lister = startTool(pgRestore, ["--list"], run.target.url, { stdin: "pipe", stdout: "pipe" });
  run.lister = lister.child;
  let listed = "";
  lister.stdout!.on("data", (d) => (listed += d));
  run.listing = lister.exited.then(() => listed);
  run.listing.catch(() => {});
  // pg_restore stops reading once it has the table of contents: a lister that is gone is fed no more, and its verdict is its exit.
  return new Tee(lister.child.stdin!, lister.exited, () => {});
}

/** Every this many bytes written, a flush to the disk is started (one at a time): the fsync at the end then has little left to write. */
const FLUSH_EVERY = 64 * 2 ** 20;

/** A file output's bytes flushed (fdatasync, in the background) as they are written; other outputs (tests') are left alone. */
function flushAsWritten(output: Writable): (bytes: number) => void {
  let flushed = 0;
  let busy = false;
  return (bytes) => {
    const fd = (output as unknown as { fd?: unknown }).fd;
    if (busy || bytes - flushed < FLUSH_EVERY || typeof fd !== "number") return;
    busy = true;
    flushed = bytes;
    // Its failure is the final fsync's to report.
    fs.fdatasync(fd, () => (busy = false));
  };
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
  const listTee = startListing(run, tools.pgRestore);
  const plain = new Measure();
  const sealed = new Measure();
  const plainTap = measuringTap(plain, { tee: listTee });
  const encrypted = await encryptStream(plainTap, run.sealed!);
  const output = deps.createOutput?.(partialPath) ?? fs.createWriteStream(partialPath, { mode: 0o600, flags: "wx" });
  const dump = startDump(run, tools.pgDump, snapshot);
  try {
    await Promise.all([pipeline(dump.stdout!, plainTap), pipeline(encrypted, measuringTap(sealed, { onProgress: deps.onProgress, tee: run.tee }), output)]);
  } catch (error) {
    dump.child.kill("SIGKILL");
    run.lister?.kill("SIGKILL");
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOSPC" || code === "EDQUOT") {
      throw new Error(`disk full writing ${partialPath} (${code}); the partial file was removed, earlier backups are untouched`, { cause: error });
    }
    await dump.exited;
    throw error;
  }
  await dump.exited;
  dumpFinished(run);
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
  taken: { tableCounts: Record<string, number>; globals: GlobalsWritten },
): Promise<BackupRow> {
  const { deps, target, name, finalPath } = run;
  const { tableCounts } = taken;
  const globals = taken.globals.summary;
  // Before the dump is renamed: a dump never stands without its globals file. One fsync of the folder makes both names durable.
  fs.renameSync(taken.globals.partial, run.globalsFile!);
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
  if (run.lister && run.lister.exitCode === null) run.lister.kill("SIGKILL");
}

/** Stops whatever still runs, removes the .partial (unless another run owns the folder now), records the failure. */
async function failRun(run: Run, error: unknown): Promise<void> {
  const { deps, target } = run;
  run.tee?.abort(new Error("the backup failed"));
  killDump(run);
  const pid = (run.snapshotClient as unknown as { processID?: number }).processID;
  if (pid) await deps.pool.query("select pg_cancel_backend($1)", [pid]).catch(() => {});
  await run.globalsWriting?.catch(() => {});
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
