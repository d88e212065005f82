/**
 * Restores, one procedure whatever the dump's source: pg_restore (exit on
 * error, no owners) into a database that must not exist yet, created on the
 * server of the backed-up database. With the backup's globals (`--with-roles`,
 * globals-apply.ts) the missing roles are created first and owners and grants
 * are kept. The source is a file on this machine
 * (`backup restore <id>`, the weekly test restore) or a stream read as it
 * comes (`backup restore --from-offsite`, offsite/restore.ts). Reports the
 * tables restored and the duration; any error fails loudly and the
 * half-restored database is dropped.
 */
import fs from "node:fs";
import { performance } from "node:perf_hooks";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { withClient } from "../db/pool.js";
import type { Config } from "../config.js";
import { UserError, errorMessage } from "../errors.js";
import { recordedVersion, runTool, runToolOn, startTool, stoppedReading, toolFor, type PgTool } from "../pgtools/tools.js";
import { decryptStream } from "../io/age.js";
import { redactText } from "../redact.js";
import { getBackup, type BackupRow } from "./catalog.js";
import { countRows } from "./counts.js";
import { applyDatabaseLevel, applyRoles, type RolesApplied } from "./globals-apply.js";
import { readGlobals, type Globals } from "./globals.js";
import { restoreList, type DumpReader } from "./restore-list.js";
import { readManifest } from "./manifest.js";
import { backupTargets } from "./target.js";

/**
 * What a restore reads: a dump file (any format); an age-encrypted dump file
 * (BACKUP_ENCRYPT_LOCAL) decrypted as pg_restore reads it, as often as
 * needed, never to the disk; or a stream (custom or tar format) opened when
 * the restore starts.
 */
export type RestoreSource = { file: string } | { sealed: string; identities: string[] } | { stream: () => Promise<Readable> };

export interface RestoreRequest {
  source: RestoreSource;
  /** What the error calls the dump: "backup 12", or an offsite key. */
  label: string;
  /** The new database: checked with checkNewDatabaseName first. */
  into: string;
  /** Any database's URL on the server where `into` is created. */
  serverUrl: string;
  /** The dumped server's version (chooses pg_restore). */
  serverVersion: string | null | undefined;
  /** `--with-roles`: create the missing roles first, keep owners and grants, then set the database's owner, ACL and settings. */
  globals?: Globals;
}

export interface Restored {
  database: string;
  tables: Record<string, number>;
  seconds: number;
  /** Entries left out because they would copy nothing (restore-list.ts; files only). */
  skipped?: string[];
  /** With globals: the roles created, found, and what was not applied. */
  roles?: RolesApplied;
}

export type RestoreResult = Restored & { backup: BackupRow };

function urlFor(base: string, database: string): string {
  const u = new URL(base);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

async function tableCounts(url: string): Promise<Record<string, number>> {
  return withClient(url, countRows);
}

/** A role's name as a DBA would type it in SQL: quoted only when it must be. */
export function sqlName(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : pg.escapeIdentifier(name);
}

/** CREATE DATABASE, with what to do when the role may not (CREATEDB, deploy/README.md). */
async function createDatabase(adminUrl: string, name: string): Promise<void> {
  await withClient(adminUrl, async (c) => {
    try {
      await c.query(`create database ${pg.escapeIdentifier(name)}`);
    } catch (error) {
      if ((error as { code?: string }).code !== "42501") throw error;
      const role = (await c.query<{ r: string }>("select current_user as r")).rows[0]!.r;
      throw new UserError(
        `cannot create database ${name}: role ${role} may not create databases, and restores (and the weekly test restore) restore into a new one. ` +
          `As a superuser: alter role ${sqlName(role)} createdb;`,
        { cause: error },
      );
    }
  });
}

/** pg_restore's errors a DBA can fix once (deploy/README.md §1). */
function restoreHint(message: string): string {
  const ext = /permission denied to create extension "([^"]+)"/.exec(message)?.[1];
  if (ext)
    return `. Only a superuser may create ${ext}: create it once in template1 (runuser -u postgres -- psql template1 -c 'create extension ${ext}'), so every new database has it`;
  return "";
}

/** `--into`: a new database's name, which never needs quoting. */
export function checkNewDatabaseName(into: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(into)) {
    throw new UserError(`--into ${JSON.stringify(into)}: expected a new database name (letters, digits, _; at most 63)`);
  }
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await withClient(adminUrl, (c) => c.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`)).catch(() => {});
}

/** pg_restore reading the stream on its stdin: nothing can be left out (that needs a second reading). */
async function restoreStream(pgRestore: PgTool, args: string[], open: () => Promise<Readable>, into: string, intoUrl: string): Promise<void> {
  const source = await open();
  const restore = startTool(pgRestore, [...args, `--dbname=${into}`], intoUrl, { stdin: "pipe", stdout: "ignore" });
  try {
    await pipeline(source, restore.child.stdin!);
  } catch (error) {
    // pg_restore stopped reading (a broken pipe): its own error says why. Else the source failed:
    // pg_restore must not go on with part of a dump.
    if (stoppedReading(error)) await restore.exited;
    else restore.child.kill("SIGKILL");
    throw error;
  }
  await restore.exited;
}

/** Without the roles, owners and grants cannot be restored: the restoring role owns everything, with default privileges. */
const RESTORE_ARGS = ["--exit-on-error", "--no-owner", "--no-privileges"];
const RESTORE_ARGS_WITH_ROLES = ["--exit-on-error"];

/** An encrypted dump file, decrypted as it is read. */
function openSealed(source: { sealed: string; identities: string[] }, label: string): Promise<Readable> {
  return decryptStream(fs.createReadStream(source.sealed), source.identities, label);
}

/** How pg_restore reads the dump more than once (restore-list.ts), or undefined for a stream, which can be read once. */
function dumpReader(source: RestoreSource, pgRestore: PgTool, url: string, label: string): DumpReader | undefined {
  if ("file" in source) return (args) => runTool(pgRestore, [...args, source.file], url);
  if ("sealed" in source) return async (args) => runToolOn(pgRestore, args, url, await openSealed(source, label));
  return undefined;
}

/** The one restore procedure: `into` created, the source restored into it, its tables counted. */
export async function restoreInto(config: Config, request: RestoreRequest): Promise<Restored> {
  const { into } = request;
  const adminUrl = urlFor(request.serverUrl, "postgres");
  const intoUrl = urlFor(request.serverUrl, into);

  const exists = await withClient(adminUrl, async (c) => (await c.query("select 1 from pg_database where datname = $1", [into])).rowCount);
  if (exists) throw new UserError(`database ${into} already exists: restore only into a new database`);
  const pgRestore = toolFor("pg_restore", recordedVersion(request.serverVersion), config.backup.pgBinDir);
  const args = request.globals ? RESTORE_ARGS_WITH_ROLES : RESTORE_ARGS;

  const t0 = performance.now();
  // Roles are the server's: they must exist before pg_restore gives them objects. Nothing is created when this fails.
  const roles = request.globals ? await withClient(adminUrl, (c) => applyRoles(c, request.globals!)) : undefined;
  try {
    return await restoreCreated(request, { pgRestore, args, adminUrl, intoUrl, t0, roles });
  } catch (error) {
    if (!roles?.created.length) throw error;
    const note = ` (the roles created for it remain: ${roles.created.join(", ")})`;
    throw error instanceof UserError
      ? new UserError(`${error.message}${note}`, { cause: error })
      : new Error(`${errorMessage(error)}${note}`, { cause: error });
  }
}

/** The rest of restoreInto, once the roles are there: `into` created, restored, its database-level globals set. */
async function restoreCreated(
  request: RestoreRequest,
  run: { pgRestore: PgTool; args: string[]; adminUrl: string; intoUrl: string; t0: number; roles: RolesApplied | undefined },
): Promise<Restored> {
  const { source, label, into } = request;
  const { pgRestore, args, adminUrl, intoUrl, t0, roles } = run;
  await createDatabase(adminUrl, into);
  // A file's entries that would copy nothing are left out (restore-list.ts); a stream cannot be read twice to find them.
  const read = dumpReader(source, pgRestore, intoUrl, label);
  const list = read
    ? await restoreList(read).catch(async (error) => {
        await dropDatabase(adminUrl, into);
        throw error;
      })
    : undefined;
  const useList = list?.file ? [`--use-list=${list.file}`] : [];
  try {
    if ("file" in source) await runTool(pgRestore, [...args, ...useList, `--dbname=${into}`, source.file], intoUrl);
    else if ("sealed" in source) await restoreStream(pgRestore, [...args, ...useList], () => openSealed(source, label), into, intoUrl);
    else await restoreStream(pgRestore, args, source.stream, into, intoUrl);
    if (request.globals) await withClient(adminUrl, (c) => applyDatabaseLevel(c, request.globals!, into));
  } catch (error) {
    await dropDatabase(adminUrl, into);
    throw new UserError(
      `restore of ${label} into ${into} failed (the new database was dropped): ${redactText(errorMessage(error))}${restoreHint(errorMessage(error))}`,
      { cause: error },
    );
  } finally {
    list?.cleanup();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { database: into, tables: await tableCounts(intoUrl), seconds, ...(list ? { skipped: list.skipped } : {}), ...(roles ? { roles } : {}) };
}

/** A backup file as a restore reads it: decrypted with `identities` when it is an age file (BACKUP_ENCRYPT_LOCAL, `<file>.age`). */
export function sealedSource(file: string, identities: string[] | undefined, label: string): RestoreSource {
  if (!file.endsWith(".age")) return { file };
  if (!identities?.length) {
    const recipients = readManifest(file)?.encryption?.recipients;
    throw new UserError(
      `${label} is encrypted with age${recipients ? ` to ${recipients.join(", ")}` : ""}: pass --identity-file <file> (or - to read it from stdin)`,
    );
  }
  return { sealed: file, identities };
}

/**
 * `backup restore <id>`: the catalogued file (or --from-file's copy of it), on the server of the backed-up database.
 * `withRoles`: with the globals file beside it (`<file>.globals.json`), see restoreInto.
 */
export async function restoreBackup(
  config: Config,
  pool: pg.Pool,
  databaseUrl: string,
  id: number,
  into: string,
  fromFile?: string,
  options: { withRoles?: boolean; identities?: string[] } = {},
): Promise<RestoreResult> {
  checkNewDatabaseName(into);
  const backup = await getBackup(pool, id);
  if (!backup) throw new UserError(`backup ${id} does not exist (see pmt-worker backup list)`);
  const file = fromFile ?? backup.local_path;
  if (!file || !fs.existsSync(file)) throw new UserError(`backup ${id}'s file ${file ?? "(none)"} is not there; pass --from-file`);
  const globals = options.withRoles ? readGlobals(file) : undefined;
  const target = backupTargets(databaseUrl, config.backup).find((t) => t.database === backup.database);
  const restored = await restoreInto(config, {
    source: sealedSource(file, options.identities, `backup ${id}`),
    label: `backup ${id}`,
    into,
    serverUrl: target?.url ?? databaseUrl,
    serverVersion: backup.server_version,
    ...(globals ? { globals } : {}),
  });
  return { backup, ...restored };
}
