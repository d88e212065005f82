import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { migrationNames } from "../../src/db/migrate.js";
import { ROOT, runCli } from "../harness/cli.js";
import { createTestDatabase } from "../harness/db.js";

describe("pmt-worker migrate", () => {
  it("is safe from two processes at once, then idempotent", async () => {
    const db = await createTestDatabase();
    const env = { DATABASE_URL: db.url };
    const [a, b] = await Promise.all([runCli(["migrate"], env), runCli(["migrate"], env)]);
    expect([a.code, b.code], a.stderr + b.stderr).toEqual([0, 0]);
    expect([a.stdout, b.stdout].sort()).toEqual([`applied: ${migrationNames().join(", ")}\n`, "database is up to date\n"]);

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

  it("gives every function of ours a fixed search_path, and those reading PMT's tables row_security off", async () => {
    const db = await createTestDatabase();
    expect((await runCli(["migrate"], { DATABASE_URL: db.url })).code).toBe(0);
    // Ours: everything in pmt_jobs, PMT's export functions, and any trigger function on graphile-worker's tables not its own.
    const { rows } = await db.pool.query<{ name: string; config: string[] | null; reads_pmt: boolean }>(`
      select p.oid::regprocedure::text as name, p.proconfig as config,
             p.prosrc ~ '(from|join)\\s+public\\.' as reads_pmt
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'pmt_jobs'
         or (n.nspname = 'public' and p.proname in ('pmt_filter_csv', 'pmt_filter_iati'))
         or p.oid in (select t.tgfoid from pg_trigger t join pg_class c on c.oid = t.tgrelid
                      join pg_namespace cn on cn.oid = c.relnamespace
                      join pg_proc tp on tp.oid = t.tgfoid join pg_namespace tn on tn.oid = tp.pronamespace
                      where cn.nspname = 'graphile_worker' and tn.nspname <> 'graphile_worker')
      order by 1`);
    expect(rows.length).toBeGreaterThan(20);
    expect(rows.filter((r) => !r.config?.includes("search_path=pg_catalog, pg_temp")).map((r) => r.name)).toEqual([]);
    const readers = rows.filter((r) => r.reads_pmt);
    expect(readers.map((r) => r.name)).toEqual(
      expect.arrayContaining(["pmt_jobs.filter_activities(jsonb)", "pmt_jobs.export_rows(jsonb,boolean)", "pmt_jobs.pmt_version()"]),
    );
    expect(readers.filter((r) => !r.config?.includes("row_security=off")).map((r) => r.name)).toEqual([]);
  });

  it("warns about a public schema anyone may create objects in, naming the fix", async () => {
    const db = await createTestDatabase();
    await db.pool.query("grant create on schema public to public");
    const open = await runCli(["migrate"], { DATABASE_URL: db.url });
    expect(open.code).toBe(0);
    expect(open.stderr).toMatch(/^warning: public schema: every role may create objects in schema public .*revoke create on schema public from public;$/m);
    await db.pool.query("revoke create on schema public from public");
    const fixed = await runCli(["migrate"], { DATABASE_URL: db.url });
    expect(fixed).toMatchObject({ code: 0, stdout: "database is up to date\n" });
    expect(fixed.stderr).not.toContain("warning");
  });

  it("explains an unreachable database in one line, password hidden", async () => {
    const result = await runCli(["migrate"], { DATABASE_URL: "postgres://u:hunter2@127.0.0.1:1/db" });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^pmt-worker: cannot connect to postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db: .*ECONNREFUSED.*is PostgreSQL running/);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).not.toContain("hunter2");
  });
});
