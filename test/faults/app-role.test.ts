/**
 * Attacks by PMT's application role on the worker (issue 12, points 2 and 3),
 * with the guide's roles: the worker a plain login role without CREATEROLE,
 * PMT's tables the DBA's, the application role granted pmt_app, and `public`
 * writable by everyone (as on every database created on PostgreSQL 14 or
 * older).
 *
 * 1. Planted code: the application role creates in `public` an `=` for
 *    varchar, text and integer, lookalikes of functions the export SQL calls
 *    (lower, upper, left, length, btrim of varchar, string_agg over varchar,
 *    to_char of a date, better matches than the built-ins; PMT's own
 *    pmt_version() is the DBA's), each of which counts its calls (nextval
 *    of a sequence survives a rollback) and tries to grant the role running it to the
 *    application role. A full CSV and IATI export, a refused recipient, a
 *    backup by the worker and the CLI's status, jobs and doctor run: the
 *    planted code must run 0 times. A session of the worker's role with
 *    PostgreSQL's default search_path then runs it at once (the control:
 *    the plant works, and escalates).
 * 2. A PMT table owned by the application role, with a row-level security
 *    policy calling planted code: the export fails rather than run the
 *    policy, and doctor names the table, its owner and the policy.
 * 3. The leak: a recipient the SMTP server refuses at RCPT. Its address
 *    must appear in nothing the application role can select and in no
 *    NOTIFY payload a LISTEN of the application role receives; the worker's
 *    role still reads the full error.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createPool, type Pool } from "../../src/db/pool.js";
import { seedDemo } from "../../src/exports/demo.js";
import { runCli } from "../harness/cli.js";
import { createGroupRoles, createTestDatabase, type TestDatabase } from "../harness/db.js";
import { recordFault, Workers } from "../harness/faults.js";
import { SmtpSink } from "../harness/smtp.js";
import { until } from "../harness/wait.js";

const suffix = crypto.randomBytes(4).toString("hex");
const WORKER = `pmt_worker_${suffix}`;
const APP = `pmt_web_${suffix}`;
const REFUSED = `refused.${suffix}@example.org`;
const RECIPIENTS = [`ann.${suffix}@example.org`, `bob.${suffix}@example.org`, REFUSED];

let db: TestDatabase;
let dba: Pool; // the DBA (superuser) on the test database, with the fixed search_path
let workerUrl: string;
let appUrl: string;
let smtp: SmtpSink;
let app: pg.Client; // PMT's application: PostgreSQL's default search_path
const notifications: { channel: string; payload: string }[] = [];
let listener: pg.Client;
const workers = new Workers(() => ({
  DATABASE_URL: workerUrl,
  SMTP_URL: smtp.url,
  BACKUP_DIR: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-app-role-")), "b"),
}));

function urlAs(user: string, password: string): string {
  const u = new URL(db.url);
  u.username = user;
  u.password = password;
  return u.toString();
}

// Every planted object counts its calls in public.pwned_seq (or, where a
// read-only transaction forbids that, fails the statement with "planted code
// ran") and tries to grant whoever runs it to the application role.
const PLANT = (app: string) => `
  create sequence public.pwned_seq;
  grant usage, select, update on sequence public.pwned_seq to public;
  create function public.pwn(what text) returns boolean language plpgsql as $f$
  begin
    begin
      perform pg_catalog.nextval('public.pwned_seq');
    exception when others then
      -- a read-only transaction (the export's): fail it, so the run shows it
      raise exception 'planted code ran as %: %', current_user, what;
    end;
    raise notice 'planted code ran as %: %', current_user, what;
    begin
      execute pg_catalog.format('grant %I to %I', current_user, '${app}');
    exception when others then null;
    end;
    return true;
  end $f$;
  create function public.pwn_eq(a varchar, b varchar) returns boolean language plpgsql as
    $f$ begin perform public.pwn('= varchar'); return pg_catalog.texteq(a::text, b::text); end $f$;
  create operator public.= (leftarg = varchar, rightarg = varchar, function = public.pwn_eq);
  create function public.pwn_eq(a text, b text) returns boolean language plpgsql as
    $f$ begin perform public.pwn('= text'); return pg_catalog.texteq(a, b); end $f$;
  create operator public.= (leftarg = text, rightarg = text, function = public.pwn_eq);
  create function public.pwn_eq(a integer, b integer) returns boolean language plpgsql as
    $f$ begin perform public.pwn('= integer'); return pg_catalog.int4eq(a, b); end $f$;
  create operator public.= (leftarg = integer, rightarg = integer, function = public.pwn_eq);
  create function public.lower(v varchar) returns text language plpgsql as
    $f$ begin perform public.pwn('lower'); return pg_catalog.lower(v::text); end $f$;
  create function public.upper(v varchar) returns text language plpgsql as
    $f$ begin perform public.pwn('upper'); return pg_catalog.upper(v::text); end $f$;
  create function public.btrim(v varchar) returns text language plpgsql as
    $f$ begin perform public.pwn('btrim'); return pg_catalog.btrim(v::text); end $f$;
  create function public.length(v varchar) returns integer language plpgsql as
    $f$ begin perform public.pwn('length'); return pg_catalog.length(v::text); end $f$;
  create function public.left(v varchar, n integer) returns text language plpgsql as
    $f$ begin perform public.pwn('left'); return pg_catalog.left(v::text, n); end $f$;
  create function public.pwn_agg(s text, v varchar, sep text) returns text language plpgsql as
    $f$ begin perform public.pwn('string_agg'); return case when s is null then v::text else s || sep || v::text end; end $f$;
  create aggregate public.string_agg(varchar, text) (sfunc = public.pwn_agg, stype = text);
  create function public.to_char(d date, f text) returns text language plpgsql as
    $f$ begin perform public.pwn('to_char'); return pg_catalog.to_char(d::timestamp, f); end $f$;
`;

async function plantedCalls(): Promise<number> {
  const { rows } = await dba.query<{ n: string; called: boolean }>("select last_value as n, is_called as called from public.pwned_seq");
  return rows[0]!.called ? Number(rows[0]!.n) : 0;
}

async function appIsWorker(): Promise<boolean> {
  const { rows } = await dba.query("select pg_has_role($1, $2, 'MEMBER') as m", [APP, WORKER]);
  return rows[0].m;
}

beforeAll(async () => {
  db = await createTestDatabase();
  dba = createPool(db.url, { max: 2 });
  smtp = await SmtpSink.start();
  smtp.refuse.set(REFUSED, 550);
  // The guide's roles (deploy/README.md): the worker without CREATEROLE, the group roles made by the DBA.
  await dba.query(`create role ${WORKER} login password 'worker-pw'`);
  await dba.query(`create role ${APP} login password 'app-pw'`);
  await createGroupRoles(dba);
  await dba.query(`grant create on database ${db.name} to ${WORKER}`);
  await dba.query(`grant create on schema public to ${WORKER}`);
  await dba.query(`grant pg_read_all_data to ${WORKER}`);
  await dba.query(`grant pmt_app to ${APP}`);
  // PMT's tables are the DBA's; `public` as PostgreSQL 14 and older create it.
  await seedDemo(dba, 60);
  await dba.query("grant create on schema public to public");
  workerUrl = urlAs(WORKER, "worker-pw");
  appUrl = urlAs(APP, "app-pw");

  app = new pg.Client({ connectionString: appUrl });
  app.on("error", () => {});
  await app.connect();
  await app.query(PLANT(APP));

  // Any role that may connect may LISTEN: the application role listens to everything we notify.
  listener = new pg.Client({ connectionString: appUrl });
  listener.on("error", () => {});
  await listener.connect();
  listener.on("notification", (m) => notifications.push({ channel: m.channel, payload: m.payload ?? "" }));
  await listener.query(`listen pmt_jobs; listen "jobs:insert"`);
});

afterAll(async () => {
  await app?.end().catch(() => {});
  await listener?.end().catch(() => {});
  await smtp?.down();
  await dba?.end();
  const admin = new pg.Client({ connectionString: inject("adminUrl") });
  await admin.connect();
  await admin.query(`drop database if exists ${db.name} with (force)`);
  await admin.query(`drop owned by ${APP}, ${WORKER} cascade`).catch(() => {});
  await admin.query(`drop role if exists ${APP}`);
  await admin.query(`drop role if exists ${WORKER}`);
  await admin.end();
});

/** Every relation the application role may select, each row as text. */
async function everythingAppCanSee(): Promise<{ relations: string[]; text: string }> {
  const { rows } = await app.query<{ name: string }>(`
    select format('%I.%I', n.nspname, c.relname) as name
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'v', 'm', 'p', 'f')
      and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%'
      and pg_catalog.has_schema_privilege(n.oid, 'USAGE') and pg_catalog.has_table_privilege(c.oid, 'SELECT')
    order by 1`);
  let text = "";
  for (const { name } of rows) {
    const result = await app.query(`select t::text as row from ${name} t`);
    text += result.rows.map((r) => r.row).join("\n") + "\n";
  }
  return { relations: rows.map((r) => r.name), text };
}

describe("PMT's application role against the worker", () => {
  it("planted operators and functions in public run nothing as the worker: exports, a refused recipient, a backup, the CLI", async () => {
    // migrate (as the worker) warns about the writable public schema, naming the fix.
    const migrated = await runCli(["migrate"], { DATABASE_URL: workerUrl });
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stderr).toContain("warning: public schema: every role may create objects in schema public");
    expect(migrated.stderr).toContain("revoke create on schema public from public;");
    expect(migrated.stderr).not.toMatch(/CREATEROLE|create role/);

    const worker = await workers.start();
    const ids = (await dba.query<{ id: number }>("select classification_id as id from public.classification where active order by 1 limit 2")).rows.map(
      (r) => r.id,
    );
    // PMT's calls, unqualified, from the application's own session.
    expect((await app.query(`select pmt_filter_csv($1, '', '', null, null, $2) as ok`, [ids.join(","), RECIPIENTS[0]])).rows[0].ok).toBe(true);
    expect((await app.query(`select pmt_filter_iati('', '', '', '2000-01-01', '2030-12-31', $1) as ok`, [RECIPIENTS[1]])).rows[0].ok).toBe(true);
    expect((await app.query(`select pmt_filter_csv('', '', '', null, null, $1) as ok`, [REFUSED])).rows[0].ok).toBe(true);
    await smtp.waitForMessages(2, 60_000);
    await until(
      async () => {
        const { rows } = await dba.query<{ status: string }>("select status from pmt_jobs.export_request order by id");
        return rows.length === 3 && rows.every((r) => r.status === "sent" || r.status === "failed") && rows;
      },
      () => `the three exports to finish; worker output:\n${worker.stderr.slice(-3000)}`,
      60_000,
      100,
    );
    expect((await dba.query("select status from pmt_jobs.export_request order by id")).rows.map((r) => r.status)).toEqual(["sent", "sent", "failed"]);
    expect(smtp.messages.map((m) => (m.to as { text: string }).text).sort()).toEqual(RECIPIENTS.slice(0, 2).sort());
    expect(smtp.messages.every((m) => m.attachments.length === 1 && m.attachments[0]!.size > 0)).toBe(true);

    // A backup by the worker, and the CLI's reads.
    const job = (
      await dba.query<{ id: number }>("select id from graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text))", [db.name])
    ).rows[0]!.id;
    await until(
      async () => (await dba.query("select 1 from pmt_jobs.job_run where job_id = $1 and status = 'succeeded'", [job])).rowCount,
      () => `the backup job to succeed; worker output:\n${worker.stderr.slice(-3000)}`,
      120_000,
      100,
    );
    for (const args of [["status"], ["jobs", "--limit", "50"], ["doctor", "--json"]]) {
      const result = await runCli(args, { DATABASE_URL: workerUrl, SMTP_URL: smtp.url, BACKUP_DIR: path.join(workers.home, "b") });
      expect(result.stderr, args.join(" ")).not.toContain("planted code ran");
    }
    expect(await Workers.stop(worker)).toBe(0);

    expect(await plantedCalls()).toBe(0);
    expect(await appIsWorker()).toBe(false);
    expect((await dba.query("select error from pmt_jobs.job_run where error ~ 'planted code'")).rows).toEqual([]);

    // The control: a session of the worker's role with PostgreSQL's default
    // search_path resolves the planted `=` for varchar, which then escalates.
    const naive = new pg.Client({ connectionString: workerUrl });
    await naive.connect();
    try {
      await naive.query("select count(*) from public.taxonomy t where t.name = 'Sector'");
    } finally {
      await naive.end();
    }
    const control = await plantedCalls();
    expect(control).toBeGreaterThan(0);
    const escalated = await appIsWorker();
    if (escalated) await dba.query(`revoke ${WORKER} from ${APP}`);
    recordFault({
      scenario: "app role: planted code",
      fault: "pmt_app + CREATE on public plants = (varchar, text, int), lower/left/length/btrim/string_agg(varchar), to_char(date)",
      outcome: `CSV + IATI export, refused recipient, backup, status/jobs/doctor: planted code ran 0 times as the worker (a default-search_path session: ${control}${escalated ? ", and granted the worker to the app role" : ""}); migrate and doctor name the revoke`,
      lost: 0,
    });
  });

  it("shows the application role no recipient, in any relation it may select or any NOTIFY payload; the worker's role reads the full error", async () => {
    const failed = (await dba.query<{ id: number }>("select id from pmt_jobs.export_request where recipient = $1", [REFUSED])).rows[0]!.id;
    const { relations, text } = await everythingAppCanSee();
    expect(relations).toEqual(expect.arrayContaining(["pmt_jobs.job_status", "pmt_jobs.backup_status"]));
    for (const address of RECIPIENTS) expect(text).not.toContain(address);
    expect(text).not.toMatch(/@example\.org/);
    const status = (await app.query("select last_error from pmt_jobs.job_status where task = 'pmt_jobs.export'")).rows[0];
    expect(status.last_error).toBe(`export request ${failed}: mail refused`);

    const payloads = notifications.map((n) => n.payload);
    expect(payloads.length).toBeGreaterThan(6);
    for (const address of RECIPIENTS) expect(payloads.filter((p) => p.includes(address))).toEqual([]);
    const refusedEvent = notifications
      .filter((n) => n.channel === "pmt_jobs")
      .map((n) => JSON.parse(n.payload))
      .find((e) => e.status === "failed" && e.task === "pmt_jobs.export");
    expect(refusedEvent).toMatchObject({ error_class: `export request ${failed}: mail refused` });
    expect(refusedEvent).not.toHaveProperty("error");

    // The worker's role (and so `pmt-worker watch` and `jobs`) still sees everything.
    const asWorker = createPool(workerUrl, { max: 1 });
    try {
      const full = await asWorker.query("select error from pmt_jobs.job_run where id = $1", [refusedEvent.id]);
      expect(full.rows[0].error).toContain(REFUSED);
      const workerStatus = await asWorker.query("select last_error from pmt_jobs.job_status where task = 'pmt_jobs.export'");
      expect(workerStatus.rows[0].last_error).toContain(REFUSED);
    } finally {
      await asWorker.end();
    }
    recordFault({
      scenario: "app role: recipient leak",
      fault: "recipient refused at RCPT (550); pmt_app selects every relation it may and LISTENs to pmt_jobs",
      outcome: `address in none of ${relations.length} relations nor ${payloads.length} NOTIFY payloads; job_status says 'mail refused'; worker role reads the full error`,
      lost: 0,
    });
  });

  it("a PMT table owned by the application role, with an RLS policy calling planted code: the export fails instead of running it, and doctor names it", async () => {
    const before = await plantedCalls();
    await dba.query(`alter table public.financial owner to ${APP}`);
    await app.query("alter table public.financial enable row level security");
    await app.query("create policy pwn on public.financial using (public.pwn('policy'))");

    const doctor = await runCli(["doctor", "--json"], { DATABASE_URL: workerUrl, SMTP_URL: smtp.url, BACKUP_DIR: path.join(workers.home, "b") });
    const lines = doctor.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { verdict: string; name: string; detail: string });
    const tables = lines.find((l) => l.name === "pmt tables");
    expect(tables?.verdict).toBe("WARN");
    expect(tables?.detail).toContain(`public.financial is owned by ${APP}, not the DBA`);
    expect(tables?.detail).toContain("public.financial has row-level security with 1 policy");
    expect(lines.find((l) => l.name === "public schema")?.detail).toContain("revoke create on schema public from public;");

    const worker = await workers.start();
    const to = `policy.${suffix}@example.org`;
    expect((await app.query(`select pmt_filter_csv('', '', '', null, null, $1) as ok`, [to])).rows[0].ok).toBe(true);
    const request = (await dba.query<{ id: number }>("select id from pmt_jobs.export_request where recipient = $1", [to])).rows[0]!.id;
    const attempt = await until(
      async () =>
        (
          await dba.query<{ error: string }>(
            "select r.error from pmt_jobs.job_run r join graphile_worker.jobs j on j.id = r.job_id where j.key = $1 and r.status = 'failed'",
            [`export:${request}`],
          )
        ).rows[0],
      () => `the export to fail; worker output:\n${worker.stderr.slice(-3000)}`,
      60_000,
      100,
    );
    expect(attempt.error).toMatch(/row-level security/);
    expect(await plantedCalls()).toBe(before);
    expect(await appIsWorker()).toBe(false);

    // The DBA takes the table back: the export's retry mails it.
    await dba.query("alter table public.financial disable row level security");
    await dba.query("drop policy pwn on public.financial");
    await dba.query("alter table public.financial owner to current_user");
    await until(
      async () => (await dba.query("select 1 from pmt_jobs.export_request where id = $1 and status = 'sent'", [request])).rowCount,
      "the retried export to be sent",
      60_000,
      100,
    );
    expect(smtp.messages.filter((m) => (m.to as { text: string }).text === to)).toHaveLength(1);
    expect(await plantedCalls()).toBe(before);
    expect(await Workers.stop(worker)).toBe(0);
    recordFault({
      scenario: "app role: RLS policy",
      fault: "a PMT table owned by the app role gets an RLS policy calling planted code",
      outcome:
        "export attempt failed 'row-level security' (policy never ran), doctor names owner and policy; retried and mailed once the DBA took the table back",
      lost: 0,
    });
  });
});
