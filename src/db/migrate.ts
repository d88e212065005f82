/**
 * `pmt-worker migrate`: graphile-worker's schema first (our views read its
 * `jobs` view), then ours from migrations/*.sql in name order through kysely's
 * Migrator. The whole run holds a session advisory lock, so two processes
 * migrating at once take turns and the second finds nothing to do.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runMigrations } from "graphile-worker";
import { Migrator, sql, type Migration, type MigrationProvider } from "kysely";
import type pg from "pg";
import { UserError, errorMessage } from "../errors.js";
import { graphileLogger, type Logger } from "../log.js";
import { createDb } from "./kysely.js";
import { migrateFindings, type Finding } from "./security.js";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));
/** Applied after the migrations on every run (create or replace): PMT-facing functions. */
export const REPEATABLE_SQL = [
  fileURLToPath(new URL("../../sql/pmt_export_functions.sql", import.meta.url)),
  fileURLToPath(new URL("../../sql/pmt_grants.sql", import.meta.url)),
];

/** pg_advisory_lock key: hashtext('pmt-worker migrate'), fixed so every version agrees. */
const LOCK_KEY = 0x706d7401;

/** Plain SQL files as kysely migrations; each runs in the migrator's transaction. */
export class SqlFileMigrationProvider implements MigrationProvider {
  constructor(private readonly dir: string) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const migrations: Record<string, Migration> = {};
    const files = fs.readdirSync(this.dir).filter((f) => f.endsWith(".sql")).sort();
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

async function applyRepeatable(pool: pg.Pool, file: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("begin");
    await client.query(fs.readFileSync(file, "utf8"));
    await client.query("commit");
  } catch (error) {
    await client.query("rollback").catch(() => {});
    const hint =
      (error as { code?: string }).code === "42501"
        ? "; PMT's own version of the function belongs to another role: as that role, drop it or ALTER FUNCTION ... OWNER TO the worker's role"
        : "";
    throw new UserError(`applying ${path.relative(process.cwd(), file)} failed: ${errorMessage(error)}${hint}`, { cause: error });
  } finally {
    client.release();
  }
}

function createMigrator(pool: pg.Pool): Migrator {
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

export async function migrate(pool: pg.Pool, logger: Logger): Promise<MigrateResult> {
  const lockClient = await pool.connect();
  try {
    await lockClient.query("select pg_advisory_lock($1)", [LOCK_KEY]);
    try {
      await runMigrations({ pgPool: pool, logger: graphileLogger(logger) });
      const { error, results = [] } = await createMigrator(pool).migrateToLatest();
      const failed = results.find((r) => r.status === "Error");
      if (error) {
        throw new UserError(
          `migration ${failed?.migrationName ?? "(setup)"} failed: ${errorMessage(error)}; nothing from it was applied`,
          { cause: error },
        );
      }
      for (const file of REPEATABLE_SQL) await applyRepeatable(pool, file);
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
