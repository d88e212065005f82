/**
 * Reads a database's globals (globals.ts) from the catalogs, as the worker's
 * own role: no superuser needed. pg_roles (never pg_authid: no passwords),
 * pg_auth_members, pg_db_role_setting, pg_database and pg_shdepend are
 * readable by every role. Run inside the backup's snapshot, the roles match
 * the dump they go with.
 */
import type pg from "pg";
import { globalsSql, isPredefined, type DatabasePrivilege, type GlobalMembership, type GlobalRole, type Globals } from "./globals.js";

/** The bootstrap superuser (postgres): pinned, so pg_shdepend never records what it owns. */
const BOOTSTRAP_SUPERUSER = 10;

/**
 * Whether the bootstrap superuser owns an object of this database that
 * pg_dump would give back to it (`ALTER .. OWNER TO postgres`): objects made
 * after initdb (oid 16384 and up), and a `public` schema it still owns.
 */
const BOOTSTRAP_OWNS = [
  ["pg_class", "relowner"],
  ["pg_proc", "proowner"],
  ["pg_type", "typowner"],
  ["pg_extension", "extowner"],
  ["pg_language", "lanowner"],
  ["pg_collation", "collowner"],
  ["pg_conversion", "conowner"],
  ["pg_operator", "oprowner"],
  ["pg_opclass", "opcowner"],
  ["pg_opfamily", "opfowner"],
  ["pg_ts_config", "cfgowner"],
  ["pg_ts_dict", "dictowner"],
  ["pg_foreign_data_wrapper", "fdwowner"],
  ["pg_foreign_server", "srvowner"],
  ["pg_event_trigger", "evtowner"],
  ["pg_publication", "pubowner"],
  ["pg_statistic_ext", "stxowner"],
  ["pg_largeobject_metadata", "lomowner"],
]
  .map(([table, column]) => `exists (select from pg_catalog.${table} where ${column} = ${BOOTSTRAP_SUPERUSER} and oid >= 16384)`)
  .concat(
    `exists (select from pg_catalog.pg_namespace where nspowner = ${BOOTSTRAP_SUPERUSER} and (oid >= 16384 or nspname = 'public'))`,
    `exists (select from pg_catalog.pg_default_acl where defaclrole = ${BOOTSTRAP_SUPERUSER})`,
  )
  .join("\n    or ");

const AUTHID = "'pg_catalog.pg_authid'::pg_catalog.regclass";

/** Roles this database names, with why: its objects' owners and privileges, and the database's own. */
const REFERENCED = `
select r.rolname as name, pg_catalog.array_agg(distinct x.reason order by x.reason) as reasons
  from (select d.refobjid as role,
               case d.deptype when 'o' then 'owner' when 'r' then 'policy' when 'i' then 'initial privileges' else 'privileges' end as reason
          from pg_catalog.pg_shdepend d
         where d.dbid = $1 and d.refclassid = ${AUTHID} and d.deptype in ('o', 'a', 'r', 'i')
        union all
        select d.refobjid, case d.deptype when 'o' then 'database owner' else 'database privileges' end
          from pg_catalog.pg_shdepend d
         where d.dbid = 0 and d.classid = 'pg_catalog.pg_database'::pg_catalog.regclass and d.objid = $1
           and d.refclassid = ${AUTHID} and d.deptype in ('o', 'a')
        union all
        select datdba, 'database owner' from pg_catalog.pg_database where oid = $1
        union all
        select a.grantee, 'database privileges'
          from pg_catalog.pg_database db, pg_catalog.aclexplode(db.datacl) a
         where db.oid = $1 and a.grantee not in (0, db.datdba)
        union all
        -- pmt-worker's group roles, which migrate needs on any server that serves this database
        -- (pmt_backup may be granted nothing here, yet a new server without it is a DBA's step short).
        select r.oid, 'pmt-worker group role' from pg_catalog.pg_roles r
         where r.rolname in ('pmt_app', 'pmt_backup') and pg_catalog.to_regnamespace('pmt_jobs') is not null
        union all
        select ${BOOTSTRAP_SUPERUSER}::pg_catalog.oid, 'owner' where ${BOOTSTRAP_OWNS}) x
  join pg_catalog.pg_roles r on r.oid = x.role
 group by r.rolname`;

/** A role as pg_roles describes it; its settings and why it is kept come from elsewhere. */
type RoleRow = Omit<GlobalRole, "settings" | "database_settings" | "referenced">;

const ROLES = `
select rolname as name, rolsuper as superuser, rolcanlogin as login, rolinherit as inherit, rolcreaterole as createrole,
       rolcreatedb as createdb, rolreplication as replication, rolbypassrls as bypassrls, rolconnlimit as connection_limit,
       pg_catalog.to_json(rolvaliduntil) #>> '{}' as valid_until
  from pg_catalog.pg_roles where rolname = any($1) order by rolname`;

/** Role settings for every database (setdatabase 0) and for this one; setrole 0 is the database's own. */
const SETTINGS = `
select s.setdatabase <> 0 as here, r.rolname as role, s.setconfig as config
  from pg_catalog.pg_db_role_setting s left join pg_catalog.pg_roles r on r.oid = s.setrole
 where s.setdatabase in (0, $1)`;

/** One row per (group, member): from 16 on a membership may be granted several times, by different grantors. */
function membershipsQuery(v16: boolean): string {
  const options = v16 ? ", pg_catalog.bool_or(a.inherit_option) as inherit_option, pg_catalog.bool_or(a.set_option) as set_option" : "";
  return `
select g.rolname as role, m.rolname as member, pg_catalog.bool_or(a.admin_option) as admin_option${options}
  from pg_catalog.pg_auth_members a
  join pg_catalog.pg_roles g on g.oid = a.roleid
  join pg_catalog.pg_roles m on m.oid = a.member
 group by g.rolname, m.rolname`;
}

const DATABASE_ACL = `
select case when a.grantee = 0 then null else pg_catalog.pg_get_userbyid(a.grantee) end as grantee,
       a.privilege_type as privilege, a.is_grantable as grantable
  from pg_catalog.pg_database db, pg_catalog.aclexplode(coalesce(db.datacl, pg_catalog.acldefault('d', db.datdba))) a
 where db.oid = $1
 order by 1 nulls first, 2`;

/**
 * The roles to keep, with why: those referenced, the groups they are members
 * of (transitively: the privileges they inherit), and their members
 * (transitively: who logs in as them). Not through predefined roles: every
 * holder of pg_read_all_data is not this database's business.
 */
function closeOverMemberships(referenced: Map<string, string[]>, memberships: GlobalMembership[]): Map<string, string[]> {
  const kept = new Map([...referenced].filter(([name]) => !isPredefined(name)));
  const walk = (from: string[], next: (role: string) => { role: string; reason: string }[]) => {
    const queue = [...from];
    while (queue.length) {
      for (const { role, reason } of next(queue.shift()!)) {
        if (isPredefined(role) || kept.has(role)) continue;
        kept.set(role, [reason]);
        queue.push(role);
      }
    }
  };
  const start = [...kept.keys()];
  walk(start, (r) => memberships.filter((m) => m.member === r).map((m) => ({ role: m.role, reason: `has member ${r}` })));
  walk(start, (r) => memberships.filter((m) => m.role === r).map((m) => ({ role: m.member, reason: `member of ${r}` })));
  return kept;
}

/**
 * The globals of `database`, read over `client` (connected to that very
 * database, as any role): see globals.ts for what and why.
 */
export async function captureGlobals(client: pg.ClientBase, database: string, serverVersion: string): Promise<Globals> {
  const here = (
    await client.query<{ db: string; oid: string; num: string }>(
      "select current_database() as db, (select oid from pg_catalog.pg_database where datname = current_database()) as oid, current_setting('server_version_num') as num",
    )
  ).rows[0]!;
  if (here.db !== database) throw new Error(`captureGlobals: connected to ${here.db}, not to ${database}`);
  const v16 = Number(here.num) >= 160000;

  const referenced = new Map((await client.query<{ name: string; reasons: string[] }>(REFERENCED, [here.oid])).rows.map((r) => [r.name, r.reasons]));
  const allMemberships = (await client.query<GlobalMembership>(membershipsQuery(v16))).rows;
  const kept = closeOverMemberships(referenced, allMemberships);
  const names = [...kept.keys()];

  const settings = (await client.query<{ here: boolean; role: string | null; config: string[] }>(SETTINGS, [here.oid])).rows;
  const settingsOf = (role: string | null, inDatabase: boolean) =>
    settings.filter((s) => s.role === role && s.here === inDatabase).flatMap((s) => s.config ?? []);
  const roles: GlobalRole[] = (await client.query<RoleRow>(ROLES, [names])).rows.map((r) => ({
    ...r,
    settings: settingsOf(r.name, false),
    database_settings: settingsOf(r.name, true),
    referenced: kept.get(r.name)!,
  }));

  // Memberships among the kept roles, and in predefined ones (pmt_worker in pg_read_all_data).
  const keep = (role: string) => kept.has(role) || isPredefined(role);
  const memberships = allMemberships
    .filter((m) => kept.has(m.member) && keep(m.role))
    .map((m) => ({
      role: m.role,
      member: m.member,
      admin_option: m.admin_option,
      ...(v16 ? { inherit_option: m.inherit_option, set_option: m.set_option } : {}),
    }))
    .sort((a, b) => a.role.localeCompare(b.role) || a.member.localeCompare(b.member));

  const owner = (
    await client.query<{ owner: string }>("select pg_catalog.pg_get_userbyid(datdba) as owner from pg_catalog.pg_database where oid = $1", [here.oid])
  ).rows[0]!.owner;
  const acl = (await client.query<{ grantee: string | null; privilege: DatabasePrivilege; grantable: boolean }>(DATABASE_ACL, [here.oid])).rows;

  const globals: Globals = {
    kind: "pmt-worker globals",
    version: 1,
    database,
    taken_at: new Date().toISOString(),
    server_version: serverVersion,
    roles,
    memberships,
    database_level: { owner, acl, settings: settingsOf(null, true) },
    sql: "",
  };
  return { ...globals, sql: globalsSql(globals, database) };
}
