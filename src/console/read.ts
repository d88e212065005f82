/**
 * Every read the console makes runs here: in a READ ONLY transaction with a
 * statement timeout, so a page can neither change anything nor hold a
 * connection of the worker's pool for long.
 */
import type pg from "pg";
import { inTransaction } from "../db/transaction.js";

export const STATEMENT_TIMEOUT_MS = 10_000;

export type Query = <T extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<T[]>;

export function readOnly<T>(pool: pg.Pool, fn: (q: Query) => Promise<T>): Promise<T> {
  return inTransaction(
    pool,
    (client) => fn(async (text, values) => (await client.query(text, values)).rows),
    `begin transaction read only; set local statement_timeout = ${STATEMENT_TIMEOUT_MS}`,
  );
}
