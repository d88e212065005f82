/**
 * The operator's commands of issue 15, through the built CLI against a
 * harness database: status with next runs and totals, jobs retry, retention
 * apply, backup test-restore --database, config, colours on request only,
 * JSON in seconds and bytes, readable logs when asked.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { runCli } from "../harness/cli.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";

let db: TestDatabase;
/** A second served database (jobs retry with several). */
let other: TestDatabase;
let env: Record<string, string>;
let dir: string;

// eslint-disable-next-line no-control-regex -- the escape that starts a colour
const ANSI = /\x1b\[[0-9;]*m/;

/** A job that used up its attempts, as graphile-worker leaves one: its id. */
async function failedForGood(task: string, error = "boom: connection refused"): Promise<number> {
  const { rows } = await db.pool.query<{ id: number }>("select id from graphile_worker.add_job($1, '{}'::json, max_attempts := 2)", [task]);
  const id = Number(rows[0]!.id);
  await db.pool.query("update graphile_worker._private_jobs set attempts = 2, last_error = $2, run_at = now() + interval '1 hour' where id = $1", [id, error]);
  return id;
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  other = await createTestDatabase();
  await migrate(other.pool, createLogger("silent"));
  await db.pool.query("create table public.sample as select g as id, md5(g::text) as v from generate_series(1, 300) g");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-cli-operator-"));
  env = { DATABASE_URL: db.url, BACKUP_DIR: path.join(dir, "b"), PMT_HOME: path.join(dir, "home"), BACKUP_TEST_RESTORE_CRON: "0 4 * * 0" };
  for (let i = 0; i < 2; i++) {
    const run = await runCli(["backup", "run"], env);
    expect(run.code, run.stderr).toBe(0);
  }
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("status", () => {
  it("shows when each crontab entry runs next and last ran, and backup totals; JSON in seconds and bytes", async () => {
    // The last attempt of an entry's task, for a backup entry of its own database only.
    await db.pool.query(
      `insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, worker_id, status, started_at, finished_at, payload_summary)
       values (990001, 'pmt_jobs.backup', 1, 3, 'w', 'failed', now() - interval '2 hours 5 minutes', now() - interval '2 hours', $1),
              (990002, 'pmt_jobs.backup', 1, 3, 'w', 'succeeded', now() - interval '1 minute', now(), '{"database": "another"}'),
              (990003, 'pmt_jobs.alerts_check', 1, 1, 'w', 'succeeded', now() - interval '10 minutes', now() - interval '10 minutes', '{}')`,
      [JSON.stringify({ database: db.name })],
    );
    const text = await runCli(["status"], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).not.toMatch(ANSI);
    expect(text.stdout).toMatch(/^Next runs \(crontab, UTC\):/m);
    for (const [entry, cron, last] of [
      [`backup:${db.name}`, "0 0 \\* \\* \\*", "2 h ago, failed"],
      ["history_prune", "30 3 \\* \\* \\*", "never"],
      ["backup_test_restore", "0 4 \\* \\* 0", "never"],
      ["alerts_check", "\\*/15 \\* \\* \\* \\*", "1\\d min ago, succeeded"],
    ]) {
      expect(text.stdout).toMatch(new RegExp(`^${entry}\\s+${cron}\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:00Z\\s+in \\d+ (s|min|h|d)\\s+${last}$`, "m"));
    }
    expect(text.stdout).toMatch(new RegExp(`^${db.name}\\s+\\d+ (s|min) ago\\s+2\\s+\\d+(\\.\\d)? KB\\s+0\\s+off`, "m"));
    expect(text.stdout).toMatch(/^Total: 2 backups, \d+(\.\d)? KB$/m);

    const json = JSON.parse((await runCli(["status", "--json"], env)).stdout);
    const backup = json.backups.find((b: { database: string }) => b.database === db.name);
    expect(backup).toMatchObject({ kept: 2, kept_bytes: expect.any(Number), last_success_age_s: expect.any(Number), offsite_lag_s: expect.any(Number) });
    expect(backup.kept_bytes).toBeGreaterThan(1000);
    expect(backup.last_success_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(json.totals).toEqual({ backups: 2, backup_bytes: backup.kept_bytes, offsite_copies: 0, offsite_bytes: 0 });
    const prune = json.schedule.find((e: { identifier: string }) => e.identifier === "history_prune");
    expect(prune).toEqual({
      identifier: "history_prune",
      task: "pmt_jobs.history_prune",
      match: "30 3 * * *",
      next_run: expect.stringMatching(/T03:30:00\.000Z$/),
      last_run: null,
    });
    expect(new Date(prune.next_run).getTime()).toBeGreaterThan(Date.now());
    expect(new Date(prune.next_run).getTime()).toBeLessThanOrEqual(Date.now() + 24 * 3600_000);
    // No interval strings or objects anywhere.
    expect(JSON.stringify(json)).not.toMatch(/\d\d:\d\d:\d\d"|"(hours|minutes|seconds|milliseconds)":/);
  });

  it("has colours on request (FORCE_COLOR) and never with NO_COLOR", async () => {
    expect((await runCli(["status"], { ...env, FORCE_COLOR: "1" })).stdout).toMatch(ANSI);
    expect((await runCli(["backup", "list"], { ...env, FORCE_COLOR: "1" })).stdout).toMatch(ANSI);
    expect((await runCli(["status"], { ...env, NO_COLOR: "1" })).stdout).not.toMatch(ANSI);
  });
});

describe("JSON output", () => {
  it("gives durations in seconds and sizes in bytes, never interval objects", async () => {
    const rows = jsonLines((await runCli(["backup", "list", "--json"], env)).stdout);
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row).toMatchObject({ bytes: expect.any(Number), duration_s: expect.any(Number), restore_test_duration_s: null });
      expect(row).not.toHaveProperty("duration");
      expect(row.started_at).toMatch(/Z$/);
    }
    await db.pool.query(
      `insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, worker_id, status, started_at, finished_at)
       values (999001, 'json.check', 1, 1, 'w', 'succeeded', now() - interval '5 seconds', now() - interval '5 seconds' + interval '2.5 seconds')`,
    );
    const [run] = jsonLines((await runCli(["jobs", "--task", "json.check", "--json"], env)).stdout);
    expect(run).toMatchObject({ task: "json.check", duration_s: 2.5 });
    expect(run).not.toHaveProperty("duration_ms");
  });
});

describe("jobs retry", () => {
  it("gives a job that failed for good one more attempt now, recording who asked (as the console's Retry does)", async () => {
    const id = await failedForGood("retry.me");
    const r = await runCli(["jobs", "retry", String(id)], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`job ${id} (retry.me) queued to run again now as attempt 3 of 3 (it had used all 2); its last error: boom: connection refused\n`);
    const { rows } = await db.pool.query("select attempts, max_attempts, run_at <= now() as due, payload from graphile_worker._private_jobs where id = $1", [
      id,
    ]);
    expect(rows).toEqual([{ attempts: 2, max_attempts: 3, due: true, payload: { retriedBy: `pmt-worker jobs retry as ${os.userInfo().username}` } }]);
    // Retried once, it is no longer a job that failed for good.
    const again = await runCli(["jobs", "retry", String(id)], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(new RegExp(`^pmt-worker: job ${id} \\(retry\\.me\\) has not failed for good \\(2 of 3 attempts used\\)`));
  });

  it("refuses a job that has not failed for good, one that does not exist, an attempt's id and a bad id", async () => {
    const { rows } = await db.pool.query<{ id: number }>("select id from graphile_worker.add_job('still.trying', '{}'::json, max_attempts := 3)");
    const pending = Number(rows[0]!.id);
    await db.pool.query("update graphile_worker._private_jobs set attempts = 1, run_at = now() + interval '1 hour' where id = $1", [pending]);
    const notFailed = await runCli(["jobs", "retry", String(pending)], env);
    expect(notFailed.code).toBe(1);
    expect(notFailed.stderr).toMatch(
      new RegExp(`^pmt-worker: job ${pending} \\(still\\.trying\\) has not failed for good \\(1 of 3 attempts used\\): the worker runs it again at `),
    );
    const unchanged = await db.pool.query("select attempts from graphile_worker.jobs where id = $1", [pending]);
    expect(unchanged.rows).toEqual([{ attempts: 1 }]);

    const missing = await runCli(["jobs", "retry", "987654"], env);
    expect(missing).toMatchObject({
      code: 1,
      stderr: "pmt-worker: there is no job 987654: give the id in the job column of pmt-worker jobs --status failed\n",
    });

    const { rows: attempt } = await db.pool.query<{ id: number }>(
      // An id no queued job has.
      `insert into pmt_jobs.job_run (id, job_id, task, attempt, max_attempts, worker_id, status, started_at, finished_at, error)
       overriding system value values (777001, 555001, 'gone.task', 1, 1, 'w', 'failed', now(), now(), 'x') returning id`,
    );
    const byAttempt = await runCli(["jobs", "retry", String(attempt[0]!.id)], env);
    expect(byAttempt.code).toBe(1);
    expect(byAttempt.stderr).toContain(`is the id of an attempt of job 555001: give the job's id`);

    const { rows: worn } = await db.pool.query<{ id: number }>("select id from graphile_worker.add_job('worn.out', '{}'::json, max_attempts := 32767)");
    await db.pool.query("update graphile_worker._private_jobs set attempts = 32767 where id = $1", [worn[0]!.id]);
    const most = await runCli(["jobs", "retry", String(worn[0]!.id)], env);
    expect(most).toMatchObject({
      code: 1,
      stderr: `pmt-worker: job ${worn[0]!.id} (worn.out) has had 32767 attempts, graphile-worker's most: add it again as a new job instead\n`,
    });

    const bad = await runCli(["jobs", "retry", "abc"], env);
    expect(bad).toMatchObject({ code: 1, stderr: 'pmt-worker: "abc" is not a job id: expected the number in the job column of pmt-worker jobs\n' });
  });

  it("needs --database when several databases are served, and retries in the one named", async () => {
    const { rows } = await other.pool.query<{ id: number }>("select id from graphile_worker.add_job('other.task', '{}'::json, max_attempts := 1)");
    const id = Number(rows[0]!.id);
    await other.pool.query("update graphile_worker._private_jobs set attempts = 1 where id = $1", [id]);
    const several = { ...env, PMT_DATABASES: `${db.name},${other.name}` };
    const ambiguous = await runCli(["jobs", "retry", String(id)], several);
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stderr).toMatch(
      /^pmt-worker: jobs retry: this worker serves several databases \(.*\), each with its own catalog and ids: say which with --database <name>/,
    );
    const named = await runCli(["jobs", "retry", String(id), "--database", other.name], several);
    expect(named.code, named.stderr).toBe(0);
    expect(named.stdout).toMatch(new RegExp(`^job ${id} \\(other\\.task\\) queued to run again now`));
    expect((await other.pool.query("select attempts, max_attempts from graphile_worker.jobs where id = $1", [id])).rows).toEqual([
      { attempts: 1, max_attempts: 2 },
    ]);
  });
});

describe("retention apply and test-restore", () => {
  it("refuses without --yes when stdin is not a terminal; with --yes prints the plan and prunes", async () => {
    const tight = { ...env, RETAIN_DAILY: "1", RETAIN_WEEKLY: "0", RETAIN_MONTHLY: "0", RETAIN_MIN_SUCCESSFUL: "1" };
    const refused = await runCli(["retention", "apply"], tight);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^pmt-worker: retention apply deletes backups and stdin is not a terminal to ask on: give --yes/);
    const before = await db.pool.query("select id from pmt_jobs.backup where status = 'succeeded' order by started_at");
    expect(before.rows).toHaveLength(2);

    const jsonAsking = await runCli(["retention", "apply", "--json"], tight);
    expect(jsonAsking).toMatchObject({ code: 1, stderr: expect.stringMatching(/^pmt-worker: retention apply --json needs --yes/) });
    const applied = await runCli(["retention", "apply", "--database", db.name, "--yes"], tight);
    expect(applied.code, applied.stderr).toBe(0);
    const [older, newer] = before.rows.map((r) => Number(r.id));
    expect(applied.stdout).toMatch(new RegExp(`^${newer}\\s+\\S+\\s+keep \\(daily\\)\\s+\\d+(\\.\\d)? KB\\s`, "m"));
    expect(applied.stdout).toMatch(new RegExp(`^${older}\\s+\\S+\\s+prune\\s+\\d+(\\.\\d)? KB\\s`, "m"));
    expect(applied.stdout).toMatch(new RegExp(`^${db.name}: pruned 1 backup \\(\\d+(\\.\\d)? KB\\), kept 1$`, "m"));
    const after = await db.pool.query("select id, status from pmt_jobs.backup order by started_at");
    expect(after.rows).toEqual([
      { id: older, status: "pruned" },
      { id: newer, status: "succeeded" },
    ]);
    // Nothing left to prune: JSON for a script, sizes in bytes.
    const json = await runCli(["retention", "apply", "--database", db.name, "--yes", "--json"], tight);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      database: db.name,
      pruned: [],
      pruned_without_offsite_copy: [],
      kept: 1,
      left_for_next_run: [],
      unknown_files: [],
    });
  });

  it("test-restores one database with --database", async () => {
    const r = await runCli(["backup", "test-restore", "--database", db.name], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${db.name}: test restore of backup \\d+ passed \\(\\d+(\\.\\d)? m?s\\)\\n$`));
    const nope = await runCli(["backup", "test-restore", "--database", "nope"], env);
    expect(nope.code).toBe(1);
    expect(nope.stderr).toMatch(/^pmt-worker: database "nope" is not one this worker backs up/);
  });
});

describe("config", () => {
  it("prints the effective settings with their source, secrets masked", async () => {
    const secretUrl = db.url.replace(/\/\/([^:@/]+)(:[^@/]*)?@/, "//$1:hunter2secret@");
    const cwd = fs.mkdtempSync(path.join(dir, "cwd-"));
    fs.writeFileSync(path.join(cwd, ".env"), "WORKER_CONCURRENCY=7\n");
    const cfg = {
      DATABASE_URL: secretUrl,
      PMT_HOME: path.join(dir, "home"),
      SMTP_URL: "smtp://mailer:mailpass@mail.example.org:587",
      HISTORY_RETENTION_DAYS: "30",
      // A password that looks like a plain word is masked all the same.
      CONSOLE_PASSWORD: "correcthorsebattery",
    };
    const text = await runCli(["config"], cfg, cwd);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).not.toContain("hunter2secret");
    expect(text.stdout).not.toContain("correcthorsebattery");
    expect(text.stdout).toMatch(/^CONSOLE_PASSWORD\s+\*\*\*\s+env$/m);
    expect(text.stdout).not.toContain("mailpass");
    expect(text.stdout).toMatch(/^DATABASE_URL\s+postgres:\/\/\S+:\*\*\*@\S+\s+env$/m);
    expect(text.stdout).toMatch(/^SMTP_URL\s+smtp:\/\/mailer:\*\*\*@mail\.example\.org:587\s+env$/m);
    expect(text.stdout).toMatch(/^HISTORY_RETENTION_DAYS\s+30\s+env$/m);
    expect(text.stdout).toMatch(/^WORKER_CONCURRENCY\s+7\s+\.env$/m);
    expect(text.stdout).toMatch(/^BACKUP_CRON\s+0 0 \* \* \*\s+default$/m);
    expect(text.stdout).not.toMatch(/^OFFSITE_URL\b/m);

    const json = JSON.parse((await runCli(["config", "--json", "--all"], cfg, cwd)).stdout) as { name: string; value: string | null; source: string }[];
    expect(json).toContainEqual({ name: "OFFSITE_URL", value: null, source: "unset" });
    expect(json).toContainEqual({ name: "LOG_FORMAT", value: "auto", source: "default" });
    expect(JSON.stringify(json)).not.toMatch(/hunter2secret|mailpass|correcthorsebattery/);

    const bad = await runCli(["config"], { ...cfg, WORKER_CONCURRENCY: "0" }, cwd);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^WORKER_CONCURRENCY\s+0\s+env$/m);
    expect(bad.stderr).toContain("WORKER_CONCURRENCY: expected a whole number from 1 to 100");
  });
});

describe("logs", () => {
  it("are JSON lines when not on a terminal, readable lines with LOG_FORMAT=pretty", async () => {
    // A command's warnings and worse go to stderr: an unknown file in BACKUP_DIR is one (retention apply).
    fs.writeFileSync(path.join(env.BACKUP_DIR!, "stray_20200101T000000Z.dump"), "x");
    const json = await runCli(["retention", "apply", "--yes", "--database", db.name], env);
    expect(json.code, json.stderr).toBe(0);
    const line = json.stderr.split("\n").find((l) => l.includes("catalog does not know"))!;
    expect(JSON.parse(line)).toMatchObject({ level: "warn", msg: "files in BACKUP_DIR that the catalog does not know; left alone" });

    const pretty = await runCli(["retention", "apply", "--yes", "--database", db.name], { ...env, LOG_FORMAT: "pretty" });
    expect(pretty.stderr).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ WARN {2}files in BACKUP_DIR that the catalog does not know; left alone {2}dir=\S+ files=\["stray_20200101T000000Z\.dump"\]$/m,
    );
    expect(pretty.stderr).not.toMatch(ANSI);
  });
});
