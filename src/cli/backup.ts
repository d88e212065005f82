import type { Command } from "commander";
import type { BackupFormat, BackupRow } from "../backups/catalog.js";
import type { RolesApplied } from "../backups/globals-apply.js";
import type { Config } from "../config.js";
import type { Pool } from "../db/pool.js";
import { UserError } from "../errors.js";
import { stdoutColours, type Colours } from "../colour.js";
import { humanBytes as size, humanDuration, isoSeconds } from "../human.js";
import { firstLine, formatDuration, intervalSeconds, isInterval, jsonRow, statusColour, table } from "./format.js";
import { backupId, oneOf, positiveInt } from "./options.js";

const FORMATS = ["custom", "tar", "directory"] as const;

/** Ids are per catalog (each served database keeps its own): with several, the option says whose. */
const CATALOG_OPTION = "the catalog the id is in: the database column of backup list (needed when several databases are served)";

function requireOffsite(config: Config): string {
  if (!config.offsite.url) throw new UserError("OFFSITE_URL is not set: there is no offsite store");
  return config.offsite.url;
}

function formatBackups(rows: BackupRow[], c: Colours): string {
  if (rows.length === 0) return "no backups\n";
  return table(
    ["id", "database", "started", "status", "tiers", "format", "size", "duration", "test restore", "file / error"],
    rows.map((r) => [
      String(r.id),
      r.database,
      isoSeconds(r.started_at),
      statusColour(r.status, c),
      r.tiers.join(","),
      r.format,
      size(r.bytes),
      r.finished_at ? formatDuration(r.finished_at.getTime() - r.started_at.getTime()) : "",
      r.restore_test_ok === null ? "" : r.restore_test_ok ? statusColour("ok", c) : c.red("FAILED"),
      r.status === "failed" || r.status === "corrupt"
        ? firstLine(r.error)
        : r.restore_test_ok === false
          ? `${r.file ?? ""}; test restore: ${firstLine(r.restore_test_error)}`
          : (r.file ?? ""),
    ]),
    c,
  );
}

/** A catalog row as JSON: sizes in bytes, durations in seconds (null while unknown), times in ISO 8601. */
function backupJson(r: BackupRow): Record<string, unknown> {
  const row = r as BackupRow & { duration?: unknown; restore_test_duration?: unknown };
  const { duration: _d, restore_test_duration: _t, ...rest } = row;
  return {
    ...jsonRow(rest),
    duration_s: r.finished_at ? (r.finished_at.getTime() - r.started_at.getTime()) / 1000 : null,
    restore_test_duration_s: isInterval(row.restore_test_duration) ? intervalSeconds(row.restore_test_duration) : null,
  };
}

function progress(enabled: boolean) {
  if (!enabled) return { onProgress: undefined, done: () => {} };
  const t0 = Date.now();
  let last = 0;
  return {
    onProgress: (bytes: number) => {
      const now = Date.now();
      if (now - last < 250) return;
      last = now;
      const rate = bytes / Math.max(0.001, (now - t0) / 1000);
      process.stderr.write(`\r  ${size(bytes)} written, ${size(rate)}/s   `);
    },
    done: () => process.stderr.write("\r\x1b[K"),
  };
}

interface RestoreOptions {
  into: string;
  fromFile?: string;
  fromOffsite?: string;
  database?: string;
  identityFile?: string;
  withRoles?: boolean;
}

/**
 * What --with-roles did: roles created (login roles have no password yet: say how to set one), found, and left out.
 * `sqlName`: backups/restore.ts's, which the restore action has loaded (this module loads nothing of it at start-up).
 */
export function formatRoles(roles: RolesApplied, sqlName: (name: string) => string): string {
  const created = roles.created.map((r) => (roles.withoutPassword.includes(r) ? `${sqlName(r)} (login, no password)` : sqlName(r)));
  const lines = [
    `created roles: ${created.join(", ") || "none"}; existing: ${roles.existing.map(sqlName).join(", ") || "none"}; memberships granted: ${roles.memberships}`,
  ];
  if (roles.withoutPassword.length)
    lines.push(`set a password for each login role: ${roles.withoutPassword.map((r) => `ALTER ROLE ${sqlName(r)} PASSWORD '...';`).join(" ")}`);
  for (const s of roles.skipped) lines.push(`not applied: ${s}`);
  return lines.map((l) => `${l}\n`).join("");
}

/** migrations/, whose files' names pmt_jobs.migration lists once applied (db/migrate.ts's MIGRATIONS_DIR). */
const MIGRATIONS_DIR = new URL("../../migrations/", import.meta.url);

/**
 * Whether every numbered migration is applied: the catalog's tables are then
 * what this version writes, and `backup run` needs no more. Otherwise it
 * migrates (a new database, a new version); the worker and `pmt-worker
 * migrate` re-apply the functions and views, which a backup does not use.
 * Not loading graphile-worker and kysely for it, nor re-applying every
 * function, is a good part of the command's fixed cost (docs/performance.md).
 */
async function catalogCurrent(pool: Pool): Promise<boolean> {
  const fs = await import("node:fs");
  const names = fs
    .readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith(".sql"))
    .map((f) => f.replace(/\.sql$/, ""));
  try {
    const { rows } = await pool.query<{ n: number }>("select count(*)::int as n from pmt_jobs.migration where name = any($1)", [names]);
    return rows[0]!.n === names.length;
  } catch (error) {
    if ((error as { code?: string }).code === "42P01" || (error as { code?: string }).code === "3F000") return false; // no table or schema yet
    throw error;
  }
}

export function registerBackup(program: Command): void {
  const backup = program
    .command("backup")
    .description("pg_dump backups: run, list, verify, test-restore, restore")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker backup run
  $ pmt-worker backup list
  $ pmt-worker backup test-restore --database bmgf`,
    );

  backup
    .command("run")
    .description("back up now (the same code as the cron job), then apply retention")
    .option("--database <name>", "one database of BACKUP_DATABASES or PMT_DATABASES (default: all, each in its own catalog)")
    .option("--format <format>", `override BACKUP_FORMAT: ${FORMATS.join(", ")}`, oneOf(FORMATS))
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker backup run                      every database this worker backs up
  $ pmt-worker backup run --database bmgf --format tar`,
    )
    .action(async (opts: { database?: string; format?: BackupFormat }) => {
      const [{ withDatabases }, { backupTargets, findTarget }, { BackupBusyError }] = await Promise.all([
        import("./context.js"),
        import("../backups/target.js"),
        import("../backups/lock.js"),
      ]);
      // Each served database backs up what it owns, into its own catalog.
      await withDatabases({ database: opts.database, ownCheck: true }, async ({ config, pool, logger, url }) => {
        // Loaded while the catalog is checked (pg is loaded by now, see importPg): the backup's modules (not the
        // offsite ones, which it loads when it copies), and pg_dump's and pg_restore's versions asked.
        const loading = Promise.all([import("../jobs/backup-database.js"), import("../pgtools/tools.js")]);
        loading.then(([, { prefetchTools }]) => prefetchTools(config.backup.pgBinDir)).catch(() => {});
        if (!(await catalogCurrent(pool))) await (await import("../db/migrate.js")).migrate(pool, logger);
        const all = backupTargets(url, config.backup);
        const targets = opts.database ? [findTarget(all, opts.database)] : all;
        const [{ backupDatabase }] = await loading;
        let failed = 0;
        for (const target of targets) {
          const bar = progress(process.stderr.isTTY === true);
          try {
            // The cron job's steps; the offsite copy not streamed is uploaded now (read back either way).
            const { backup: row, offsite } = await backupDatabase({ config, pool, logger, databaseUrl: url }, target, {
              format: opts.format,
              onProgress: bar.onProgress,
            });
            bar.done();
            if (offsite.state === "failed") {
              failed++;
              process.stderr.write(`${target.database}: ${offsite.error.message} (pmt-worker offsite sync retries it)\n`);
            }
            const copy = offsite.state === "verified" ? ", offsite copy verified" : "";
            process.stdout.write(`${target.database}: backup ${row.id} succeeded, ${size(row.bytes)} -> ${row.local_path}${copy}\n`);
          } catch (error) {
            bar.done();
            failed++;
            process.stderr.write(
              error instanceof BackupBusyError
                ? `${target.database}: not started: ${error.message}\n`
                : `${target.database}: backup failed: ${(error as Error).message}\n`,
            );
          }
        }
        if (failed) throw new UserError(`${failed} of ${targets.length} backups or offsite copies failed`);
      });
    });

  backup
    .command("list")
    .description("the backup catalog (pmt_jobs.backup), newest first")
    .option("--database <name>", "only this database")
    .option("--limit <n>", "how many rows (1-10000)", positiveInt(10_000), 50)
    .option("--json", "one JSON object per line")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker backup list
  $ pmt-worker backup list --database bmgf --limit 10
  $ pmt-worker backup list --json | jq 'select(.status == "failed")'    sizes in bytes, durations in seconds`,
    )
    .action(async (opts: { database?: string; limit: number; json?: boolean }) => {
      const [{ withDatabases }, { listBackups }] = await Promise.all([import("./context.js"), import("../backups/catalog.js")]);
      // Every served database's catalog, merged newest first; ids are per catalog, told apart by the database column.
      const catalogs = await withDatabases({ database: opts.database, ownCheck: true }, ({ pool }) => listBackups(pool, opts.database, opts.limit));
      const rows = catalogs
        .flat()
        .sort((a, b) => b.started_at.getTime() - a.started_at.getTime())
        .slice(0, opts.limit);
      process.stdout.write(opts.json ? rows.map((r) => JSON.stringify(backupJson(r)) + "\n").join("") : formatBackups(rows, stdoutColours()));
    });

  backup
    .command("verify <id>")
    .description("re-hash a backup, compare it with the catalog and manifest, and have pg_restore list it; a backup that fails is marked corrupt")
    .option("--database <name>", CATALOG_OPTION)
    .option("--identity-file <path>", IDENTITY_OPTION)
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker backup verify 42
  $ pmt-worker backup verify 42 --database bmgf --identity-file ~/pmt-backups.key`,
    )
    .action(async (id: string, opts: { database?: string; identityFile?: string }) => {
      const backup = backupId(id);
      const identities = await identitiesOf(opts.identityFile);
      const [{ withDatabases }, { verifyBackup }] = await Promise.all([import("./context.js"), import("../backups/verify.js")]);
      await withDatabases({ database: opts.database, requireOne: "backup verify" }, async ({ config, pool, logger }) => {
        const result = await verifyBackup(config, pool, backup, { logger }, { identities });
        if (!result.ok) {
          throw new UserError(
            `backup ${id} failed verification and is marked corrupt (out of the tiers, not uploaded, not the last good backup):\n  ${result.problems.join("\n  ")}`,
          );
        }
        const sealed =
          result.decrypted === undefined
            ? ""
            : result.decrypted
              ? ", decrypted and listed"
              : " (encrypted: its sha256 only; give --identity-file to decrypt and list it too)";
        process.stdout.write(`backup ${id} verified: ${size(result.backup.bytes)}, sha256 ${result.backup.sha256}${sealed}\n`);
      });
    });

  registerTestRestore(backup);

  backup
    .command("restore [id]")
    .description("restore a backup into a new database (pg_restore --exit-on-error); by catalog id, or --from-offsite <key>")
    .requiredOption("--into <database>", "name of the database to create (must not exist)")
    .option("--from-offsite <key>", "stream this object from the offsite store (see offsite list) instead")
    .option("--from-file <path>", "restore this file instead of the catalogued one (e.g. a copy)")
    .option("--database <name>", `${CATALOG_OPTION}; the new database is created on its server`)
    .option("--identity-file <path>", IDENTITY_OPTION)
    .option(
      "--with-roles",
      "create the roles the backup references first (from its .globals.json; missing ones only, no passwords) and keep owners and grants; needs a superuser, e.g. postgres on the new server",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker backup restore 42 --into pmt_restored
  $ pmt-worker backup restore --from-offsite pmt/db1/bmgf/bmgf_20260101T000000Z.dump --into bmgf_copy
  $ pmt-worker backup restore 42 --into pmt_new --with-roles      as a superuser, on a new server`,
    )
    .action(async (id: string | undefined, opts: RestoreOptions) => {
      if (!id && !opts.fromOffsite) throw new UserError("give a backup id (see pmt-worker backup list), or --from-offsite <key>");
      const backup = id === undefined ? undefined : backupId(id);
      const identities = await identitiesOf(opts.identityFile);
      const [{ withDatabases }, { restoreBackup, sqlName }] = await Promise.all([import("./context.js"), import("../backups/restore.js")]);
      await withDatabases({ database: opts.database, requireOne: "backup restore" }, async ({ config, pool, url }) => {
        const offsite = opts.fromOffsite ? { ...(await import("../offsite/restore.js")), ...(await import("../offsite/store.js")) } : undefined;
        const result =
          offsite && opts.fromOffsite
            ? await offsite.restoreFromOffsite(config, offsite.openStore(requireOffsite(config), config.offsite), url, opts.fromOffsite, opts.into, {
                identities,
                withRoles: opts.withRoles === true,
              })
            : await restoreBackup(config, pool, url, backup!, opts.into, opts.fromFile, { withRoles: opts.withRoles === true, identities });
        const tables = Object.keys(result.tables).length;
        const rows = Object.values(result.tables).reduce((a, b) => a + b, 0);
        const left = "skipped" in result ? (result.skipped ?? []) : [];
        const skipped = left.length ? ` (left out, copying nothing: ${left.join(", ")})` : "";
        process.stdout.write(
          `restored ${opts.fromOffsite ?? `backup ${id}`} into ${result.database}: ${tables} tables, ${rows} rows, ${humanDuration(result.seconds)}${skipped}\n`,
        );
        if (result.roles) process.stdout.write(formatRoles(result.roles, sqlName));
      });
    });
}

const IDENTITY_OPTION = "for an encrypted backup (BACKUP_ENCRYPT_TO): the age identity (private key) file, or - to read it from stdin; kept in memory only";

/** --identity-file's identities, read before anything runs (a mistake there changes nothing). */
async function identitiesOf(file: string | undefined): Promise<string[] | undefined> {
  return file ? (await import("../io/age.js")).readIdentityFile(file) : undefined;
}

function registerTestRestore(backup: Command): void {
  backup
    .command("test-restore")
    .description(
      "the weekly test restore, now: the newest backup restored into a scratch database, its row counts compared, the database dropped, the result recorded",
    )
    .option("--database <name>", "one database of BACKUP_DATABASES or PMT_DATABASES (default: all)")
    .option("--identity-file <path>", `${IDENTITY_OPTION} (default: BACKUP_IDENTITY_FILE)`)
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker backup test-restore                  every database this worker backs up
  $ pmt-worker backup test-restore --database bmgf`,
    )
    .action(async (opts: { database?: string; identityFile?: string }) => {
      const identities = await identitiesOf(opts.identityFile);
      const [{ withDatabases }, { backupTargets, findTarget }] = await Promise.all([import("./context.js"), import("../backups/target.js")]);
      await withDatabases({ database: opts.database, ownCheck: true }, async ({ config, pool, logger, url }) => {
        const { testRestore } = await import("../backups/test-restore.js");
        const all = backupTargets(url, config.backup);
        let failed = 0;
        for (const target of opts.database ? [findTarget(all, opts.database)] : all) {
          const result = await testRestore(config, pool, url, target.database, logger, { identities });
          if (!result) process.stdout.write(`${target.database}: no successful backup to restore\n`);
          else if (result.ok)
            process.stdout.write(`${target.database}: test restore of backup ${result.backup.id} passed (${humanDuration(result.seconds)})\n`);
          else {
            failed++;
            process.stderr.write(`${target.database}: test restore of backup ${result.backup.id} FAILED: ${result.problems.join("; ")}\n`);
          }
        }
        if (failed) throw new UserError(`${failed} test ${failed === 1 ? "restore" : "restores"} failed (see pmt-worker doctor)`);
      });
    });
}

export function registerDatabase(program: Command): void {
  const database = program
    .command("database")
    .description("databases being backed up")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker database retire oam         a final backup, kept for good`,
    );
  database
    .command("retire <name>")
    .description("take a final backup of a database being deprecated; it (and its offsite copy) is never pruned")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker database retire oam`,
    )
    .action(async (name: string) => {
      const [{ withDatabases }, { migrate }, { backupTargets, findTarget }] = await Promise.all([
        import("./context.js"),
        import("../db/migrate.js"),
        import("../backups/target.js"),
      ]);
      // The served database keeping `name`'s catalog takes the final backup.
      await withDatabases({ database: name, ownCheck: true }, async ({ config, pool, logger, url }) => {
        await migrate(pool, logger);
        const target = findTarget(backupTargets(url, config.backup), name);
        const { finalBackup } = await import("../jobs/backup-database.js");
        const { backup: row, offsiteKey } = await finalBackup({ config, pool, logger, databaseUrl: url }, target);
        const where = `${row.local_path ?? ""}${offsiteKey === undefined ? "" : `, offsite ${offsiteKey}`}`;
        process.stdout.write(`${name}: final backup ${row.id} (${size(row.bytes)}) kept for good: ${where}\n`);
      });
    });
}
