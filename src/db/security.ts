/**
 * What in a database lets PMT's application role (or anyone) run code as the
 * worker, found from the catalogs: for `migrate` (warnings) and `doctor`
 * (WARN lines). Each finding says what is wrong and the statement that fixes
 * it. Read only.
 */
import pg from "pg";

/** PMT's tables the exports read (migrations 0008, 0009): the worker reads them with its own privileges. */
export const PMT_EXPORT_TABLES = [
  "activity",
  "activity_taxonomy",
  "classification",
  "financial",
  "financial_taxonomy",
  "location",
  "location_taxonomy",
  "organization",
  "organization_taxonomy",
  "participation",
  "participation_taxonomy",
  "project",
  "project_taxonomy",
  "taxonomy",
  "version",
] as const;

export interface Finding {
  /** Short name of the check: "public schema", "roles", "worker role", "pmt tables". */
  name: string;
  detail: string;
}

type Queryable = Pick<pg.ClientBase, "query">;

/**
 * `public` writable by PUBLIC (every database created on PostgreSQL 14 or
 * older, and pg_upgrade keeps it) or by a role of PMT's application: whoever
 * may create objects there may plant an operator or function that PMT's own
 * sessions, psql users and any code with the default search_path resolve.
 */
async function publicSchemaFindings(c: Queryable): Promise<Finding[]> {
  const { rows } = await c.query<{ by_public: boolean; app_roles: string[] | null }>(`
    select exists (select 1 from pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                   where n.nspname = 'public' and a.grantee = 0 and a.privilege_type = 'CREATE') as by_public,
           (select array_agg(r.rolname::text order by r.rolname) from pg_roles r
             where not r.rolsuper and r.oid <> (select nspowner from pg_namespace where nspname = 'public')
               and case when exists (select 1 from pg_roles a where a.rolname = 'pmt_app')
                        then pg_has_role(r.oid, 'pmt_app', 'MEMBER') else false end
               and has_schema_privilege(r.oid, 'public', 'CREATE')) as app_roles
    where to_regnamespace('public') is not null`);
  const row = rows[0];
  if (!row) return [];
  if (row.by_public) {
    return [
      {
        name: "public schema",
        detail:
          "every role may create objects in schema public (PostgreSQL 14 and older, kept by pg_upgrade): an operator or function planted there runs as whoever resolves it with the default search_path; as the database owner run: revoke create on schema public from public;",
      },
    ];
  }
  if (row.app_roles?.length) {
    return [
      {
        name: "public schema",
        detail: `PMT's application role${row.app_roles.length > 1 ? "s" : ""} ${row.app_roles.join(", ")} may create objects in schema public: an operator or function planted there runs as whoever resolves it; as the database owner run: ${row.app_roles.map((r) => `revoke create on schema public from ${pg.escapeIdentifier(r)};`).join(" ")}`,
      },
    ];
  }
  return [];
}

/** pmt_app and pmt_backup are a DBA's one-time step when the worker may not create roles (it need not). */
export async function roleFindings(c: Queryable): Promise<Finding[]> {
  const { rows } = await c.query<{ app: boolean; backup: boolean; backup_reads: boolean | null; has_read_all: boolean }>(`
    select exists (select 1 from pg_roles where rolname = 'pmt_app') as app,
           exists (select 1 from pg_roles where rolname = 'pmt_backup') as backup,
           exists (select 1 from pg_roles where rolname = 'pg_read_all_data') as has_read_all,
           case when exists (select 1 from pg_roles where rolname = 'pmt_backup')
                 and exists (select 1 from pg_roles where rolname = 'pg_read_all_data')
                then pg_has_role('pmt_backup', 'pg_read_all_data', 'MEMBER') end as backup_reads`);
  const r = rows[0]!;
  const statements = [
    ...(r.app ? [] : ["create role pmt_app nologin;"]),
    ...(r.backup ? [] : ["create role pmt_backup nologin;"]),
    ...(r.has_read_all && r.backup_reads !== true ? ["grant pg_read_all_data to pmt_backup;"] : []),
  ];
  if (statements.length === 0) return [];
  return [
    {
      name: "roles",
      detail: `${r.app ? "" : "pmt_app (PMT's application role) does not exist yet; "}as a DBA run once: ${statements.join(" ")} then pmt-worker migrate again (it grants pmt_app what it needs)`,
    },
  ];
}

/** The worker's role needs neither superuser nor CREATEROLE; CREATEROLE lets it (and anyone who becomes it) grant itself pg_execute_server_program. */
async function workerRoleFindings(c: Queryable): Promise<Finding[]> {
  const { rows } = await c.query<{ name: string; createrole: boolean; superuser: boolean }>(
    "select rolname as name, rolcreaterole as createrole, rolsuper as superuser from pg_roles where rolname = current_user",
  );
  const r = rows[0];
  if (!r || r.superuser || !r.createrole) return [];
  return [
    {
      name: "worker role",
      detail: `${r.name} has CREATEROLE, which pmt-worker does not need (roles are a DBA's one-time step) and which lets it grant itself pg_execute_server_program; as a DBA run: alter role ${pg.escapeIdentifier(r.name)} nocreaterole;`,
    },
  ];
}

/**
 * PMT tables the exports read that could run someone else's code as the
 * worker: owned by a role other than a superuser, the worker's or the
 * database owner's (or by one of PMT's application roles), so its owner may
 * add a row-level security policy or turn it into a view (an ON SELECT rule,
 * PostgreSQL 15 and older); with RLS enabled and policies; or not a table.
 */
export async function pmtTableFindings(c: Queryable): Promise<Finding[]> {
  const { rows } = await c.query<{ name: string; owner: string; kind: string; untrusted_owner: boolean; policies: number; rls: boolean }>(
    `select c.relname as name, o.rolname as owner, c.relkind::text as kind, c.relrowsecurity as rls,
            (select count(*)::int from pg_policy p where p.polrelid = c.oid) as policies,
            not o.rolsuper and (
              o.oid not in ((select datdba from pg_database where datname = current_database()),
                            (select oid from pg_roles where rolname = current_user))
              or case when exists (select 1 from pg_roles where rolname = 'pmt_app')
                      then pg_has_role(o.oid, 'pmt_app', 'MEMBER') else false end
            ) as untrusted_owner
     from pg_class c
     join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'public'
     join pg_roles o on o.oid = c.relowner
     where c.relname = any($1::text[])
     order by c.relname`,
    [[...PMT_EXPORT_TABLES]],
  );
  const problems: string[] = [];
  for (const t of rows) {
    if (t.kind !== "r" && t.kind !== "p")
      problems.push(`public.${t.name} is not a table (relkind ${t.kind}): a view's functions run as the worker; restore PMT's table`);
    if (t.rls && t.policies > 0)
      problems.push(
        `public.${t.name} has row-level security with ${t.policies} ${t.policies === 1 ? "policy" : "policies"}: exports fail rather than run them (row_security is off for the worker); as its owner: alter table public.${t.name} disable row level security;`,
      );
    if (t.untrusted_owner)
      problems.push(
        `public.${t.name} is owned by ${t.owner}, not the DBA: its owner can make the worker run code (a policy, a rule); as a DBA run: alter table public.${t.name} owner to <the database owner>;`,
      );
  }
  return problems.length ? [{ name: "pmt tables", detail: problems.join("; ") }] : [];
}

/** What `migrate` warns about after applying the migrations. */
export async function migrateFindings(c: Queryable): Promise<Finding[]> {
  return [...(await publicSchemaFindings(c)), ...(await roleFindings(c)), ...(await workerRoleFindings(c))];
}

/** What `doctor` warns about: migrate's findings and PMT's tables. */
export async function doctorFindings(c: Queryable): Promise<Finding[]> {
  return [...(await migrateFindings(c)), ...(await pmtTableFindings(c))];
}
