/**
 * Every read the console makes runs here: in a READ ONLY transaction with a
 * statement timeout, so a page can neither change anything nor hold a
 * connection of the worker's pool for long.
 */
import type pg from "pg";

export const STATEMENT_TIMEOUT_MS = 10_000;

export type Query = <T extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<T[]>;

export async function readOnly<T>(pool: pg.Pool, fn: (q: Query) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query(`begin transaction read only; set local statement_timeout = ${STATEMENT_TIMEOUT_MS}`);
    const result = await fn(async (text, values) => (await client.query(text, values)).rows);
    await client.query("commit");
    return result;
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
