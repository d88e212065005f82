/**
 * Backups with the real pg_dump and pg_restore against harness databases.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { getBackup, listBackups } from "../../src/backups/catalog.js";
import { readManifest } from "../../src/backups/manifest.js";
import { restoreBackup } from "../../src/backups/restore.js";
import { runBackup } from "../../src/backups/run.js";
import { backupTargets } from "../../src/backups/target.js";
import { verifyBackup } from "../../src/backups/verify.js";
import type { Config } from "../../src/config.js";
import { migrate } from "../../src/db/migrate.js";
import { seedDemo } from "../../src/exports/demo.js";
import { createLogger } from "../../src/log.js";
import { findTools, searchDirs } from "../../src/pgtools/tools.js";
import { applyRetention, planDatabase } from "../../src/retention/apply.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { until } from "../harness/wait.js";
import { testConfig } from "../harness/worker.js";

const logger = createLogger("silent");
let db: TestDatabase;
let config: Config;
let backupDir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, logger);
  await seedDemo(db.pool, 200);
  backupDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-backups-")), "backups");
  config = testConfig({ BACKUP_DIR: backupDir });
});

const target = () => backupTargets(db.url, { databases: [] })[0]!;
const deps = () => ({ config, pool: db.pool, logger });
const sha = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

describe("a backup", () => {
  it.each(["custom", "tar"] as const)("in %s format round-trips through pg_restore with the same row counts", async (format) => {
    const row = await runBackup(deps(), target(), { format });
    expect(row).toMatchObject({ status: "succeeded", database: db.name, format, server_version: expect.stringMatching(/^15\./) });
    expect(row.file).toMatch(new RegExp(`^${db.name}_\\d{8}T\\d{6}Z\\.${format === "custom" ? "dump" : "tar"}$`));
    const file = path.join(backupDir, row.file!);
    expect(fs.statSync(backupDir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(`${file}.json`).mode & 0o777).toBe(0o600);
    expect(fs.statSync(`${file}.globals.json`).mode & 0o777).toBe(0o600);
    expect(readManifest(file)!.globals).toMatchObject({ file: `${row.file}.globals.json`, sha256: sha(`${file}.globals.json`) });
    expect(sha(file)).toBe(row.sha256);
    expect(Number(row.bytes)).toBe(fs.statSync(file).size);
    expect(readManifest(file)).toMatchObject({ database: db.name, format, sha256: row.sha256, bytes: Number(row.bytes) });
    expect(row.table_counts!["public.activity"]).toBe(200);
    expect(fs.readdirSync(backupDir).filter((n) => n.endsWith(".partial"))).toEqual([]);

    const restored = await restoreBackup(config, db.pool, db.url, row.id, `${db.name}_r_${format}`);
    expect(restored.tables).toEqual(row.table_counts);
    expect(restored.tables["public.activity"]).toBe(200);
    await db.pool.query(`drop database ${db.name}_r_${format} with (force)`);
  });

  it("refuses to restore into an existing database", async () => {
    const [row] = await listBackups(db.pool, db.name, 1);
    await expect(restoreBackup(config, db.pool, db.url, row!.id, db.name)).rejects.toThrow(/already exists: restore only into a new database/);
  });

  it("verify re-reads the file and detects a flipped byte", async () => {
    const row = await runBackup(deps(), target());
    expect(await verifyBackup(config, db.pool, row.id)).toMatchObject({ ok: true, problems: [] });
    const file = path.join(backupDir, row.file!);
    const bytes = fs.readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    fs.writeFileSync(file, bytes);
    const result = await verifyBackup(config, db.pool, row.id);
    expect(result.ok).toBe(false);
    expect(result.problems[0]).toMatch(/^sha256 mismatch: file [0-9a-f]{64}, catalog [0-9a-f]{64}$/);
  });

  it("names the server version and the package to install when no pg_dump is new enough", async () => {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-oldpg-"));
    for (const tool of ["pg_dump", "pg_restore"]) {
      fs.writeFileSync(path.join(bin, tool), `#!/bin/sh\necho "${tool} (PostgreSQL) 14.9"\n`, { mode: 0o755 });
    }
    const old = testConfig({ BACKUP_DIR: backupDir, PG_BIN_DIR: bin });
    await expect(runBackup({ config: old, pool: db.pool, logger }, target())).rejects.toThrow(
      new RegExp(`^pg_dump cannot handle PostgreSQL 15\\.\\d+: it needs pg_dump 15 or newer, found 14\\.9 \\(${bin}/pg_dump\\); install postgresql-client-15`),
    );
    const [row] = await listBackups(db.pool, db.name, 1);
    expect(row).toMatchObject({ status: "failed", error: expect.stringContaining("install postgresql-client-15") });
  });

  it("killed mid-run (kill -9 of pg_dump) leaves no backup and a failed row", async () => {
    // Hold a lock pg_dump must wait for, so it is surely running when killed.
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query("begin; lock table public.activity in access exclusive mode");
    const before = fs.readdirSync(backupDir).sort();
    let killed = false;
    const run = runBackup(
      {
        ...deps(),
        onPgDump: (child) => {
          void until(async () => {
            const { rowCount } = await db.pool.query(
              "select 1 from pg_stat_activity where application_name = 'pmt-worker backup' and wait_event_type = 'Lock'",
            );
            return rowCount! > 0;
          }, "pg_dump to wait for the lock").then(() => {
            killed = child.kill("SIGKILL");
          });
        },
      },
      target(),
    );
    await expect(run).rejects.toThrow(/pg_dump was killed \(SIGKILL\)/);
    expect(killed).toBe(true);
    await locker.query("rollback");
    await locker.end();
    expect(fs.readdirSync(backupDir).sort()).toEqual(before);
    const [row] = await listBackups(db.pool, db.name, 1);
    expect(row).toMatchObject({ status: "failed", error: expect.stringContaining("killed (SIGKILL)") });
  });

  it("a full disk fails the backup cleanly and leaves earlier backups intact", async () => {
    const good = await runBackup(deps(), target());
    const goodFile = path.join(backupDir, good.file!);
    const before = fs.readdirSync(backupDir).sort();
    await expect(runBackup({ ...deps(), createOutput: () => fs.createWriteStream("/dev/full") }, target())).rejects.toThrow(
      /^disk full writing .*\.partial \(ENOSPC\); the partial file was removed, earlier backups are untouched$/,
    );
    expect(fs.readdirSync(backupDir).sort()).toEqual(before);
    expect(sha(goodFile)).toBe(good.sha256);
    const [row] = await listBackups(db.pool, db.name, 1);
    expect(row!.status).toBe("failed");
  });

  it("checks free space against the last backup before writing anything", async () => {
    const huge = testConfig({ BACKUP_DIR: backupDir, BACKUP_SPACE_FACTOR: "100000000" });
    const before = fs.readdirSync(backupDir).sort();
    await expect(runBackup({ config: huge, pool: db.pool, logger }, target())).rejects.toThrow(
      /^not enough free space in .*: \d+(\.\d)? (B|KB|MB|GB|TB) free, \d+(\.\d)? (B|KB|MB|GB|TB) needed \(last backup x BACKUP_SPACE_FACTOR\); nothing was written$/,
    );
    expect(fs.readdirSync(backupDir).sort()).toEqual(before);
  });
});

describe("the listing, as the dump is written", () => {
  /** A PG_BIN_DIR whose pg_dump runs the real one through `filter` (a shell pipeline stage), beside the real pg_restore. */
  const fakeDump = (filter: string) => {
    const real = (tool: "pg_dump" | "pg_restore") => findTools(tool, searchDirs()).find((t) => t.major >= 15)!.path;
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-fakedump-"));
    fs.writeFileSync(
      path.join(bin, "pg_dump"),
      `#!/bin/sh\nif [ "$1" = --version ]; then exec "${real("pg_dump")}" --version; fi\n"${real("pg_dump")}" "$@" | ${filter}\n`,
      { mode: 0o755 },
    );
    fs.symlinkSync(real("pg_restore"), path.join(bin, "pg_restore"));
    return testConfig({ BACKUP_DIR: backupDir, PG_BIN_DIR: bin });
  };

  it.each([
    ["not an archive at all", "sed 's/^/x/'", /pg_restore exited with 1: .*(not appear to be a valid archive|could not read)/],
    ["cut short in its table of contents", "head -c 3000", /pg_restore exited with 1: .*(could not read from input file|end of file)/],
  ])("fails a dump pg_restore cannot read (%s): no backup, a failed row", async (_, filter, error) => {
    const before = fs.readdirSync(backupDir).sort();
    await expect(runBackup({ config: fakeDump(filter), pool: db.pool, logger }, target())).rejects.toThrow(error);
    expect(fs.readdirSync(backupDir).sort()).toEqual(before);
    const [row] = await listBackups(db.pool, db.name, 1);
    expect(row).toMatchObject({ status: "failed", error: expect.stringMatching(error) });
  });

  it("passes a dump whose bytes are whole, the listing having read only its head", async () => {
    const row = await runBackup({ config: fakeDump("cat"), pool: db.pool, logger }, target());
    expect(row.status).toBe("succeeded");
    expect(sha(path.join(backupDir, row.file!))).toBe(row.sha256);
  });
});

describe("retention after a backup", () => {
  it("prunes what no tier keeps (file, manifest, row) and reports unknown files without deleting them", async () => {
    fs.writeFileSync(path.join(backupDir, "stranger_20200101T000000Z.dump"), "not ours");
    const strict = testConfig({ BACKUP_DIR: backupDir, RETAIN_DAILY: "1", RETAIN_WEEKLY: "0", RETAIN_MONTHLY: "0", RETAIN_MIN_SUCCESSFUL: "1" });
    const newest = await runBackup({ config: strict, pool: db.pool, logger }, target());
    // What a person confirmed (retention apply): only those go; the rest of the plan waits, untouched.
    const plan = await planDatabase(strict, db.pool, db.name);
    expect(plan.prune.length).toBeGreaterThan(0);
    const [first, ...others] = plan.prune;
    const partial = await applyRetention(strict, db.pool, logger, db.name, new Date(), { only: new Set([first!.id]) });
    expect(partial.prune.map((b) => b.id)).toEqual([first!.id]);
    expect(partial.deferred.map((b) => b.id)).toEqual(others.map((b) => b.id));
    for (const b of others) expect((await getBackup(db.pool, b.id))!.status).toBe("succeeded");
    const result = await applyRetention(strict, db.pool, logger, db.name);
    expect(result.keep.map((k) => [k.backup.id, k.tiers])).toEqual([[newest.id, ["daily"]]]);
    expect(result.prune.map((b) => b.id)).toEqual(others.map((b) => b.id));
    expect(result.deferred).toEqual([]);
    expect(result.unknownFiles).toEqual(["stranger_20200101T000000Z.dump"]);
    for (const pruned of [...partial.prune, ...result.prune]) {
      expect((await getBackup(db.pool, pruned.id))!.status).toBe("pruned");
      if (pruned.local_path) {
        expect(fs.existsSync(pruned.local_path)).toBe(false);
        expect(fs.existsSync(`${pruned.local_path}.json`)).toBe(false);
        expect(fs.existsSync(`${pruned.local_path}.globals.json`)).toBe(false);
      }
    }
    expect(fs.existsSync(path.join(backupDir, "stranger_20200101T000000Z.dump"))).toBe(true);
    expect(fs.readdirSync(backupDir)).toContain(`${newest.file}.json`);
    expect(readManifest(path.join(backupDir, newest.file!))!.tiers).toEqual(["daily"]);
    const status = await db.pool.query("select * from pmt_jobs.backup_status where database = $1", [db.name]);
    expect(status.rows[0]).toMatchObject({ kept: 1, daily: 1, weekly: 0, monthly: 0, running: false });
    expect(Number(status.rows[0].failed_7d)).toBeGreaterThanOrEqual(3);
  });
});

describe("test restore", () => {
  it("restores the newest backup into a scratch database, compares row counts, drops it and records the result", async () => {
    const { testRestore } = await import("../../src/backups/test-restore.js");
    const good = await runBackup(deps(), target());
    const result = await testRestore(config, db.pool, db.url, db.name, logger);
    expect(result).toMatchObject({ ok: true, problems: [] });
    const row = (
      await db.pool.query("select restore_test_ok, restore_test_duration, restore_test_error, restore_tested_at from pmt_jobs.backup where id = $1", [good.id])
    ).rows[0];
    expect(row).toMatchObject({ restore_test_ok: true, restore_test_error: null });
    expect(row.restore_tested_at).toBeInstanceOf(Date);
    const scratch = await db.pool.query("select datname from pg_database where datname like 'pmt_restore_test_%'");
    expect(scratch.rows).toEqual([]);

    // A dump whose recorded counts disagree with what comes back fails the test, loudly.
    await db.pool.query(`update pmt_jobs.backup set table_counts = jsonb_set(table_counts, '{public.activity}', '201') where id = $1`, [good.id]);
    const bad = await testRestore(config, db.pool, db.url, db.name, logger);
    expect(bad).toMatchObject({ ok: false, problems: ["table public.activity has 200 rows, 201 were dumped"] });
    const after = (await db.pool.query("select restore_test_ok, restore_test_error from pmt_jobs.backup where id = $1", [good.id])).rows[0];
    expect(after).toEqual({ restore_test_ok: false, restore_test_error: "table public.activity has 200 rows, 201 were dumped" });
  });
});

describe("more formats and rails", () => {
  it("directory format with parallel jobs round-trips, hashed file by file", async () => {
    const dir = testConfig({ BACKUP_DIR: backupDir, BACKUP_FORMAT: "directory", BACKUP_JOBS: "2" });
    const row = await runBackup({ config: dir, pool: db.pool, logger }, target());
    expect(row.file).toMatch(/\.dir$/);
    expect(fs.statSync(path.join(backupDir, row.file!)).isDirectory()).toBe(true);
    const manifest = readManifest(path.join(backupDir, row.file!))!;
    expect(manifest.files!.length).toBeGreaterThan(1);
    expect(await verifyBackup(dir, db.pool, row.id)).toMatchObject({ ok: true });
    const restored = await restoreBackup(dir, db.pool, db.url, row.id, `${db.name}_r_dir`);
    expect(restored.tables).toEqual(row.table_counts);
    await db.pool.query(`drop database ${db.name}_r_dir with (force)`);
  });

  it("passes the password in the environment, never on pg_dump's command line", async () => {
    const role = `bk_${db.name.slice(-6)}`;
    await db.pool.query(`create role ${role} login password 'Backup-Secret-42' superuser`);
    try {
      const url = new URL(db.url);
      url.username = role;
      url.password = "Backup-Secret-42";
      let argv: string[] = [];
      await runBackup({ ...deps(), onPgDump: (child) => (argv = child.spawnargs) }, { database: db.name, url: url.toString() });
      expect(argv.join(" ")).not.toContain("Backup-Secret-42");
      expect(argv.some((a) => a.startsWith("--snapshot="))).toBe(true);
    } finally {
      await db.pool.query(`drop role ${role}`);
    }
  });

  it("cleans up after a worker that died mid-backup: the running row fails and its .partial goes", async () => {
    const { recoverBackups } = await import("../../src/backups/recover.js");
    const stale = await db.pool.query<{ id: number }>(
      "insert into pmt_jobs.backup (database, format, started_at) values ($1, 'custom', now() - interval '1 hour') returning id",
      [db.name],
    );
    fs.writeFileSync(path.join(backupDir, `${db.name}_20200101T000000Z.dump.partial`), "half");
    const result = await recoverBackups(backupDir, db.pool, logger);
    expect(result.removed).toEqual([`${db.name}_20200101T000000Z.dump.partial`]);
    expect(await getBackup(db.pool, stale.rows[0]!.id)).toMatchObject({ status: "failed", error: "interrupted: the worker stopped during the backup" });
  });
});
