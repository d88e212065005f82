/**
 * One transaction on a client of the pool: committed when `fn` returns,
 * rolled back when it throws (the error passes on unchanged), the client
 * released either way (discarded, not pooled, when even the rollback failed:
 * the session may still be inside the transaction). `begin` is the statement that opens it ("begin",
 * "begin transaction read only; set local statement_timeout = 10000").
 */
import type pg from "pg";

export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, begin = "begin"): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(begin);
    const result = await fn(client);
    await client.query("commit");
    return result;
  } catch (error) {
    broken = await client.query("rollback").then(
      () => undefined,
      (rollbackError: Error) => rollbackError,
    );
    throw error;
  } finally {
    client.release(broken);
  }
}
