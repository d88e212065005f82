import type pg from "pg";

/**
 * Exact row counts of every ordinary table outside the system schemas, in the
 * client's current snapshot: what a dump holds, and what a restore must.
 */
export async function countRows(client: pg.Client): Promise<Record<string, number>> {
  const { rows } = await client.query<{ name: string }>(`
    select format('%I.%I', n.nspname, c.relname) as name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
    order by 1`);
  const counts: Record<string, number> = {};
  for (const { name } of rows) {
    const r = await client.query<{ n: string }>(`select count(*) as n from ${name}`);
    counts[name] = Number(r.rows[0]!.n);
  }
  return counts;
}
