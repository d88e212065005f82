import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, runCli } from "../harness/cli.js";
import { createTestDatabase } from "../harness/db.js";

describe("pmt-worker migrate", () => {
  it("is safe from two processes at once, then idempotent", async () => {
    const db = await createTestDatabase();
    const env = { DATABASE_URL: db.url };
    const [a, b] = await Promise.all([runCli(["migrate"], env), runCli(["migrate"], env)]);
    expect([a.code, b.code], a.stderr + b.stderr).toEqual([0, 0]);
    const names = fs.readdirSync(path.join(ROOT, "migrations")).filter((f) => f.endsWith(".sql")).sort().map((f) => f.replace(/\.sql$/, ""));
    expect([a.stdout, b.stdout].sort()).toEqual([`applied: ${names.join(", ")}\n`, "database is up to date\n"]);

    const again = await runCli(["migrate"], env);
    expect(again).toMatchObject({ code: 0, stdout: "database is up to date\n" });

    const { rows } = await db.pool.query(`
      select (select count(*)::int from pmt_jobs.migration) as ours,
             (select count(*)::int from graphile_worker.migrations) as graphile`);
    expect(rows[0].ours).toBe(fs.readdirSync(path.join(ROOT, "migrations")).filter((f) => f.endsWith(".sql")).length);
    expect(rows[0].graphile).toBeGreaterThan(10);
  });

  it("leaves the views readable from psql", async () => {
    const db = await createTestDatabase();
    expect((await runCli(["migrate"], { DATABASE_URL: db.url })).code).toBe(0);
    const history = execFileSync("psql", [db.url, "-X", "-c", "table pmt_jobs.job_history"], { encoding: "utf8" });
    expect(history).toMatch(/id \| job_id \| task \| attempt .*\n.*\n\(0 rows\)/);
    const status = execFileSync("psql", [db.url, "-X", "-c", "table pmt_jobs.job_status"], { encoding: "utf8" });
    expect(status).toMatch(/task \| queued \| running \| failed_permanently/);
    // The operator queries shipped in sql/ all run.
    execFileSync("psql", [db.url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", path.join(ROOT, "sql/job_queries.sql")], { encoding: "utf8" });
  });

  it("explains an unreachable database in one line, password hidden", async () => {
    const result = await runCli(["migrate"], { DATABASE_URL: "postgres://u:hunter2@127.0.0.1:1/db" });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^pmt-worker: cannot connect to postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db: .*ECONNREFUSED.*is PostgreSQL running/);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).not.toContain("hunter2");
  });
});
