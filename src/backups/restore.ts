/**
 * `backup restore <id> --into <db>`: pg_restore (exit on error, no owners)
 * into a database that must not exist yet, created on the server of the
 * backed-up database. Reports the tables restored and the duration; any
 * error fails loudly and the half-restored database is dropped.
 */
import fs from "node:fs";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { withClient } from "../db/pool.js";
import type { Config } from "../config.js";
import { UserError, errorMessage } from "../errors.js";
import { redactText } from "../redact.js";
import { getBackup, type BackupRow } from "./catalog.js";
import { countRows } from "./counts.js";
import { restoreList } from "./restore-list.js";
import { chooseTool, findTools, searchDirs } from "./pgtools.js";
import { runTool } from "./run.js";
import { backupTargets } from "./target.js";

export interface RestoreResult {
  backup: BackupRow;
  database: string;
  tables: Record<string, number>;
  seconds: number;
  /** Entries left out because they would copy nothing (restore-list.ts). */
  skipped?: string[];
}

function urlFor(base: string, database: string): string {
  const u = new URL(base);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

export async function tableCounts(url: string): Promise<Record<string, number>> {
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
  if (ext) return `. Only a superuser may create ${ext}: create it once in template1 (runuser -u postgres -- psql template1 -c 'create extension ${ext}'), so every new database has it`;
  return "";
}

export async function restoreBackup(
  config: Config,
  pool: pg.Pool,
  databaseUrl: string,
  id: number,
  into: string,
  fromFile?: string,
): Promise<RestoreResult> {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(into)) {
    throw new UserError(`--into ${JSON.stringify(into)}: expected a new database name (letters, digits, _; at most 63)`);
  }
  const backup = await getBackup(pool, id);
  if (!backup) throw new UserError(`backup ${id} does not exist (see pmt-worker backup list)`);
  const file = fromFile ?? backup.local_path;
  if (!file || !fs.existsSync(file)) throw new UserError(`backup ${id}'s file ${file ?? "(none)"} is not there; pass --from-file`);
  const target = backupTargets(databaseUrl, config.backup).find((t) => t.database === backup.database);
  const serverUrl = target?.url ?? databaseUrl;
  const adminUrl = urlFor(serverUrl, "postgres");
  const intoUrl = urlFor(serverUrl, into);

  const exists = await withClient(adminUrl, async (c) => (await c.query("select 1 from pg_database where datname = $1", [into])).rowCount);
  if (exists) throw new UserError(`database ${into} already exists: restore only into a new database`);
  const major = Number((backup.server_version ?? "0").split(".")[0]);
  const pgRestore = chooseTool("pg_restore", findTools("pg_restore", searchDirs(config.backup.pgBinDir)), {
    major,
    version: backup.server_version ?? "unknown",
  });

  const t0 = performance.now();
  await createDatabase(adminUrl, into);
  const list = await restoreList(pgRestore, file, intoUrl).catch(async (error) => {
    await withClient(adminUrl, (c) => c.query(`drop database if exists ${pg.escapeIdentifier(into)} with (force)`)).catch(() => {});
    throw error;
  });
  try {
    await runTool(pgRestore, ["--exit-on-error", "--no-owner", "--no-privileges", ...(list.file ? [`--use-list=${list.file}`] : []), `--dbname=${into}`, file], intoUrl);
  } catch (error) {
    await withClient(adminUrl, (c) => c.query(`drop database if exists ${pg.escapeIdentifier(into)} with (force)`)).catch(() => {});
    throw new UserError(`restore of backup ${id} into ${into} failed (the new database was dropped): ${redactText(errorMessage(error))}${restoreHint(errorMessage(error))}`, { cause: error });
  } finally {
    list.cleanup();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { backup, database: into, tables: await tableCounts(intoUrl), seconds, skipped: list.skipped };
}
