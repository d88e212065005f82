/**
 * Globals (roles, memberships, database settings) captured as the worker's
 * own non-superuser role with every backup, and put back by
 * `backup restore --with-roles` after the database and its roles are gone,
 * as on a new server. Roles are the whole server's: every name here carries
 * this run's random prefix, and all are dropped at the end.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { getBackup } from "../../src/backups/catalog.js";
import { captureGlobals } from "../../src/backups/globals-capture.js";
import { globalsPath, globalsSql, parseGlobals, readGlobals, type Globals } from "../../src/backups/globals.js";
import { readManifest } from "../../src/backups/manifest.js";
import { restoreBackup } from "../../src/backups/restore.js";
import { runBackup, removeLeftovers } from "../../src/backups/run.js";
import { verifyBackup } from "../../src/backups/verify.js";
import type { Config } from "../../src/config.js";
import { clientConfig } from "../../src/db/pool.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { applyRetention } from "../../src/retention/apply.js";
import { runCli } from "../harness/cli.js";
import { createTestDatabase, databaseUrl, type TestDatabase } from "../harness/db.js";
import { testConfig } from "../harness/worker.js";

const logger = createLogger("silent");
const hex = crypto.randomBytes(4).toString("hex");
const role = (s: string) => `g${hex}_${s}`;
const ROLES = { worker: role("worker"), app: role("app"), write: role("write"), grp: role("grp"), owner: role("owner") };
/** Not referenced by the database: never captured. The restorers try --with-roles without the rights it needs. */
const OTHERS = { stranger: role("stranger"), restorer: role("restorer"), creator: role("creator") };
const PASSWORD = `Pw-${hex}-Secret`;
const source = `pmt_test_${hex}_src`;
const restored = { roles: `pmt_test_${hex}_roles`, plain: `pmt_test_${hex}_plain`, denied: `pmt_test_${hex}_denied` };

let cat: TestDatabase;
let admin: pg.Client;
let config: Config;
let backupDir: string;

const adminUrl = () => inject("adminUrl");
const as = (user: string, database: string) => {
  const url = new URL(databaseUrl(adminUrl(), database));
  url.username = user;
  url.password = PASSWORD;
  return url.toString();
};
const sha = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

async function onDatabase<T extends pg.QueryResultRow>(database: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl(adminUrl(), database) });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** PMT's shape in small: the DBA's tables owned by a role, the app's group with EXECUTE and SELECT, the worker owning its schema. */
async function createSource(): Promise<void> {
  const { worker, app, write, grp, owner } = ROLES;
  await admin.query(`create role ${worker} login createdb password '${PASSWORD}'; grant pg_read_all_data to ${worker}`);
  await admin.query(`create role ${grp} nologin; create role ${app} nologin in role ${grp}; create role ${owner} nologin`);
  await admin.query(`create role ${write} login password '${PASSWORD}' connection limit 7 in role ${app}`);
  await admin.query(`create role ${OTHERS.stranger} login password '${PASSWORD}'; grant pg_read_all_data to ${OTHERS.stranger}`);
  await admin.query(`create role ${OTHERS.restorer} login createdb password '${PASSWORD}'`);
  await admin.query(`create role ${OTHERS.creator} login createdb createrole password '${PASSWORD}'`);
  await admin.query(`alter role ${write} set work_mem = '8MB'; alter role ${write} set search_path = '$user', public, "Odd Schema"`);
  await admin.query(`create database ${source}`);
  await admin.query(`revoke connect, temporary on database ${source} from public; grant connect on database ${source} to ${app}, ${worker}`);
  await admin.query(`alter database ${source} set statement_timeout = '5min'; alter role ${write} in database ${source} set work_mem = '16MB'`);
  await onDatabase(
    source,
    `create schema pmt authorization ${owner};
     create table pmt.activity (id int primary key, title text);
     insert into pmt.activity select g, 'activity ' || g from generate_series(1, 25) g;
     alter table pmt.activity owner to ${owner};
     create function pmt.filter_csv() returns int language sql as 'select 1';
     alter function pmt.filter_csv() owner to ${owner};
     revoke execute on function pmt.filter_csv() from public;
     grant execute on function pmt.filter_csv() to ${app};
     grant usage on schema pmt to ${app};
     grant select on pmt.activity to ${app};
     create schema jobs authorization ${worker};
     create table jobs.request (id int);
     alter table jobs.request owner to ${worker};`,
  );
}

async function roleNames(): Promise<string[]> {
  const { rows } = await admin.query<{ rolname: string }>("select rolname from pg_roles where rolname like $1 order by 1", [`g${hex}_%`]);
  return rows.map((r) => r.rolname);
}

beforeAll(async () => {
  cat = await createTestDatabase();
  await migrate(cat.pool, logger);
  admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  await createSource();
  backupDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-globals-")), "backups");
  config = testConfig({ BACKUP_DIR: backupDir });
});

afterAll(async () => {
  for (const db of [source, ...Object.values(restored)]) await admin.query(`drop database if exists ${db} with (force)`);
  for (const r of [ROLES.write, ROLES.app, ROLES.grp, ROLES.owner, ROLES.worker, ...Object.values(OTHERS)]) await admin.query(`drop role if exists ${r}`);
  await admin.end();
  fs.rmSync(path.dirname(backupDir), { recursive: true, force: true });
});

let captured: Globals;

describe("capturing the globals as the worker's role (no superuser)", () => {
  it("finds the roles the database references, their memberships both ways and settings, and no password", async () => {
    const client = new pg.Client(clientConfig(as(ROLES.worker, source)));
    await client.connect();
    try {
      expect((await client.query("select rolsuper from pg_roles where rolname = current_user")).rows[0]).toEqual({ rolsuper: false });
      captured = await captureGlobals(client, source, "15.x");
    } finally {
      await client.end();
    }
    const { worker, app, write, grp, owner } = ROLES;
    const byName = new Map(captured.roles.map((r) => [r.name, r]));
    // postgres: the database's owner (the harness created it).
    expect([...byName.keys()].sort()).toEqual([app, grp, owner, worker, write, "postgres"].sort());
    expect(byName.get(owner)!.referenced).toEqual(["owner"]);
    expect(byName.get(app)!.referenced).toEqual(["database privileges", "privileges"]);
    expect(byName.get(worker)!.referenced).toEqual(["database privileges", "owner"]);
    expect(byName.get(write)!.referenced).toEqual([`member of ${app}`]);
    expect(byName.get(grp)!.referenced).toEqual([`has member ${app}`]);
    expect(byName.get("postgres")!.referenced).toEqual(["database owner"]);
    expect(byName.get(worker)).toMatchObject({ login: true, createdb: true, superuser: false, createrole: false, settings: [], database_settings: [] });
    expect(byName.get(app)).toMatchObject({ login: false, inherit: true });
    expect(byName.get(write)).toMatchObject({
      login: true,
      connection_limit: 7,
      valid_until: null,
      settings: expect.arrayContaining(["work_mem=8MB", 'search_path="$user", public, "Odd Schema"']),
      database_settings: ["work_mem=16MB"],
    });
    expect(captured.memberships).toEqual(
      [
        { role: app, member: write, admin_option: false },
        { role: grp, member: app, admin_option: false },
        { role: "pg_read_all_data", member: worker, admin_option: false },
      ].sort((a, b) => a.role.localeCompare(b.role) || a.member.localeCompare(b.member)),
    );
    expect(captured.database_level).toEqual({
      owner: "postgres",
      acl: expect.arrayContaining([
        { grantee: app, privilege: "CONNECT", grantable: false },
        { grantee: worker, privilege: "CONNECT", grantable: false },
        { grantee: "postgres", privilege: "CREATE", grantable: false },
      ]),
      settings: ["statement_timeout=5min"],
    });
    expect(captured.database_level.acl.filter((a) => a.grantee === null)).toEqual([]);
    // Predefined roles are kept as groups, never as roles to create; strangers sharing one are not pulled in.
    expect(captured.roles.filter((r) => r.name.startsWith("pg_"))).toEqual([]);
    const text = JSON.stringify(captured);
    expect(text).not.toContain(OTHERS.stranger);
    for (const secret of [PASSWORD, "SCRAM-SHA-256", "********", "md5"]) expect(text).not.toContain(secret);
    expect(parseGlobals(text, "captured")).toEqual(captured);
    expect(captured.sql).toBe(globalsSql(captured, source));
  });
});

describe("a backup run", () => {
  it("writes the globals file beside the dump (0600), listed in the manifest with its sha256; verify checks it", async () => {
    const row = await runBackup({ config, pool: cat.pool, logger }, { database: source, url: as(ROLES.worker, source) });
    const file = path.join(backupDir, row.file!);
    const globals = globalsPath(file);
    expect(fs.statSync(globals).mode & 0o777).toBe(0o600);
    const manifest = readManifest(file)!;
    expect(manifest.globals).toEqual({
      file: path.basename(globals),
      bytes: fs.statSync(globals).size,
      sha256: sha(globals),
      roles: captured.roles.map((r) => r.name),
    });
    expect(readGlobals(file)).toMatchObject({ database: source, roles: captured.roles, memberships: captured.memberships });
    expect(await verifyBackup(config, cat.pool, row.id)).toMatchObject({ ok: true });

    // More backups to damage: a changed globals file, and a missing one, are problems.
    const changed = await runBackup({ config, pool: cat.pool, logger }, { database: source, url: as(ROLES.worker, source) });
    fs.appendFileSync(globalsPath(changed.local_path!), " ");
    expect((await verifyBackup(config, cat.pool, changed.id)).problems).toEqual([
      expect.stringMatching(/^globals file sha256 mismatch: file [0-9a-f]{64}, manifest [0-9a-f]{64}$/),
    ]);
    const other = await runBackup({ config, pool: cat.pool, logger }, { database: source, url: as(ROLES.worker, source) });
    const otherGlobals = globalsPath(other.local_path!);
    fs.rmSync(otherGlobals);
    expect((await verifyBackup(config, cat.pool, other.id)).problems).toEqual([`globals file ${otherGlobals} is missing`]);
    // Restoring it with --with-roles says what is missing, before creating anything.
    await expect(restoreBackup(config, cat.pool, cat.url, other.id, restored.denied, undefined, { withRoles: true })).rejects.toThrow(
      /\.globals\.json does not exist: backup .* has no globals file .* Restore without --with-roles/,
    );
  });

  it("fails loudly when the globals cannot be captured, leaving nothing behind", async () => {
    const before = fs.readdirSync(backupDir).sort();
    // The target says one database and connects to another: the capture refuses it.
    await expect(runBackup({ config, pool: cat.pool, logger }, { database: source, url: cat.url })).rejects.toThrow(
      /^could not capture the roles, memberships and database settings of .* \(the \.globals\.json beside each backup\): captureGlobals: connected to/,
    );
    expect(fs.readdirSync(backupDir).sort()).toEqual(before);
  });

  it("a leftover globals .partial is removed with the dump's; retention prunes the globals file with the dump", async () => {
    const leftover = `${source}_20200101T000000Z.dump.globals.json.partial`;
    fs.writeFileSync(path.join(backupDir, leftover), "{");
    expect(removeLeftovers(backupDir, source)).toEqual([leftover]);

    const strict = testConfig({ BACKUP_DIR: backupDir, RETAIN_DAILY: "1", RETAIN_WEEKLY: "0", RETAIN_MONTHLY: "0", RETAIN_MIN_SUCCESSFUL: "1" });
    const newest = await runBackup({ config: strict, pool: cat.pool, logger }, { database: source, url: as(ROLES.worker, source) });
    const result = await applyRetention(strict, cat.pool, logger, source);
    expect(result.unknownFiles).toEqual([]);
    expect(result.prune.length).toBeGreaterThan(0);
    for (const pruned of result.prune) expect(fs.existsSync(globalsPath(pruned.local_path!))).toBe(false);
    expect(fs.existsSync(globalsPath(newest.local_path!))).toBe(true);
  });
});

describe("restore --with-roles on a server without the roles", () => {
  let id: number;

  beforeAll(async () => {
    const row = await runBackup({ config, pool: cat.pool, logger }, { database: source, url: as(ROLES.worker, source) });
    id = row.id;
    // As on a new server: the database and its roles are gone.
    await admin.query(`drop database ${source} with (force)`);
    for (const r of [ROLES.write, ROLES.app, ROLES.grp, ROLES.owner, ROLES.worker]) await admin.query(`drop role ${r}`);
    expect(await roleNames()).toEqual(Object.values(OTHERS).sort());
  });

  it("refuses, before creating anything, a role that may not create roles or give objects to their owners", async () => {
    await expect(restoreBackup(config, cat.pool, as(OTHERS.restorer, "postgres"), id, restored.denied, undefined, { withRoles: true })).rejects.toThrow(
      new RegExp(
        `^--with-roles must create the roles .*${ROLES.app}.*, missing on this server, and role ${OTHERS.restorer} may not create roles: ` +
          `--with-roles needs a superuser or a role with CREATEROLE; run the restore as a superuser, e.g. as postgres on the new server .*Nothing was created$`,
      ),
    );
    await expect(restoreBackup(config, cat.pool, as(OTHERS.creator, "postgres"), id, restored.denied, undefined, { withRoles: true })).rejects.toThrow(
      new RegExp(`only a superuser or a member of the owning role may \\(ALTER \\.\\.\\. OWNER TO\\): role ${OTHERS.creator} is neither for .*${ROLES.owner}`),
    );
    expect(await roleNames()).toEqual(Object.values(OTHERS).sort());
    expect((await admin.query("select from pg_database where datname = $1", [restored.denied])).rowCount).toBe(0);
  });

  it("through the CLI as the superuser: creates the roles, keeps owners and grants, sets the database's ACL and settings", async () => {
    const { worker, app, write, grp, owner } = ROLES;
    const env = { DATABASE_URL: cat.url, BACKUP_DIR: backupDir };
    const run = await runCli(["backup", "restore", String(id), "--into", restored.roles, "--with-roles"], env);
    expect(run).toMatchObject({ code: 0, stderr: "" });
    const created = [app, grp, owner, worker, write].sort();
    const login = (r: string) => (r === worker || r === write ? `${r} (login, no password)` : r);
    expect(run.stdout).toMatch(
      new RegExp(
        `^restored backup ${id} into ${restored.roles}: 2 tables, 25 rows, [\\d.]+ m?s\\n` +
          `created roles: ${created.map(login).join(", ").replace(/[()]/g, "\\$&")}; existing: postgres; memberships granted: 3\\n` +
          `set a password for each login role: ALTER ROLE ${worker} PASSWORD '...'; ALTER ROLE ${write} PASSWORD '...';\\n$`,
      ),
    );

    const attrs = await admin.query(
      "select rolname, rolcanlogin, rolcreatedb, rolconnlimit, rolpassword is null as nopass from pg_authid where rolname = any($1)",
      [created],
    );
    expect(Object.fromEntries(attrs.rows.map((r) => [r.rolname, [r.rolcanlogin, r.rolcreatedb, r.rolconnlimit, r.nopass]]))).toEqual({
      [worker]: [true, true, -1, true],
      [write]: [true, false, 7, true],
      [app]: [false, false, -1, true],
      [grp]: [false, false, -1, true],
      [owner]: [false, false, -1, true],
    });
    const [checks] = await onDatabase(
      restored.roles,
      `select pg_has_role($1, $2, 'member') as write_in_app, pg_has_role($2, $3, 'member') as app_in_grp,
              pg_has_role($4, 'pg_read_all_data', 'member') as worker_reads,
              (select pg_get_userbyid(relowner) from pg_class where oid = 'pmt.activity'::regclass) as activity_owner,
              (select pg_get_userbyid(relowner) from pg_class where oid = 'jobs.request'::regclass) as request_owner,
              (select pg_get_userbyid(proowner) from pg_proc where oid = 'pmt.filter_csv()'::regprocedure) as function_owner,
              has_function_privilege($1, 'pmt.filter_csv()', 'execute') as write_executes,
              has_function_privilege($5, 'pmt.filter_csv()', 'execute') as stranger_executes,
              has_table_privilege($2, 'pmt.activity', 'select') as app_selects,
              has_schema_privilege($2, 'pmt', 'usage') as app_uses,
              has_database_privilege($2, current_database(), 'connect') as app_connects,
              has_database_privilege($5, current_database(), 'connect') as stranger_connects,
              (select pg_get_userbyid(datdba) from pg_database where datname = current_database()) as database_owner`,
      [write, app, grp, worker, OTHERS.stranger],
    );
    expect(checks).toEqual({
      write_in_app: true,
      app_in_grp: true,
      worker_reads: true,
      activity_owner: owner,
      request_owner: worker,
      function_owner: owner,
      write_executes: true,
      stranger_executes: false,
      app_selects: true,
      app_uses: true,
      app_connects: true,
      stranger_connects: false,
      database_owner: "postgres",
    });
    const settings = await admin.query<{ who: string | null; here: boolean; setconfig: string[] }>(
      `select r.rolname as who, s.setdatabase <> 0 as here, s.setconfig from pg_db_role_setting s left join pg_roles r on r.oid = s.setrole
        where s.setdatabase = (select oid from pg_database where datname = $1) or r.rolname = $2 order by 1 nulls first, 2`,
      [restored.roles, write],
    );
    expect(settings.rows).toEqual([
      { who: null, here: true, setconfig: ["statement_timeout=5min"] },
      { who: write, here: false, setconfig: captured.roles.find((r) => r.name === write)!.settings },
      { who: write, here: true, setconfig: ["work_mem=16MB"] },
    ]);
  });

  it("without --with-roles, as before: everything owned by the restoring role, no grants", async () => {
    const result = await restoreBackup(config, cat.pool, cat.url, id, restored.plain);
    expect(result.roles).toBeUndefined();
    const [checks] = await onDatabase(
      restored.plain,
      `select (select pg_get_userbyid(relowner) from pg_class where oid = 'pmt.activity'::regclass) as activity_owner,
              has_table_privilege($1, 'pmt.activity', 'select') as app_selects,
              (select proacl is null from pg_proc where oid = 'pmt.filter_csv()'::regprocedure) as default_acl`,
      [ROLES.app],
    );
    expect(checks).toEqual({ activity_owner: "postgres", app_selects: false, default_acl: true });
  });

  it("with every role there, reports them existing and creates nothing", async () => {
    await admin.query(`drop database ${restored.plain} with (force)`);
    const result = await restoreBackup(config, cat.pool, cat.url, id, restored.plain, undefined, { withRoles: true });
    expect(result.roles).toEqual({
      created: [],
      existing: [...Object.values(ROLES), "postgres"].sort(),
      withoutPassword: [],
      memberships: 0,
      skipped: [],
    });
    expect((await getBackup(cat.pool, id))!.status).toBe("succeeded");
  });
});

describe("the globals file's SQL", () => {
  it("runs as it is (psql's simple protocol): odd names quoted, roles created once, the database's part applied", async () => {
    const odd = `g${hex}_o'dd "x" $pmt$`;
    const plain = role("sqlplain");
    const db = `pmt_test_${hex}_sql`;
    await admin.query(`create database ${db}`);
    const globals: Globals = {
      kind: "pmt-worker globals",
      version: 1,
      database: db,
      taken_at: new Date().toISOString(),
      server_version: "15.x",
      roles: [odd, plain].map((name) => ({
        name,
        superuser: false,
        login: name === plain,
        inherit: true,
        createrole: false,
        createdb: false,
        replication: false,
        bypassrls: false,
        connection_limit: -1,
        valid_until: name === plain ? "infinity" : null,
        settings: ['search_path="$user", public, "It\'s ""odd"""', "application_name=it's"],
        database_settings: ["work_mem=12MB"],
        referenced: ["owner"],
      })),
      memberships: [{ role: odd, member: plain, admin_option: true }],
      database_level: { owner: odd, acl: [{ grantee: plain, privilege: "CONNECT", grantable: true }], settings: ['search_path=a, "B c"'] },
      sql: "",
    };
    const sql = globalsSql(parseGlobals(JSON.stringify(globals), "test"), db);
    try {
      await admin.query(sql);
      await admin.query(sql); // roles exist now: left as they are, the rest applied again
      const [r] = (
        await admin.query(
          `select pg_has_role($2, $1, 'usage') as member,
                  (select setconfig from pg_db_role_setting where setdatabase = 0 and setrole = (select oid from pg_roles where rolname = $1)) as settings,
                  (select pg_get_userbyid(datdba) from pg_database where datname = $3) as owner,
                  (select setconfig from pg_db_role_setting where setrole = 0 and setdatabase = (select oid from pg_database where datname = $3)) as db_settings,
                  has_database_privilege($2, $3, 'connect with grant option') as connects,
                  has_database_privilege('public', $3, 'connect') as public_connects`,
          [odd, plain, db],
        )
      ).rows;
      expect(r).toEqual({
        member: true,
        settings: ['search_path="$user", public, "It\'s ""odd"""', "application_name=it's"],
        owner: odd,
        db_settings: ['search_path=a, "B c"'],
        connects: true,
        public_connects: false,
      });
    } finally {
      await admin.query(`drop database if exists ${db} with (force)`);
      await admin.query(`drop role if exists ${plain}`);
      await admin.query(`drop role if exists ${pg.escapeIdentifier(odd)}`);
    }
  });

  it("a malformed globals file is refused, naming the file and what is wrong", () => {
    expect(() => parseGlobals("{", "/b/x.globals.json")).toThrow(/^\/b\/x\.globals\.json is not a pmt-worker globals file: not JSON/);
    const bad = { ...captured, roles: [{ ...captured.roles[0], login: "yes" }] };
    expect(() => parseGlobals(JSON.stringify(bad), "/b/x.globals.json")).toThrow(
      /^\/b\/x\.globals\.json is not a valid pmt-worker globals file \(version 1\): roles\.0\.login: .*boolean/,
    );
    const unknown = { ...captured, memberships: [{ role: "nobody", member: captured.roles[0]!.name, admin_option: false }] };
    expect(() => parseGlobals(JSON.stringify(unknown), "f")).toThrow(/memberships\.0\.role: role nobody is not in roles/);
  });
});
