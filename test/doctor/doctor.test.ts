/** `pmt-worker doctor` against real components, and each FAIL path. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { runCli } from "../harness/cli.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { S3RVER_CREDENTIALS, S3Sink } from "../harness/s3.js";
import { SmtpSink } from "../harness/smtp.js";

let db: TestDatabase;
let smtp: SmtpSink;
let s3: S3Sink;
let env: Record<string, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  smtp = await SmtpSink.start();
  s3 = await S3Sink.start(["doctor"]);
  env = {
    ...S3RVER_CREDENTIALS,
    DATABASE_URL: db.url,
    BACKUP_DIR: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-doctor-")), "b"),
    BACKUP_MIN_FREE_MB: "1",
    SMTP_URL: smtp.url,
    OFFSITE_URL: "s3://doctor/pmt",
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: "true",
  };
});

afterAll(async () => {
  await smtp?.down();
  await s3?.close();
});

function verdicts(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .map((c: { name: string; verdict: string; detail: string }) => [c.name, `${c.verdict} ${c.detail}`]),
  );
}

describe("pmt-worker doctor", () => {
  it("reports OK for a healthy setup, one line per check, and exits 0", async () => {
    const result = await runCli(["doctor"], env);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    // Nothing on stderr: once the AWS SDK's 9-line "will require node >=22" warning came with every command on Node 20.
    expect(result.stderr).toBe("");
    for (const name of ["database", "clock", "queue", "migrations", `pg_dump ${db.name}`, "backup space", "smtp", "offsite"]) {
      expect(result.stdout).toMatch(new RegExp(`^OK    ${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s+\\S`, "m"));
    }
    expect(result.stdout).toContain("(no mail sent)");
    expect(result.stdout).toContain("probe written and deleted");
    expect(smtp.messages).toHaveLength(0);
  });

  it.each([
    [
      "missing pg_dump",
      { PG_BIN_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "pmt-nobin-")) },
      "pg_dump",
      /^FAIL pg_dump cannot handle PostgreSQL 15\.\d+: .*found none; install postgresql-client-15/,
    ],
    ["unwritable BACKUP_DIR", { BACKUP_DIR: "/dev/null/backups" }, "backup dir", /^FAIL \/dev\/null\/backups is not writable: /],
    [
      "a bad SMTP password",
      { SMTP_URL: "smtp://sink:wrong@127.0.0.1:PORT" },
      "smtp",
      /^FAIL 127\.0\.0\.1:\d+: the mail server rejected the login; check SMTP_URL/,
    ],
    ["an unreachable store", { S3_ENDPOINT: "http://127.0.0.1:1" }, "offsite", /^FAIL s3:\/\/doctor\/pmt: the store could not be reached \(ECONNREFUSED\)/],
  ])("fails on %s, saying what to do, and exits 1", async (_name, override, check, expected) => {
    const patch = Object.fromEntries(Object.entries(override).map(([k, v]) => [k, v.replace("PORT", String(smtp.port))]));
    const result = await runCli(["doctor", "--json"], { ...env, ...patch });
    expect(result.code).toBe(1);
    const found = verdicts(result.stdout);
    const key = check === "pg_dump" ? `pg_dump ${db.name}` : check;
    expect(found[key]).toMatch(expected);
    expect(result.stdout).not.toContain("wrong@");
  });

  it("checks the drop folder: OK when private, WARN when world-writable without the sticky bit", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-drop-"));
    fs.chmodSync(dir, 0o700);
    const ok = verdicts((await runCli(["doctor", "--json"], { ...env, DROP_DIR: dir })).stdout);
    expect(ok["drop folder"]).toBe(`OK ${dir} readable and writable`);

    fs.chmodSync(dir, 0o777);
    const open = await runCli(["doctor", "--json"], { ...env, DROP_DIR: dir });
    expect(open.code).toBe(0);
    expect(verdicts(open.stdout)["drop folder"]).toMatch(/^WARN .* world-writable without the sticky bit \(mode 777\).*chmod 1733/);

    fs.chmodSync(dir, 0o1777);
    expect(verdicts((await runCli(["doctor", "--json"], { ...env, DROP_DIR: dir })).stdout)["drop folder"]).toMatch(/^OK /);
  });

  it("refuses a DROP_DIR that does not exist before checking anything", async () => {
    const result = await runCli(["doctor"], { ...env, DROP_DIR: "/nonexistent/pmt_dir" });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/DROP_DIR.*expected an existing folder/);
  });

  it("warns about a public schema others may create objects in, and PMT tables another role could make the worker run code with", async () => {
    const role = `pmt_doctor_${Date.now().toString(36)}`;
    const fresh = await createTestDatabase();
    await migrate(fresh.pool, createLogger("silent"));
    const at = { ...env, DATABASE_URL: fresh.url };
    try {
      expect(verdicts((await runCli(["doctor", "--json"], at)).stdout).privileges).toMatch(/^OK schema public is not writable/);

      // As on PostgreSQL 14 and older.
      await fresh.pool.query("grant create on schema public to public");
      const open = await runCli(["doctor", "--json"], at);
      expect(open.code).toBe(0); // a warning, not a failure
      expect(verdicts(open.stdout)["public schema"]).toMatch(
        /^WARN every role may create objects in schema public.*revoke create on schema public from public;$/,
      );
      await fresh.pool.query("revoke create on schema public from public");

      // A role of PMT's application that may create there.
      await fresh.pool.query(`create role ${role} login`);
      await fresh.pool.query(`grant pmt_app to ${role}`);
      await fresh.pool.query(`grant create on schema public to ${role}`);
      const byApp = await runCli(["doctor", "--json"], at);
      expect(verdicts(byApp.stdout)["public schema"], byApp.stdout).toBe(
        `WARN PMT's application role ${role} may create objects in schema public: an operator or function planted there runs as whoever resolves it; as the database owner run: revoke create on schema public from "${role}";`,
      );
      await fresh.pool.query(`revoke create on schema public from ${role}`);

      // PMT tables: one owned by that role, one with a row-level security policy.
      await fresh.pool.query("create table public.activity (activity_id integer); create table public.project (project_id integer)");
      await fresh.pool.query(`alter table public.activity owner to ${role}`);
      await fresh.pool.query("alter table public.project enable row level security; create policy p on public.project using (true)");
      const tables = verdicts((await runCli(["doctor", "--json"], at)).stdout)["pmt tables"];
      expect(tables).toMatch(new RegExp(`^WARN public.activity is owned by ${role}, not the DBA: .*alter table public.activity owner to`));
      expect(tables).toContain("public.project has row-level security with 1 policy: exports fail rather than run them");
    } finally {
      await fresh.pool.query("drop table if exists public.activity, public.project");
      await fresh.pool.query(`drop owned by ${role}`).catch(() => {});
      await fresh.pool.query(`drop role if exists ${role}`);
    }
  });

  it("fails on an unmigrated database", async () => {
    const fresh = await createTestDatabase();
    const result = await runCli(["doctor", "--json"], { ...env, DATABASE_URL: fresh.url });
    expect(result.code).toBe(1);
    const found = verdicts(result.stdout);
    expect(found.queue).toBe("FAIL no graphile_worker schema: run pmt-worker migrate");
    expect(found.migrations).toBe("FAIL no pmt_jobs schema: run pmt-worker migrate");
  });
});
