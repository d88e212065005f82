/**
 * A full run with passwords in DATABASE_URL and SMTP_URL: exports, a backup,
 * a failing job whose error quotes the URL. Then every log line, every table
 * of ours and graphile-worker's, every manifest and mail is searched for the
 * passwords.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { BIN, ChildHandle, runCli } from "../harness/cli.js";
import { SmtpSink } from "../harness/smtp.js";
import { until } from "../harness/wait.js";

const suffix = crypto.randomBytes(4).toString("hex");
const ROLE = `pmt_secret_${suffix}`;
const DB = `pmt_secret_db_${suffix}`;
const DB_PASSWORD = `Db-Pass-${suffix}-Sekret`;
const SMTP_PASSWORD = "sink-password";
let admin: pg.Client;
let smtp: SmtpSink;
let child: ChildHandle | undefined;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: inject("adminUrl") });
  await admin.connect();
  await admin.query(`create role ${ROLE} login createrole password '${DB_PASSWORD}'`);
  await admin.query(`create database ${DB} owner ${ROLE}`);
  smtp = await SmtpSink.start();
});

afterAll(async () => {
  child?.kill("SIGKILL");
  await smtp?.down();
  await admin.query(`drop database if exists ${DB} with (force)`);
  await admin.query(`drop role if exists ${ROLE}`);
  await admin.end();
});

describe("secrets", () => {
  it("never reach logs, history, tables, manifests, mails or error messages", async () => {
    const url = new URL(inject("adminUrl"));
    url.username = ROLE;
    url.password = DB_PASSWORD;
    url.pathname = `/${DB}`;
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-secrets-"));
    const env = {
      DATABASE_URL: url.toString(),
      SMTP_URL: `smtp://sink:${SMTP_PASSWORD}@127.0.0.1:${smtp.port}`,
      PMT_HOME: home,
      BACKUP_DIR: path.join(home, "backups"),
      ALERT_EMAIL: "dba@example.org",
      HTTP_PORT: "0",
      LOG_LEVEL: "debug",
    };
    expect((await runCli(["demo", "seed", "--activities", "20"], env)).code).toBe(0);
    child = ChildHandle.spawn(BIN, ["start"], env);
    await child.waitForOutput(/"msg":"worker started"/);

    const db = new pg.Client({ connectionString: url.toString() });
    await db.connect();
    try {
      await db.query(`select graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text))`, [DB]);
      // A job whose payload carries the connection string and a password (the
      // queue deletes it once done; the history keeps a redacted summary).
      await db.query(`select graphile_worker.add_job('pmt_jobs.noop', json_build_object('target', $1::text, 'password', $2::text))`, [
        url.toString(),
        DB_PASSWORD,
      ]);
      // And an export by mail through the authenticated SMTP server.
      await db.query("select pmt_filter_csv('','','',null,null,'ann@example.org')");
      await until(
        async () => {
          const { rows } = await db.query("select count(*)::int as n from pmt_jobs.job_run where status in ('succeeded', 'failed')");
          return rows[0].n >= 3;
        },
        "the jobs to finish",
        60_000,
      );
      // A status page and a doctor run, whose output is also checked.
      const doctor = await new Promise<string>((resolve) => {
        const d = ChildHandle.spawn(BIN, ["doctor"], env);
        void d.exited.then(() => resolve(d.stdout + d.stderr));
      });

      child.kill("SIGTERM");
      expect((await child.exited).code).toBe(0);

      const haystacks: [string, string][] = [
        ["worker logs", child.stdout + child.stderr],
        ["doctor", doctor],
      ];
      const tables = await db.query<{ name: string }>(
        `select format('%I.%I', table_schema, table_name) as name from information_schema.tables
         where table_schema in ('pmt_jobs', 'graphile_worker') and table_type = 'BASE TABLE'`,
      );
      for (const { name } of tables.rows) {
        const { rows } = await db.query(`select coalesce(string_agg(t::text, E'\\n'), '') as dump from ${name} t`);
        haystacks.push([name, rows[0].dump]);
      }
      for (const file of fs.readdirSync(env.BACKUP_DIR).filter((f) => f.endsWith(".json"))) {
        haystacks.push([file, fs.readFileSync(path.join(env.BACKUP_DIR, file), "utf8")]);
      }
      for (const mail of smtp.messages) haystacks.push([`mail ${mail.subject}`, `${mail.subject}\n${mail.text}`]);

      expect(haystacks.find(([name]) => name === "pmt_jobs.job_run")![1]).toContain("***");
      for (const [where, text] of haystacks) {
        expect(text.includes(DB_PASSWORD), `database password found in ${where}`).toBe(false);
        expect(text.includes(SMTP_PASSWORD), `SMTP password found in ${where}`).toBe(false);
      }
    } finally {
      await db.end();
    }
  });
});
