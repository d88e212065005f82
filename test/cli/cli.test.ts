import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../harness/cli.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  expect((await runCli(["migrate"], { DATABASE_URL: db.url })).code).toBe(0);
  await db.pool.query(`
    insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, worker_id, status, started_at, finished_at, error)
    values (1, 'export.csv', 1, 3, 'pool-a', 'succeeded', now() - interval '2 minutes', now() - interval '2 minutes' + interval '1.5 seconds', null),
           (2, 'backup.run', 2, 3, 'pool-a', 'failed', now() - interval '1 minute', now(), 'pg_dump: error: connection refused\nmore detail');`);
});

describe("pmt-worker CLI", () => {
  it("lists its commands in --help", async () => {
    const result = await runCli(["--help"]);
    expect(result.code).toBe(0);
    for (const command of ["start", "migrate", "jobs", "watch"]) expect(result.stdout).toMatch(new RegExp(`^  ${command}\\b`, "m"));
  });

  it("documents the environment in start --help", async () => {
    const result = await runCli(["start", "--help"]);
    expect(result.stdout).toContain("WORKER_CONCURRENCY (default 4)");
    expect(result.stdout).toContain("HISTORY_RETENTION_DAYS (default 90)");
  });

  it("prints recent history as a table, newest first, filtered", async () => {
    const all = await runCli(["jobs"], { DATABASE_URL: db.url });
    expect(all.code, all.stderr).toBe(0);
    const lines = all.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^id\s+job\s+task\s+attempt\s+status\s+started\s+duration\s+error$/);
    expect(lines[2]).toMatch(/backup\.run\s+2\/3\s+failed\s+.*pg_dump: error: connection refused$/);
    expect(lines[3]).toMatch(/export\.csv\s+1\/3\s+succeeded\s+\S+\s+1\.5 s$/);

    const failed = await runCli(["jobs", "--status", "failed", "--json"], { DATABASE_URL: db.url });
    const rows = failed.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ task: "backup.run", status: "failed", attempt: 2, duration_s: expect.any(Number) });

    const none = await runCli(["jobs", "--task", "nothing"], { DATABASE_URL: db.url });
    expect(none.stdout).toBe("no job history matches\n");
  });

  it("rejects bad flags with one line saying what is expected", async () => {
    const limit = await runCli(["jobs", "--limit", "0"], { DATABASE_URL: db.url });
    expect(limit.code).toBe(1);
    expect(limit.stderr).toContain("option '--limit <n>' argument '0' is invalid. expected a whole number from 1 to 10000");
    const status = await runCli(["jobs", "--status", "done"], { DATABASE_URL: db.url });
    expect(status.stderr).toContain("expected one of running, succeeded, failed, abandoned");
    const unknown = await runCli(["frobnicate"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
  });

  it("rejects bad configuration naming the variable, without a stack trace", async () => {
    const result = await runCli(["jobs"], { DATABASE_URL: db.url, WORKER_CONCURRENCY: "0" });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('pmt-worker: invalid configuration:\n  WORKER_CONCURRENCY: expected a whole number from 1 to 100 (got "0")\n');
  });
});
