/**
 * A pool for graphile-worker that rides out a PostgreSQL restart.
 *
 * graphile-worker 0.17 gives up on the first connection error when it
 * completes or fails jobs in batches (its retry loop rethrows at once), and
 * its worker pool then shuts down: a restart of PostgreSQL under running jobs
 * would stop the worker and leave finished jobs locked, to run again. Here a
 * connection lost or refused is waited out: checking a client out retries
 * until the server answers, and a single statement outside a transaction that
 * fails because the connection died is retried on a fresh connection (and on
 * the next, while the pool hands out clients the restart also killed)
 * (graphile-worker's statements are single, idempotent-by-design CTEs; LISTEN
 * and transactions are never retried).
 */
import pg from "pg";
import type { Logger } from "../log.js";

const CONNECTION_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08006"]);

export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return (
    (e?.code !== undefined && CONNECTION_CODES.has(e.code)) ||
    /Connection terminated|not queryable|connection error|terminating connection/i.test(e?.message ?? "")
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connectWithRetry(pool: pg.Pool, logger: Logger, waitMs: number): Promise<pg.PoolClient> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await pool.connect();
    } catch (error) {
      if (!isConnectionError(error) || Date.now() > deadline) throw error;
      if (attempt === 0) logger.warn({ err: (error as Error).message }, "database unreachable; waiting for it");
      await sleep(Math.min(5000, 200 * 1.5 ** attempt));
    }
  }
}

/** The statement's first word or two, lower case (enough to tell LISTEN and transaction control). */
function statementText(args: unknown[]): string {
  const first = args[0] as string | { text?: string } | undefined;
  return (typeof first === "string" ? first : (first?.text ?? "")).slice(0, 24).trimStart().toLowerCase();
}

function wrapClient(pool: pg.Pool, logger: Logger, waitMs: number, client: pg.PoolClient): pg.PoolClient {
  let current = client;
  let inTransaction = false;
  const query = async (...args: unknown[]) => {
    const text = statementText(args);
    const run = () => (current.query as (...a: unknown[]) => Promise<unknown>)(...args);
    if (/^(un)?listen\b/.test(text) || typeof args[args.length - 1] === "function") return run();
    if (/^(begin|start transaction)\b/.test(text)) inTransaction = true;
    try {
      const result = await run();
      if (/^(commit|rollback|end)\b/.test(text)) inTransaction = false;
      return result;
    } catch (error) {
      if (inTransaction || !isConnectionError(error)) {
        if (/^(commit|rollback|end)\b/.test(text)) inTransaction = false;
        throw error;
      }
      return retryOnFreshConnection(run);
    }
  };
  // A pooled idle client may be dead too (its server went in the same restart):
  // each one that fails with a lost connection is discarded for the next.
  const retryOnFreshConnection = async (run: () => Promise<unknown>): Promise<unknown> => {
    const deadline = Date.now() + waitMs;
    for (;;) {
      current.release(true);
      current = await connectWithRetry(pool, logger, waitMs);
      try {
        return await run();
      } catch (error) {
        if (!isConnectionError(error) || Date.now() > deadline) throw error;
      }
    }
  };
  const release = (destroy?: boolean | Error) => current.release(destroy);
  return new Proxy(client, {
    get(_target, prop) {
      if (prop === "query") return query;
      if (prop === "release") return release;
      const value = Reflect.get(current, prop);
      return typeof value === "function" ? value.bind(current) : value;
    },
  });
}

/** The same pool, with connects that wait out a restart and statements retried after a lost connection. */
export function resilientPool(pool: pg.Pool, logger: Logger, waitMs = 120_000): pg.Pool {
  return new Proxy(pool, {
    get(target, prop) {
      if (prop === "connect") {
        return async (callback?: unknown) => {
          if (typeof callback === "function") return target.connect(callback as never);
          return wrapClient(target, logger, waitMs, await connectWithRetry(target, logger, waitMs));
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
