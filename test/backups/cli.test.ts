/** The backup CLI and the backup job, against a harness database and the real pg_dump. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { backupTargets } from "../../src/backups/target.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { buildCronItems } from "../../src/worker/crontab.js";
import { runCli } from "../harness/cli.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { startTestWorker, testConfig } from "../harness/worker.js";

let db: TestDatabase;
let env: Record<string, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  await db.pool.query("create table public.sample as select g as id, md5(g::text) as v from generate_series(1, 500) g");
  env = { DATABASE_URL: db.url, BACKUP_DIR: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-cli-backup-")), "b") };
});

describe("pmt-worker backup", () => {
  it("runs, lists, verifies, plans retention and restores", async () => {
    const run = await runCli(["backup", "run"], env);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const id = Number(/backup (\d+) succeeded/.exec(run.stdout)![1]);
    expect(run.stdout).toMatch(new RegExp(`^${db.name}: backup ${id} succeeded, [\\d.]+ KB -> ${env.BACKUP_DIR}/${db.name}_\\d{8}T\\d{6}Z\\.dump\\n$`));

    const list = await runCli(["backup", "list", "--json"], env);
    const rows = list.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id, status: "succeeded", tiers: expect.arrayContaining(["daily"]) });

    expect(await runCli(["backup", "verify", String(id)], env)).toMatchObject({ code: 0, stdout: expect.stringContaining(`backup ${id} verified`) });

    const plan = await runCli(["retention", "plan", "--json"], env);
    expect(JSON.parse(plan.stdout)).toMatchObject({ database: db.name, keep: [{ id, tiers: expect.arrayContaining(["daily"]) }], prune: [] });
    const human = await runCli(["retention", "plan"], env);
    expect(human.stdout).toMatch(new RegExp(`${id}\\s+\\S+\\s+keep \\(daily`));

    const restore = await runCli(["backup", "restore", String(id), "--into", `${db.name}_cli`], env);
    expect(restore.stdout).toMatch(new RegExp(`^restored backup ${id} into ${db.name}_cli: \\d+ tables, \\d+ rows, [\\d.]+ m?s\\n$`));
    const again = await runCli(["backup", "restore", String(id), "--into", `${db.name}_cli`], env);
    expect(again).toMatchObject({ code: 1, stderr: `pmt-worker: database ${db.name}_cli already exists: restore only into a new database\n` });
    await db.pool.query(`drop database ${db.name}_cli with (force)`);
  });

  it("migrates a new database first; once every migration is applied, backs up without migrating again", async () => {
    const fresh = await createTestDatabase();
    const freshEnv = { DATABASE_URL: fresh.url, BACKUP_DIR: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-cli-backup-")), "b") };
    expect(await runCli(["backup", "run"], freshEnv)).toMatchObject({ code: 0, stderr: "" });
    const migrations = fs.readdirSync(new URL("../../migrations/", import.meta.url)).filter((f) => f.endsWith(".sql"));
    expect((await fresh.pool.query("select count(*)::int as n from pmt_jobs.migration")).rows[0].n).toBe(migrations.length);
    // migrate waits for its advisory lock: held here, a run that migrated again would never finish.
    const holder = await fresh.pool.connect();
    try {
      await holder.query("select pg_advisory_lock($1)", [0x706d7401]);
      expect(await runCli(["backup", "run"], freshEnv)).toMatchObject({ code: 0, stderr: "" });
    } finally {
      await holder.query("select pg_advisory_unlock($1)", [0x706d7401]);
      holder.release();
    }
  });

  it("explains bad arguments in one line", async () => {
    expect(await runCli(["backup", "run", "--database", "nope"], env)).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^pmt-worker: database "nope" is not one this worker backs up/),
    });
    expect((await runCli(["backup", "run", "--format", "zip"], env)).stderr).toContain("expected one of custom, tar, directory");
    expect(await runCli(["backup", "verify", "999999"], env)).toMatchObject({
      code: 1,
      stderr: "pmt-worker: backup 999999 does not exist (see pmt-worker backup list)\n",
    });
    expect((await runCli(["backup", "restore", "1", "--into", "bad name"], env)).stderr).toContain("expected a new database name");
    // Once: exit 1 and no output at all.
    const notAnId = 'pmt-worker: "abc" is not a backup id: expected the number in the id column of pmt-worker backup list\n';
    expect(await runCli(["backup", "verify", "abc"], env)).toMatchObject({ code: 1, stdout: "", stderr: notAnId });
    expect(await runCli(["backup", "restore", "abc", "--into", "x"], env)).toMatchObject({ code: 1, stdout: "", stderr: notAnId });
  });
});

describe("the backup job", () => {
  it("is scheduled from configuration, one cron item and queue per database", () => {
    const config = testConfig({ BACKUP_CRON: "15 1 * * *" });
    const items = buildCronItems(config, backupTargets(db.url, { databases: ["pmt", "pmt_bmgf"] }));
    const backups = items.filter((i) => i.task === "pmt_jobs.backup");
    expect(backups.map((i) => [i.identifier, i.payload, i.options.queueName])).toEqual([
      ["backup:pmt", { database: "pmt" }, "backup:pmt"],
      ["backup:pmt_bmgf", { database: "pmt_bmgf" }, "backup:pmt_bmgf"],
    ]);
    expect((backups[0]!.match as unknown as { parsedCronMatch: unknown }).parsedCronMatch).toMatchObject({ minutes: [15], hours: [1] });
  });

  it("runs through the worker and its history, and records the job in the catalog", async () => {
    const log = await JobEventLog.listen(db.url);
    const worker = await startTestWorker(db.url, { env: { BACKUP_DIR: env.BACKUP_DIR! } });
    try {
      const { rows } = await db.pool.query<{ id: number }>(
        "select id from graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text))",
        [db.name],
      );
      const jobId = Number(rows[0]!.id);
      await log.waitFor((e) => e.job_id === jobId && e.status === "succeeded");
      const backup = await db.pool.query("select status, job_id from pmt_jobs.backup where job_id = $1", [jobId]);
      expect(backup.rows).toEqual([{ status: "succeeded", job_id: jobId }]);
      const metrics = await (await fetch(`http://127.0.0.1:${worker.httpPort}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`pmt_worker_backup_last_success_age_seconds\\{database="${db.name}"\\} \\d`));
      expect(metrics).toMatch(new RegExp(`pmt_worker_backup_last_bytes\\{database="${db.name}"\\} [1-9]`));
      expect(metrics).toMatch(new RegExp(`pmt_worker_backup_last_duration_seconds\\{database="${db.name}"\\} \\d`));
      expect(metrics).toMatch(new RegExp(`pmt_worker_offsite_lag_seconds\\{database="${db.name}"\\} \\d`));
      expect(metrics).toMatch(/pmt_worker_backup_dir_free_bytes [1-9]/);

      const status = await runCli(["status", "--json"], env);
      const parsed = JSON.parse(status.stdout);
      expect(parsed.workers.map((w: { id: string }) => w.id)).toContain(worker.workerId);
      expect(parsed.last_24h).toContainEqual({ task: "pmt_jobs.backup", succeeded: expect.any(Number), failed: 0, abandoned: 0, running: 0 });
      expect(parsed.backups).toContainEqual(expect.objectContaining({ database: db.name, failed_7d: 0 }));
      const human = await runCli(["status"], env);
      expect(human.stdout).toMatch(/^Workers \(1 alive\):/);
      expect(human.stdout).toContain("Backups:");
    } finally {
      await worker.stop();
      await log.close();
    }
  });
});
