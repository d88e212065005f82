/**
 * Fault: a manual `pmt-worker backup run` (a real CLI process) is started
 * while the worker's backup of the same database is in the middle of its
 * pg_dump (held there by a table lock). The second run refuses with one
 * clear line, before writing any row or file; the first one's .partial is
 * untouched and it finishes with its file intact. Afterwards the lock is
 * free again and a manual run succeeds.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { runCli } from "../harness/cli.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { recordFault, Workers } from "../harness/faults.js";
import { until } from "../harness/wait.js";

let db: TestDatabase;
const workers: Workers = new Workers(() => ({ DATABASE_URL: db.url, BACKUP_DIR: path.join(workers.home, "b") }));

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  await db.pool.query("create table public.sample as select g as id, md5(g::text) as v from generate_series(1, 5000) g");
});

describe("two backups of one database at once", () => {
  it("the second refuses with a clear line and touches nothing; the first succeeds intact", async () => {
    const backupDir = path.join(workers.home, "b");
    const cliEnv = { DATABASE_URL: db.url, BACKUP_DIR: backupDir, PMT_HOME: workers.home };
    const worker = await workers.start();
    const log = await JobEventLog.listen(db.url);

    // A lock pg_dump must wait for: the worker's run is surely mid-dump when the manual one starts.
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query("begin; lock table public.sample in access exclusive mode");
    const { rows } = await db.pool.query<{ id: number }>("select id from graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text))", [
      db.name,
    ]);
    const jobId = Number(rows[0]!.id);
    // Both the row counts and pg_dump itself wait, and the dump's .partial is open (its globals' beside it, written while it dumps).
    const partial = await until(async () => {
      const r = await db.pool.query("select 1 from pg_stat_activity where application_name = 'pmt-worker backup' and wait_event_type = 'Lock'");
      const partials = fs.existsSync(backupDir) ? fs.readdirSync(backupDir).filter((f) => f.endsWith(".dump.partial")) : [];
      return (r.rowCount ?? 0) >= 2 && partials.length === 1 ? partials[0] : undefined;
    }, "pg_dump to be waiting with its .partial open");
    const inode = fs.statSync(path.join(backupDir, partial!)).ino;
    const running = (await db.pool.query<{ id: number }>("select id from pmt_jobs.backup where status = 'running'")).rows;
    expect(running).toHaveLength(1);

    const second = await runCli(["backup", "run"], cliEnv);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(
      new RegExp(
        `^${db.name}: not started: another backup of ${db.name} is running \\(backup ${running[0]!.id}, started \\S+Z, \\S+ pid \\d+\\); this run did not start and touched nothing`,
        "m",
      ),
    );
    // Nothing of the first run was touched, and the second left no row.
    expect(fs.statSync(path.join(backupDir, partial!)).ino).toBe(inode);
    expect((await db.pool.query("select id, status from pmt_jobs.backup order by id")).rows).toEqual([{ id: running[0]!.id, status: "running" }]);

    await locker.query("rollback");
    await locker.end();
    await log.waitFor((e) => e.job_id === jobId && e.status === "succeeded", 60_000, "the first backup to succeed");
    const first = (await db.pool.query("select id, status, file, bytes, sha256 from pmt_jobs.backup where id = $1", [running[0]!.id])).rows[0];
    expect(first.status).toBe("succeeded");
    const content = fs.readFileSync(path.join(backupDir, first.file));
    expect(content.length).toBe(Number(first.bytes));
    expect(crypto.createHash("sha256").update(content).digest("hex")).toBe(first.sha256);
    expect(fs.readdirSync(backupDir).sort()).toEqual([first.file, `${first.file}.globals.json`, `${first.file}.json`]);

    // The lock went with the run: a manual backup now goes ahead.
    const third = await runCli(["backup", "run"], cliEnv);
    expect(third.code, third.stderr).toBe(0);
    expect(third.stdout).toMatch(/backup \d+ succeeded/);

    expect(await Workers.stop(worker)).toBe(0);
    await log.close();
    recordFault({
      scenario: "backup",
      fault: "a manual backup run (CLI) started while the worker's backup of the same database is mid-pg_dump",
      outcome: "second run refused in one line (advisory lock in the catalog database), no row, no file touched; first run succeeded intact",
      lost: 0,
    });
  });
});
