/**
 * A pool for graphile-worker that rides out any database outage, however long.
 *
 * graphile-worker 0.17 gives up on the first connection error when it
 * completes or fails jobs in batches (its retry loop rethrows at once), and
 * its worker pool then shuts down: a restart of PostgreSQL under running jobs
 * would stop the worker, and a job whose end was never recorded would stay
 * locked for 4 hours. Here graphile-worker's statements are told apart by
 * classifyStatement (db/graphile-internals.ts, which lists each one a lost
 * reply may have us send again, and why sending it twice does what once does):
 *
 * - settle (complete_job, fail_job, fail_jobs and their batch forms): retried
 *   on a fresh connection until the database answers, with no deadline, so a
 *   job finished during an outage is completed, and one that failed is
 *   released for retry, once it is back. This runner fetches no job while one
 *   is being retried: a fail statement touches the jobs still locked by this
 *   runner, which must not include one it locked again meanwhile.
 * - fetch (get_job): never retried. Its reply lost, it may have locked a job
 *   nobody runs; the lock book below releases such locks once the database
 *   answers again.
 * - idempotent (task names, queue names, lock expiry, returning jobs, add_job
 *   with a job key): retried on a fresh connection for up to `waitMs`;
 *   graphile-worker itself tries them again later.
 * - LISTEN, statements inside a transaction, and any statement not listed
 *   (an add_job without a job key, a task's own query): never retried.
 *
 * Checking a client out waits until the server answers, however long that
 * takes (so a stop requested during an outage waits for the database too; a
 * second signal exits at once).
 */
import pg from "pg";
import type { Logger } from "../log.js";
import { classifyStatement, statementValues } from "./graphile-internals.js";
import { inTransaction } from "./transaction.js";

const CONNECTION_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "57P01",
  "57P02",
  "57P03",
  "53300",
]);

/** A lost, refused or not yet accepted connection (class 08, the server shutting down or starting), not an error of the statement. */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return (
    (e?.code !== undefined && (CONNECTION_CODES.has(e.code) || e.code.startsWith("08"))) ||
    /Connection terminated|not queryable|connection error|terminating connection|timeout exceeded when trying to connect|timeout expired/i.test(
      e?.message ?? "",
    )
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const backoff = (attempt: number) => Math.min(5000, 200 * 1.5 ** attempt);

async function connectWithRetry(pool: pg.Pool, logger: Logger, waitMs: number): Promise<pg.PoolClient> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await pool.connect();
    } catch (error) {
      if (!isConnectionError(error) || Date.now() > deadline) throw error;
      if (attempt === 0) logger.warn({ err: (error as Error).message }, "database unreachable; waiting for it");
      await sleep(backoff(attempt));
    }
  }
}

/**
 * Runs `fn` again, after a pause, for as long as it fails for a lost or
 * refused connection: for idempotent writes that must land once the database
 * is back (what only this process knows, like the SMTP server's answer).
 */
export async function untilDatabaseAnswers<T>(fn: () => Promise<T>, logger: Logger, what: string): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!isConnectionError(error)) throw error;
      if (attempt === 0) logger.warn({ err: (error as Error).message }, `database unreachable while ${what}; waiting for it`);
      await sleep(backoff(attempt));
    }
  }
}

/** The job ids a settle statement completes or fails. */
function settledIds(values: unknown[]): string[] {
  if (Array.isArray(values[0])) return values[0].map(String); // complete_jobs, complete_job_q, fail_jobs
  if (typeof values[1] === "string" && values[1].startsWith("[")) {
    return (JSON.parse(values[1]) as { jobId: unknown }[]).map((s) => String(s.jobId)); // fail_job, fail_job_q
  }
  return values[0] === undefined ? [] : [String(values[0])]; // complete_job
}

/**
 * The jobs this runner holds locked and knows of: fetched, not yet completed
 * or failed. After a fetch lost its connection (the server may have locked a
 * job and its reply never came), every other job locked by this runner's id
 * is an orphan, run by nobody: it is released (its attempt marked abandoned)
 * when the database answers again, while no fetch of ours is in flight.
 */
class LockBook {
  private readonly held = new Map<string, string | null>(); // job id -> its job queue id
  private poolId: string | undefined;
  private suspect = false;
  private fetching = 0;
  private releasing: Promise<void> | null = null;
  /** Settle statements being retried after a lost connection: no fetch until they land. */
  private readonly settling = new Set<Promise<unknown>>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
  ) {}

  async fetch<T extends { rows?: { id: unknown; job_queue_id?: unknown }[] }>(values: unknown[], run: () => Promise<T>): Promise<T> {
    while (this.releasing || this.settling.size) await (this.releasing ?? Promise.allSettled(this.settling));
    if (typeof values[0] === "string") this.poolId = values[0];
    this.fetching++;
    try {
      const result = await run();
      for (const row of result.rows ?? []) this.held.set(String(row.id), row.job_queue_id == null ? null : String(row.job_queue_id));
      return result;
    } catch (error) {
      if (isConnectionError(error)) this.suspect = true;
      throw error;
    } finally {
      this.fetching--;
      this.releaseOrphansIfDue();
    }
  }

  settled(ids: string[]): void {
    for (const id of ids) this.held.delete(id);
  }

  /** Runs a settle statement's retry with this runner's fetches held until it lands (see the header). */
  async settleRetry<T>(retry: () => Promise<T>): Promise<T> {
    const pending = retry();
    this.settling.add(pending);
    try {
      return await pending;
    } finally {
      this.settling.delete(pending);
    }
  }

  private releaseOrphansIfDue(): void {
    if (!this.suspect || this.fetching > 0 || this.releasing || !this.poolId) return;
    this.suspect = false;
    this.releasing = this.releaseOrphans(this.poolId)
      .catch((error) => {
        this.suspect = true; // the database is not back yet: the next fetch tries again
        this.logger.debug({ err: (error as Error).message }, "could not release orphaned job locks yet");
      })
      .finally(() => {
        this.releasing = null;
      });
  }

  private async releaseOrphans(poolId: string): Promise<void> {
    const heldIds = [...this.held.keys()];
    const heldQueues = [...new Set([...this.held.values()].filter((q): q is string => q !== null))];
    const rows = await inTransaction(this.pool, async (client) => {
      await client.query("select set_config('pmt_jobs.release_reason', $1, true)", [
        `worker ${poolId} fetched the job as its database connection was lost and never ran it; released for retry`,
      ]);
      return (
        await client.query<{ id: string }>(
          `with j as (
             update graphile_worker._private_jobs set locked_by = null, locked_at = null
             where locked_by = $1 and id <> all($2::bigint[]) returning id
           ), q as (
             update graphile_worker._private_job_queues set locked_by = null, locked_at = null
             where locked_by = $1 and id <> all($3::int[])
           )
           select id from j`,
          [poolId, heldIds, heldQueues],
        )
      ).rows;
    });
    if (rows.length) this.logger.warn({ jobs: rows.map((r) => r.id) }, "released jobs fetched as the database connection was lost; they will be retried");
  }
}

function wrapClient(pool: pg.Pool, logger: Logger, waitMs: number, locks: LockBook, client: pg.PoolClient): pg.PoolClient {
  let current = client;
  let inTransaction = false;
  const query = async (...args: unknown[]) => {
    const { kind } = classifyStatement(args);
    const values = statementValues(args);
    const text = statementText(args);
    const run = () => (current.query as (...a: unknown[]) => Promise<unknown>)(...args);
    if (kind === "listen" || typeof args[args.length - 1] === "function") return run();
    if (kind === "fetch") return locks.fetch(values, run as () => Promise<{ rows?: { id: unknown }[] }>);
    if (/^(begin|start transaction)\b/.test(text)) inTransaction = true;
    try {
      const result = await run();
      if (/^(commit|rollback|end)\b/.test(text)) inTransaction = false;
      if (kind === "settle") locks.settled(settledIds(values));
      return result;
    } catch (error) {
      if (inTransaction || !isConnectionError(error)) {
        if (/^(commit|rollback|end)\b/.test(text)) inTransaction = false;
        throw error;
      }
      if (kind === "idempotent") return retryOnFreshConnection(run, waitMs);
      if (kind !== "settle") throw error;
      logger.warn({ err: (error as Error).message }, "could not record a job's end; retrying until the database answers");
      const result = await locks.settleRetry(() => retryOnFreshConnection(run, Infinity));
      locks.settled(settledIds(values));
      logger.info("recorded the job's end after the database came back");
      return result;
    }
  };
  // A pooled idle client may be dead too (its server went in the same restart):
  // each one that fails with a lost connection is discarded for the next.
  const retryOnFreshConnection = async (run: () => Promise<unknown>, limitMs: number): Promise<unknown> => {
    const deadline = Date.now() + limitMs;
    for (let attempt = 0; ; attempt++) {
      current.release(true);
      released = true;
      const fresh = await connectWithRetry(pool, logger, limitMs);
      if (callerReleased) {
        // The caller let go while this waited for the database: the fresh session is not its to keep.
        fresh.release();
        throw new Error("the client was released while its statement waited for the database");
      }
      current = fresh;
      released = false;
      try {
        return await run();
      } catch (error) {
        if (!isConnectionError(error) || Date.now() > deadline) throw error;
        await sleep(backoff(attempt));
      }
    }
  };
  // After a retry released `current` and could not connect again, the caller's
  // own release must not throw "already released" over the error it is handling.
  let released = false;
  let callerReleased = false;
  const release = (destroy?: boolean | Error) => {
    callerReleased = true;
    if (released) return;
    released = true;
    current.release(destroy);
  };
  return new Proxy(client, {
    get(_target, prop) {
      if (prop === "query") return query;
      if (prop === "release") return release;
      const value = Reflect.get(current, prop);
      return typeof value === "function" ? value.bind(current) : value;
    },
  });
}

/** The statement's first word or two, lower case (enough to tell transaction control). */
function statementText(args: unknown[]): string {
  const first = args[0] as string | { text?: string } | undefined;
  return (typeof first === "string" ? first : (first?.text ?? "")).slice(0, 24).trimStart().toLowerCase();
}

/**
 * The same pool, for one graphile-worker runner: connects that wait out an
 * outage, statements retried as described above, and the runner's lock book.
 */
export function resilientPool(pool: pg.Pool, logger: Logger, waitMs = 120_000): pg.Pool {
  const locks = new LockBook(pool, logger);
  return new Proxy(pool, {
    get(target, prop) {
      if (prop === "connect") {
        return async (callback?: unknown) => {
          if (typeof callback === "function") return target.connect(callback as never);
          // No deadline: a statement of any kind waits for the database, however long it is away.
          return wrapClient(target, logger, waitMs, locks, await connectWithRetry(target, logger, Infinity));
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
