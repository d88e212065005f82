/**
 * `pmt-worker migrate`: graphile-worker's schema first (our views read its
 * `jobs` view), then ours from migrations/*.sql in name order through kysely's
 * Migrator (tables, columns, data: what is applied once), then every function
 * and view of ours from sql/functions/*.sql, re-applied on every run (each
 * one's only current definition), then PMT's export functions and the grants.
 * The whole run holds a session advisory lock, so two processes migrating at
 * once take turns and the second finds nothing to do.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runMigrations } from "graphile-worker";
import { Migrator, sql, type Migration, type MigrationProvider } from "kysely";
import type pg from "pg";
import { UserError, errorMessage } from "../errors.js";
import { graphileLogger, type Logger } from "../log.js";
import { migrateGraphileWorker } from "./graphile-internals.js";
import { createDb } from "./kysely.js";
import { migrateFindings, roleFindings, type Finding } from "./security.js";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));
/** Our functions and views, one definition each (create or replace), in file-name order. */
export const FUNCTIONS_DIR = fileURLToPath(new URL("../../sql/functions/", import.meta.url));
/** After them: PMT-facing functions, then the grants (they revoke what a new function gives PUBLIC). */
const PMT_SQL = [
  fileURLToPath(new URL("../../sql/pmt_export_functions.sql", import.meta.url)),
  fileURLToPath(new URL("../../sql/pmt_grants.sql", import.meta.url)),
];

/** The files applied after the migrations on every run, in order. */
export function repeatableSql(): string[] {
  const files = fs
    .readdirSync(FUNCTIONS_DIR)
    .filter((f) => f.endsWith(".sql"))
    .sort();
  for (const file of files) {
    if (!/^\d{2}_[a-z0-9_]+\.sql$/.test(file)) throw new Error(`function file name ${file} in ${FUNCTIONS_DIR}: expected NN_name.sql`);
  }
  return [...files.map((f) => path.join(FUNCTIONS_DIR, f)), ...PMT_SQL];
}

/** pg_advisory_lock key: hashtext('pmt-worker migrate'), fixed so every version agrees. */
const LOCK_KEY = 0x706d7401;

/** Plain SQL files as kysely migrations; each runs in the migrator's transaction. */
export class SqlFileMigrationProvider implements MigrationProvider {
  constructor(private readonly dir: string) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const migrations: Record<string, Migration> = {};
    const files = fs
      .readdirSync(this.dir)
      .filter((f) => f.endsWith(".sql"))
      .sort();
    for (const file of files) {
      if (!/^\d{4}_[a-z0-9_]+\.sql$/.test(file)) {
        throw new Error(`migration file name ${file} in ${this.dir}: expected NNNN_name.sql`);
      }
      const text = fs.readFileSync(path.join(this.dir, file), "utf8");
      migrations[file.replace(/\.sql$/, "")] = {
        up: async (db) => {
          await sql.raw(text).execute(db);
        },
      };
    }
    return migrations;
  }
}

/** What a DBA runs when the PMT-facing functions cannot be created (deploy/README.md §2). */
function privilegeHint(message: string, code: string | undefined): string {
  if (code !== "42501") return "";
  if (/permission denied for schema public/.test(message)) {
    return "; the worker's role may not create in schema public (PostgreSQL 15 and later allow only the database owner): as the database owner, grant create on schema public to the worker's role";
  }
  const fn = /must be owner of function (pmt_filter_(?:csv|iati))/.exec(message)?.[1];
  if (!fn) return "; pmt_jobs' functions and views belong to another role: migrate as the role that owns schema pmt_jobs (the worker's)";
  const drop = `drop function public.${fn}(character varying, character varying, character varying, date, date, text);`;
  return `; PMT's own version of the function belongs to another role: as that role, ${drop} (or alter its owner to the worker's role), then migrate again`;
}

/**
 * The repeatable files in one transaction: all their definitions or, when
 * one fails, none (the previous ones stay). A file may turn off
 * check_function_bodies (bodies reading PMT's tables, which need not exist);
 * the setting is restored before the next file.
 */
async function applyRepeatable(pool: pg.Pool, files: string[]): Promise<void> {
  const client = await pool.connect();
  let file = files[0]!;
  try {
    await client.query("begin");
    const { rows } = await client.query<{ setting: string }>("select current_setting('check_function_bodies') as setting");
    for (file of files) {
      await client.query(fs.readFileSync(file, "utf8"));
      await client.query("select set_config('check_function_bodies', $1, true)", [rows[0]!.setting]);
    }
    await client.query("commit");
  } catch (error) {
    await client.query("rollback").catch(() => {});
    const hint = privilegeHint(errorMessage(error), (error as { code?: string }).code);
    throw new UserError(`applying ${path.relative(process.cwd(), file)} failed: ${errorMessage(error)}${hint}; none of the function files was applied`, {
      cause: error,
    });
  } finally {
    client.release();
  }
}

/** The numbered migrations' runner (exported for the test that migrates as the code before sql/functions/ did). */
export function createMigrator(pool: pg.Pool): Migrator {
  return new Migrator({
    db: createDb(pool),
    provider: new SqlFileMigrationProvider(MIGRATIONS_DIR),
    migrationTableSchema: "pmt_jobs",
    migrationTableName: "migration",
    migrationLockTableName: "migration_lock",
  });
}

/** Our migrations' names, in order (for doctor). */
export function migrationNames(): string[] {
  return fs
    .readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .map((f) => f.replace(/\.sql$/, ""));
}

export interface MigrateResult {
  applied: string[];
  /** What in this database lets another role run code as the worker, or roles a DBA must create: each names its fix. */
  warnings: Finding[];
}

/**
 * Migration 0006_roles cannot be applied while pmt_app or pmt_backup is
 * missing and this role may not create them (it fails with "malformed array
 * literal" instead of its notice): say what a DBA must run before trying.
 */
async function requireGroupRoles(c: pg.PoolClient): Promise<void> {
  const { rows } = await c.query<{ table: boolean; can_create: boolean }>(
    `select to_regclass('pmt_jobs.migration') is not null as table,
            (select rolcreaterole or rolsuper from pg_catalog.pg_roles where rolname = current_user) as can_create`,
  );
  if (rows[0]!.can_create) return;
  // Parsed only when the table exists (a missing one fails the statement, whatever the where clause).
  if (rows[0]!.table && (await c.query("select 1 from pmt_jobs.migration where name = '0006_roles'")).rowCount) return;
  const missing = (await roleFindings(c)).filter((f) => /create role/.test(f.detail));
  if (missing.length) throw new UserError(`the group roles are missing and this role may not create them (it need not): ${missing[0]!.detail}`);
}

export async function migrate(pool: pg.Pool, logger: Logger): Promise<MigrateResult> {
  const lockClient = await pool.connect();
  try {
    await lockClient.query("select pg_advisory_lock($1)", [LOCK_KEY]);
    try {
      await requireGroupRoles(lockClient);
      await migrateGraphileWorker(pool, () => runMigrations({ pgPool: pool, logger: graphileLogger(logger) }));
      const { error, results = [] } = await createMigrator(pool).migrateToLatest();
      const failed = results.find((r) => r.status === "Error");
      if (error) {
        throw new UserError(`migration ${failed?.migrationName ?? "(setup)"} failed: ${errorMessage(error)}; nothing from it was applied`, { cause: error });
      }
      await applyRepeatable(pool, repeatableSql());
      const applied = results.filter((r) => r.status === "Success").map((r) => r.migrationName);
      for (const name of applied) logger.info({ migration: name }, "migration applied");
      return { applied, warnings: await migrateFindings(lockClient) };
    } finally {
      await lockClient.query("select pg_advisory_unlock($1)", [LOCK_KEY]);
    }
  } finally {
    lockClient.release();
  }
}
