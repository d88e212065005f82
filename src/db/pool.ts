import pg from "pg";
import { UserError, errorMessage } from "../errors.js";
import { redactUrl } from "../redact.js";

// bigint (int8) as string would leak into JSON as "123"; job ids fit in a JS number for centuries.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type Pool = pg.Pool;

export function createPool(connectionString: string, options: { max?: number; applicationName?: string } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? "pmt-worker",
    connectionTimeoutMillis: 10_000,
  });
  // An idle client losing its connection (server restart) must not crash the process;
  // the pool discards it and the next checkout reconnects.
  pool.on("error", () => {});
  // ...and a checked-out client losing it must not either: its query fails and the caller sees that.
  pool.on("connect", (client) => {
    client.on("error", () => {});
  });
  return pool;
}

/**
 * Connects once to check the database answers, turning a refused or failed
 * connection into an error that names the server (password hidden) and what to do.
 */
export async function checkConnection(pool: pg.Pool, connectionString: string): Promise<void> {
  try {
    const client = await pool.connect();
    client.release();
  } catch (error) {
    throw connectionError(error, connectionString);
  }
}

export function connectionError(error: unknown, connectionString: string): UserError {
  const code = (error as { code?: string }).code;
  const where = redactUrl(connectionString);
  const hint =
    code === "ECONNREFUSED"
      ? "is PostgreSQL running and listening there?"
      : code === "28P01" || code === "28000"
        ? "check the user and password"
        : code === "3D000"
          ? "create the database first, or fix its name"
          : code === "ENOTFOUND"
            ? "check the host name"
            : "check DATABASE_URL";
  return new UserError(`cannot connect to ${where}: ${errorMessage(error)} (${hint})`, { cause: error });
}

/** One short-lived connection for `fn` (to a database other than the pool's, e.g. to create or drop one). */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on("error", () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
