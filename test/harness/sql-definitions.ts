/**
 * The definitions of pmt-worker's own functions and views as a database holds
 * them after `migrate`: what the snapshot test compares with the fixture
 * test/db/sql-definitions.json (taken from the code before the functions moved
 * to sql/functions/), so that no body changes by accident.
 */
import type pg from "pg";

export interface Definition {
  /** pg_get_functiondef / the view's columns and pg_get_viewdef. */
  definition: string;
  comment: string | null;
  /** Privileges, the owner's name replaced by OWNER (it differs between databases). */
  acl: string | null;
}

/** name (regprocedure, or `view pmt_jobs.x`) -> its definition, in name order. */
export type Definitions = Record<string, Definition>;

export async function readDefinitions(pool: pg.Pool): Promise<Definitions> {
  const db = await pool.connect();
  try {
    // Names and types print schema-qualified whatever the pool's search_path.
    await db.query("begin");
    await db.query("set local search_path = pg_catalog, pg_temp");
    return await read(db);
  } finally {
    await db.query("rollback").catch(() => {});
    db.release();
  }
}

async function read(db: pg.PoolClient): Promise<Definitions> {
  const functions = await db.query<{ name: string; definition: string; comment: string | null; acl: string | null }>(`
    select p.oid::regprocedure::text as name,
           pg_get_functiondef(p.oid) as definition,
           obj_description(p.oid, 'pg_proc') as comment,
           replace(p.proacl::text, pg_get_userbyid(p.proowner)::text, 'OWNER') as acl
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'pmt_jobs'
       or (n.nspname = 'public' and p.proname in ('pmt_filter_csv', 'pmt_filter_iati'))`);
  const views = await db.query<{ name: string; definition: string; comment: string | null; acl: string | null }>(`
    select 'view ' || c.oid::regclass::text as name,
           (select string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' order by a.attnum)
            from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped)
             || E'\\n' || pg_get_viewdef(c.oid) as definition,
           obj_description(c.oid, 'pg_class') as comment,
           replace(c.relacl::text, pg_get_userbyid(c.relowner)::text, 'OWNER') as acl
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'pmt_jobs' and c.relkind = 'v'`);
  const all = [...functions.rows, ...views.rows].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return Object.fromEntries(all.map(({ name, ...d }) => [name, d]));
}

/** Whitespace-insensitive: runs of white space become one space, none at the ends. */
export function normalize(definitions: Definitions): Definitions {
  const squash = (s: string | null) => (s === null ? null : s.replace(/\s+/g, " ").trim());
  return Object.fromEntries(
    Object.entries(definitions).map(([name, d]) => [name, { definition: squash(d.definition)!, comment: squash(d.comment), acl: d.acl }]),
  );
}
