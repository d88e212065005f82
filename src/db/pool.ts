import pg from "pg";
import { UserError, errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import { redactUrl } from "../redact.js";
import { isConnectionError } from "./resilient.js";

// bigint (int8) as string would leak into JSON as "123"; job ids fit in a JS number for centuries.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type Pool = pg.Pool;

/**
 * The search_path of every session pmt-worker opens: PostgreSQL's own catalog
 * and the session's temporary schema, nothing anyone else can create objects
 * in. With the default ("$user", public), an operator or function planted in
 * `public` that matches an argument type better than the built-in one (an `=`
 * for varchar, CVE-2018-1058's pattern) would run with the worker's role; so
 * every name in our SQL is schema-qualified (pmt_jobs.x, graphile_worker.x,
 * public.activity). Sent as a startup option, so it holds from the first
 * statement and over a role's or database's own `SET search_path`.
 */
export const SAFE_SEARCH_PATH = "pg_catalog, pg_temp";

/**
 * row_security off: a query that a row-level security policy would filter
 * fails ("query would be affected by row-level security policy") instead of
 * running the policy's expression with the worker's role, as pg_dump does.
 * PMT's tables must then be owned by the DBA with RLS off (doctor checks).
 */
const SESSION_SETTINGS = `-c search_path=${SAFE_SEARCH_PATH.replace(/ /g, "\\ ")} -c row_security=off`; // "\ ": a space inside a startup option

/**
 * pg settings for a session of ours: our startup options after any the URL
 * carries (`?options=...`, which pg would otherwise let override ours, so it
 * is moved out of the URL), and a bounded connect wait.
 */
export function clientConfig(connectionString: string, extra: pg.ClientConfig = {}): pg.ClientConfig {
  let url = connectionString;
  let fromUrl = "";
  try {
    const parsed = new URL(connectionString);
    fromUrl = parsed.searchParams.get("options") ?? "";
    if (fromUrl) {
      parsed.searchParams.delete("options");
      url = parsed.toString();
    }
  } catch {
    // not a URL (a key=value string): pg parses it as it is
  }
  return { connectionString: url, options: `${fromUrl} ${SESSION_SETTINGS}`.trim(), connectionTimeoutMillis: 10_000, ...extra };
}

export interface PoolOptions {
  max?: number;
  applicationName?: string;
  /**
   * false: PostgreSQL's default search_path, as PMT's application and psql
   * have. Only for test harnesses that play those callers; every pool of the
   * worker and the CLI keeps the fixed one.
   */
  safeSearchPath?: boolean;
}

export function createPool(connectionString: string, options: PoolOptions = {}): pg.Pool {
  const base = options.safeSearchPath === false ? { connectionString, connectionTimeoutMillis: 10_000 } : clientConfig(connectionString);
  const pool = new pg.Pool({
    ...base,
    max: options.max ?? 10,
    application_name: options.applicationName ?? "pmt-worker",
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

/**
 * As checkConnection, but a server that is not up yet (refused, starting,
 * shutting down, its host name not resolving yet as a container starts) is
 * waited for, with a log line every `logEveryMs`; a wrong password or a
 * missing database still fails at once.
 */
export async function waitForDatabase(pool: pg.Pool, connectionString: string, logger: Logger, logEveryMs = 5000): Promise<void> {
  let loggedAt = 0;
  let waited = false;
  for (;;) {
    try {
      await checkConnection(pool, connectionString);
      if (waited) logger.info({ database: redactUrl(connectionString) }, "the database is up");
      return;
    } catch (error) {
      const cause = (error as Error).cause as { code?: string } | undefined;
      if (!isConnectionError(cause) && cause?.code !== "ENOTFOUND") throw error;
      if (Date.now() - loggedAt >= logEveryMs) {
        logger.warn(`${errorMessage(error)}; waiting for the database to come up`);
        loggedAt = Date.now();
      }
      waited = true;
      await new Promise((r) => setTimeout(r, 1000));
    }
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

/**
 * A connection of our own, outside a pool. It always has an 'error' listener:
 * a server that ends the session while no query is running (a restart's
 * "terminating connection due to administrator command", often arriving
 * while `end()` waits) emits 'error' on the client, and with no listener Node
 * ends the whole worker. The failure still reaches the caller through the
 * promise of its next query. The only place in src/ that calls `new pg.Client`
 * (test/db/pool.test.ts holds it so).
 */
export function openClient(config: pg.ClientConfig): pg.Client {
  const client = new pg.Client(config);
  client.on("error", () => {});
  return client;
}

/** One short-lived connection for `fn` (to a database other than the pool's, e.g. to create or drop one). */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = openClient(clientConfig(url));
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
