/**
 * The disaster-recovery drill (issue 17; docs/disaster-recovery.md is its
 * procedure for a person): a PMT database on one PostgreSQL cluster, set up
 * as deploy/README.md step 2 says (its SQL blocks, run as written), backed up
 * by the worker, encrypted to an age recipient, with its globals, into an S3
 * bucket. Then that cluster and the worker's files are destroyed, and a
 * stranger with only the bucket and the identity file restores onto a fresh
 * cluster that has nothing but PostGIS in template1: `offsite list`, then
 * `backup restore --from-offsite --with-roles --identity-file`, sets the
 * passwords the restore asks for, migrates, starts the worker, and PMT's web
 * role has an export mailed. The roles, memberships, owners and grants must
 * be those of the lost server.
 *
 * Then the bucket is grepped: with BACKUP_ENCRYPT_TO set, no stored object
 * holds a byte of the database's rows or its dump's text, while the same
 * grep finds them in a control copy made without it.
 *
 * PMT is PMT 2.0.8.51's own schema (test/compat/upstream.ts) with generated
 * data; it needs Debian's PostgreSQL 15 with PostGIS and the upstream files,
 * and skips with one line without them, unless PMT_COMPAT_REQUIRED=1 (CI).
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../src/db/pool.js";
import { BIN, ChildHandle, ROOT, runCli, type CliResult } from "../harness/cli.js";
import { recordFault } from "../harness/faults.js";
import { guideBlocks } from "../harness/guide.js";
import { compatUnavailable, startPostgisCluster, type PostgisCluster } from "../harness/postgis.js";
import { S3RVER_CREDENTIALS, S3Sink } from "../harness/s3.js";
import { SmtpSink } from "../harness/smtp.js";
import { until } from "../harness/wait.js";
import { loadUpstream } from "../compat/upstream.js";

const unavailable = compatUnavailable();
if (unavailable) {
  if (process.env.PMT_COMPAT_REQUIRED === "1") throw new Error(`the disaster-recovery drill cannot run (PMT_COMPAT_REQUIRED=1): ${unavailable}`);
  console.log(`disaster-recovery drill skipped: ${unavailable}`);
}

const ACTIVITIES = 200;
const BUCKET = "pmt-backups";
const CONTROL_BUCKET = "control";
const SERVER_ID = "pmt-db-1";

/** A connection URL on `cluster` for `database`, as postgres (with its password) or as `role` with `password`. */
function urlOf(cluster: PostgisCluster, database: string, role?: { name: string; password: string }): string {
  const u = new URL(cluster.adminUrl);
  u.pathname = `/${database}`;
  if (role) {
    u.username = role.name;
    u.password = role.password;
  }
  return u.toString();
}

/** One statement list (no CREATE DATABASE among them: one implicit transaction), its last result's rows. */
async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, values?: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = (await client.query(text, values)) as pg.QueryResult<T> | pg.QueryResult<T>[];
    return Array.isArray(result) ? result[result.length - 1]!.rows : result.rows;
  } finally {
    await client.end();
  }
}

/** An ACL column as text, its items sorted (a restore may write the same grants in another order), or "(default)". */
const acl = (column: string) => `coalesce((select string_agg(item::text, ',' order by item::text) from unnest(${column}) item), '(default)')`;

/** What must survive the loss of a server: roles, memberships, owners, grants and database settings, by name. */
async function securityPicture(url: string): Promise<Record<string, string[]>> {
  const lines = async (text: string) => (await sql<{ l: string }>(url, text)).map((r) => r.l);
  return {
    roles: await lines(
      `select rolname || ' login=' || rolcanlogin || ' super=' || rolsuper || ' createdb=' || rolcreatedb || ' createrole=' || rolcreaterole || ' inherit=' || rolinherit as l
       from pg_roles where rolname !~ '^pg_' order by 1`,
    ),
    memberships: await lines(
      `select m.roleid::regrole::text || ' > ' || m.member::regrole::text || ' admin=' || m.admin_option as l
       from pg_auth_members m join pg_roles r on r.oid = m.member where r.rolname !~ '^pg_' order by 1`,
    ),
    database: await lines(
      `select datname || ' owner=' || datdba::regrole::text || ' acl=' || ${acl("datacl")} as l from pg_database where datname = current_database()`,
    ),
    settings: await lines(
      `select coalesce(r.rolname, '(any role)') || ': ' || array_to_string(setconfig, ',') as l
       from pg_db_role_setting s left join pg_roles r on r.oid = s.setrole
       where s.setdatabase = (select oid from pg_database where datname = current_database()) or (s.setdatabase = 0 and r.rolname !~ '^pg_') order by 1`,
    ),
    schemas: await lines(
      `select nspname || ' owner=' || nspowner::regrole::text || ' acl=' || ${acl("nspacl")} as l
       from pg_namespace where nspname in ('public', 'pmt_jobs', 'graphile_worker') order by 1`,
    ),
    relations: await lines(
      `select c.oid::regclass::text || ' owner=' || c.relowner::regrole::text || ' acl=' || ${acl("c.relacl")} as l
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname in ('public', 'pmt_jobs', 'graphile_worker') and c.relkind in ('r', 'v', 'm', 'S', 'p') order by 1`,
    ),
    functions: await lines(
      `select p.oid::regprocedure::text || ' owner=' || p.proowner::regrole::text || ' acl=' || ${acl("p.proacl")} as l
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
       where n.nspname in ('pmt_jobs', 'graphile_worker') or (n.nspname = 'public' and p.proname like 'pmt\\_%') order by 1`,
    ),
  };
}

/** Every file under `dir` (s3rver keeps each object, and its metadata, as files in its bucket's folder). */
function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).flatMap((e) => (e.isFile() ? [path.join(e.parentPath, e.name)] : []));
}

/** The needles found in any stored object's bytes. */
function foundIn(dir: string, needles: string[]): string[] {
  const files = filesUnder(dir);
  expect(files.length).toBeGreaterThan(0);
  return needles.filter((n) => files.some((f) => fs.readFileSync(f).includes(Buffer.from(n, "utf8"))));
}

function ok(r: CliResult, what: string): string {
  expect(r.code, `${what} failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

describe.skipIf(unavailable)("disaster-recovery drill: a PMT server lost, restored onto a bare one from the bucket and the identity file alone", () => {
  let tmp: string;
  /** The identity, in a folder of its own: outside everything the worker sees (its PMT_HOME, BACKUP_DIR, environment). */
  let identityFile: string;
  let recipient: string;
  const workerPassword = crypto.randomBytes(9).toString("hex");
  const webPassword = crypto.randomBytes(9).toString("hex");
  let a: PostgisCluster | undefined;
  let b: PostgisCluster | undefined;
  let s3: S3Sink;
  let smtp: SmtpSink;
  let worker: ChildHandle | undefined;
  /** Taken on the first server before it is lost: what the restore must give back. */
  let before: Record<string, string[]>;
  /** Values of PMT's rows (project titles, IATI identifiers) that no encrypted object may contain. */
  let knownValues: string[];
  let newestKey: string;
  /** The restore's advice for the login roles it created without a password. */
  let passwordStatements = "";

  /** The worker's settings on the first server; the bucket and the recipient stay for the new one. */
  const store = () => ({
    ...S3RVER_CREDENTIALS,
    OFFSITE_URL: `s3://${BUCKET}/pmt`,
    OFFSITE_SERVER_ID: SERVER_ID,
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: "true",
  });
  const workerA = () => ({
    ...store(),
    DATABASE_URL: urlOf(a!, "pmt", { name: "pmt_worker", password: workerPassword }),
    PMT_HOME: path.join(tmp, "worker-a"),
    BACKUP_DIR: path.join(tmp, "worker-a/backups"),
    BACKUP_MIN_FREE_MB: "0",
    BACKUP_ENCRYPT_TO: recipient,
    LOG_LEVEL: "warn",
  });

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-drill-"));
    const keys = path.join(tmp, "offline-keys");
    fs.mkdirSync(keys, { mode: 0o700 });
    identityFile = path.join(keys, "pmt-backups.agekey");
    [a, s3, smtp] = await Promise.all([startPostgisCluster({ auth: "password" }), S3Sink.start([BUCKET, CONTROL_BUCKET]), SmtpSink.start()]);

    // The key pair, made away from the database server: only the recipient goes into the worker's settings.
    const { generateX25519Identity, identityToRecipient } = await import("age-encryption");
    const identity = await generateX25519Identity();
    recipient = await identityToRecipient(identity);
    fs.writeFileSync(identityFile, `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${identity}\n`, { mode: 0o600 });

    // PMT as it runs: its web role, its database with PMT 2.0.8.51's schema and data, owned by the DBA.
    await sql(a.adminUrl, `create role pmt_write login password '${webPassword}'`);
    await sql(a.adminUrl, "create database pmt");
    const pmtUrl = urlOf(a, "pmt");
    const pool = createPool(pmtUrl, { max: 2, applicationName: "pmt-worker drill", safeSearchPath: false });
    try {
      await loadUpstream(pool, pmtUrl);
      await pool.query(fs.readFileSync(path.join(ROOT, "sql/pmt_demo_data.sql"), "utf8"));
      await pool.query(`set client_min_messages = warning; select pmt_demo_seed(${ACTIVITIES}); select refresh_taxonomy_lookup()`);
      knownValues = [
        ...(await pool.query<{ v: string }>("select title as v from public.project order by project_id limit 3")).rows.map((r) => r.v),
        ...(
          await pool.query<{ v: string }>("select iati_identifier as v from public.activity where iati_identifier is not null order by activity_id limit 3")
        ).rows.map((r) => r.v),
      ];
    } finally {
      await pool.end();
    }

    // deploy/README.md step 2, as written (the worker's password ours).
    const blocks = guideBlocks();
    const roles = blocks.find((blk) => blk.kind === "sql" && blk.arg === "pmt")!;
    expect(roles.text).toContain("create role pmt_worker login password 'CHANGE-ME' createdb;");
    await sql(pmtUrl, roles.text.replace("'CHANGE-ME'", `'${workerPassword}'`));
    const template1 = blocks.find((blk) => blk.kind === "sql" && blk.arg === "template1")!;
    await sql(urlOf(a, "template1"), template1.text);
    // Step 3: migrate as the worker's role.
    ok(await runCli(["migrate"], workerA()), "migrate on the first server");
  }, 240_000);

  afterAll(async () => {
    if (worker && worker.child.exitCode === null) {
      worker.kill("SIGTERM");
      await worker.exited;
    }
    await a?.stop();
    await b?.stop();
    await s3?.close();
    await smtp?.down();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("backs up the PMT database, encrypted to the recipient, with its globals, into the bucket", async () => {
    // The control for the grep below: the same database, unencrypted, uncompressed (tar), in a bucket of its own.
    ok(
      await runCli(["backup", "run", "--format", "tar"], {
        ...workerA(),
        OFFSITE_URL: `s3://${CONTROL_BUCKET}/pmt`,
        BACKUP_DIR: path.join(tmp, "control"),
        BACKUP_ENCRYPT_TO: undefined,
      }),
      "the control backup",
    );
    // The same uncompressed format encrypted (what the grep needs to mean something), then the drill's own backup in the default format.
    ok(await runCli(["backup", "run", "--format", "tar"], workerA()), "the encrypted tar backup");
    const out = ok(await runCli(["backup", "run"], workerA()), "the backup");
    expect(out).toMatch(/^pmt: backup \d+ succeeded, .*, offsite copy verified$/m);
    before = await securityPicture(urlOf(a!, "pmt"));
    // What the guide's step 2 made, in the picture the restore must give back.
    expect(before.memberships).toContain("pmt_app > pmt_write admin=false");
    expect(before.database?.[0]).toMatch(/pmt_worker=C\/postgres/);
  }, 120_000);

  it("restores onto a bare server from the bucket and the identity file alone: roles, memberships, owners and grants as they were", async () => {
    // The server is lost: its cluster, its disk and the worker's files.
    await a!.stop();
    a = undefined;
    fs.rmSync(path.join(tmp, "worker-a"), { recursive: true, force: true });
    fs.rmSync(path.join(tmp, "control"), { recursive: true, force: true });

    // The new server: PostgreSQL with PostGIS in template1 (the guide's DBA step), no role but postgres.
    b = await startPostgisCluster({ auth: "password" });
    await sql(urlOf(b, "template1"), "create extension if not exists postgis");
    expect(await sql(b.adminUrl, "select rolname from pg_roles where rolname !~ '^pg_'")).toEqual([{ rolname: "postgres" }]);

    // The stranger: the bucket's settings, the identity file, postgres on the new server.
    const stranger = { ...store(), DATABASE_URL: b.adminUrl, PMT_HOME: path.join(tmp, "stranger"), LOG_LEVEL: "warn" };
    const listed = ok(await runCli(["offsite", "list", "--json", "--database", "pmt"], stranger), "offsite list")
      .trim()
      .split("\n")
      .map(
        (l) => JSON.parse(l) as { key: string; database: string; started_at: string; format: string; encryption?: { format: string; recipients: string[] } },
      );
    expect(listed).toHaveLength(2);
    for (const entry of listed) expect(entry.encryption).toMatchObject({ format: "age", recipients: [recipient] });
    newestKey = listed[0]!.key;
    expect(newestKey).toMatch(new RegExp(`^pmt/${SERVER_ID}/pmt/pmt_\\S+\\.dump\\.age$`));

    const restore = await runCli(
      ["backup", "restore", "--from-offsite", newestKey, "--into", "pmt", "--with-roles", "--identity-file", identityFile],
      stranger,
    );
    const report = ok(restore, "backup restore --with-roles");
    expect(report).toMatch(/^restored \S+ into pmt: \d+ tables, \d+ rows/m);
    // It names what it created (every role of the guide's step 2: the new server had none), and what the DBA must do next.
    passwordStatements = /^set a password for each login role: (.*)$/m.exec(report)?.[1] ?? "";
    const created = /^created roles: (.*); existing: (.*); memberships granted: (\d+)$/m.exec(report);
    expect(created, report).not.toBeNull();
    expect(created![1]!.split(/, (?![^(]*\))/).sort()).toEqual(["pmt_app", "pmt_backup", "pmt_worker (login, no password)", "pmt_write (login, no password)"]);
    expect(created![2]).toBe("postgres");
    expect(passwordStatements).toBe("ALTER ROLE pmt_worker PASSWORD '...'; ALTER ROLE pmt_write PASSWORD '...';");
    expect(report).not.toMatch(/^not applied/m);

    const after = await securityPicture(urlOf(b, "pmt"));
    expect(after).toEqual(before);
    // Spelled out: PMT's tables are the DBA's, and PMT's application role may call the export.
    const owners = await sql<{ o: string; n: string }>(
      urlOf(b, "pmt"),
      "select tableowner as o, count(*)::text as n from pg_tables where schemaname = 'public' group by 1",
    );
    expect(owners).toEqual([{ o: "postgres", n: expect.any(String) }]);
    const execute = await sql<{ ok: boolean }>(
      urlOf(b, "pmt"),
      "select bool_and(has_function_privilege('pmt_app', p.oid, 'EXECUTE')) as ok from pg_proc p where p.proname in ('pmt_filter_csv', 'pmt_filter_iati') and p.pronamespace = 'public'::regnamespace",
    );
    expect(execute).toEqual([{ ok: true }]);
  }, 180_000);

  it("serves PMT again: once the DBA sets the passwords, the worker migrates, starts, and mails the export PMT's web role asks for", async () => {
    // The login roles came back without passwords (none left the old server): neither can log in yet.
    const workerUrl = urlOf(b!, "pmt", { name: "pmt_worker", password: workerPassword });
    const webUrl = urlOf(b!, "pmt", { name: "pmt_write", password: webPassword });
    await expect(sql(webUrl, "select 1")).rejects.toThrow(/password authentication failed/);
    // The DBA runs what the restore said, with the passwords the worker's settings and PMT's web application hold.
    const passwords: Record<string, string> = { pmt_worker: workerPassword, pmt_write: webPassword };
    await sql(
      b!.adminUrl,
      passwordStatements.replace(/ALTER ROLE (\w+) PASSWORD '\.\.\.'/g, (_, role: string) => `ALTER ROLE ${role} PASSWORD '${passwords[role]}'`),
    );

    const env = {
      ...store(),
      DATABASE_URL: workerUrl,
      PMT_HOME: path.join(tmp, "worker-b"),
      BACKUP_DIR: path.join(tmp, "worker-b/backups"),
      BACKUP_ENCRYPT_TO: recipient,
      SMTP_URL: smtp.url,
      MAIL_FROM: "PMT <pmt@example.org>",
      HTTP_PORT: "0",
      LOG_LEVEL: "info",
    };
    const migrated = await runCli(["migrate"], { ...env, LOG_LEVEL: "warn" });
    ok(migrated, "migrate on the new server");
    // Nothing left for a DBA to do: no role missing, nothing unsafe (migrate warns on stderr).
    expect(migrated.stderr).toBe("");
    // doctor as the procedure has it: everything OK, nothing to fix (a WARN names a missing role or grant).
    const doctor = ok(await runCli(["doctor"], { ...env, LOG_LEVEL: "warn" }), "doctor on the new server");
    expect(doctor).not.toMatch(/^(WARN|FAIL)/m);
    worker = ChildHandle.spawn(BIN, ["start"], env);
    await worker.waitForOutput(/"msg":"worker started"/, 60_000);

    await sql(webUrl, "select pmt_filter_csv('', '', '', null, null, 'after-the-fire@example.org')");
    const mail = await until(
      async () => smtp.messages.find((m) => [m.to].flat()[0]?.value[0]?.address === "after-the-fire@example.org"),
      () => `the export's mail (worker output:\n${worker!.stdout}\n${worker!.stderr})`,
      90_000,
      100,
    );
    const csv = mail.attachments.find((att) => /^pmt_\d{8}\.csv$/.test(att.filename ?? ""));
    expect(csv, `attachments: ${mail.attachments.map((att) => att.filename).join(", ")}`).toBeDefined();
    const text = csv!.content.toString("utf8");
    for (const title of knownValues.slice(0, 3)) expect(text).toContain(title);
    const request = await sql<{ status: string }>(
      urlOf(b!, "pmt"),
      "select status from pmt_jobs.export_request where recipient = 'after-the-fire@example.org'",
    );
    expect(request).toEqual([{ status: "sent" }]);
    recordFault({
      scenario: "database server lost (the drill)",
      fault: "PMT's cluster and the worker's files destroyed; a bare PostgreSQL + PostGIS, the bucket and the identity file left",
      outcome:
        "backup restore --from-offsite --with-roles re-created PMT's roles, memberships, owners and grants; after the printed password statements, migrate and doctor clean, and PMT's web role had an export mailed",
      lost: 0,
    });
  }, 180_000);

  it("stores no plaintext byte of the database when BACKUP_ENCRYPT_TO is set; the same grep finds them in the unencrypted control copy", () => {
    // The dump's own text (its table of contents and COPY statements), and values of PMT's rows.
    const needles = ["COPY public.", "CREATE TABLE public.activity", ...knownValues];
    expect(foundIn(path.join(s3.directory, CONTROL_BUCKET), needles)).toEqual(needles);
    expect(foundIn(path.join(s3.directory, BUCKET), needles)).toEqual([]);
  });
});
