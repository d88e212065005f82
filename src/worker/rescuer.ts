/**
 * Heartbeat and rescue, River's JobRescuer for graphile-worker.
 *
 * graphile-worker keeps a dead worker's jobs locked for 4 hours. Each
 * pmt-worker process instead heartbeats its row in pmt_jobs.worker; a process
 * whose heartbeat is older than WORKER_DEAD_AFTER_SECONDS is dead, so any live
 * worker releases its locks (graphile_worker.force_unlock_workers, the jobs
 * are then retried); the capture trigger marks its running attempts abandoned.
 *
 * A worker judges others only after its own heartbeats have succeeded without
 * a gap for the whole window: after a database outage everyone's heartbeat is
 * stale, and nobody may be declared dead until all had the chance to beat again.
 */
import os from "node:os";
import { sql } from "kysely";
import type pg from "pg";
import type { Db } from "../db/schema.js";
import { inTransaction } from "../db/transaction.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";

export interface RescuerOptions {
  db: Db;
  pool: pg.Pool;
  logger: Logger;
  workerId: string;
  /** graphile-worker ids of this process's other runners: heartbeat with it, released with it. */
  otherRunnerIds?: string[];
  version: string;
  concurrency: number;
  tasks: string[];
  deadAfterSeconds: number;
}

export interface Rescuer {
  /** Stops the heartbeat and removes this worker's row. */
  stop(): Promise<void>;
}

export async function startRescuer(options: RescuerOptions): Promise<Rescuer> {
  const { db, pool, logger, workerId, deadAfterSeconds } = options;
  const runnerIds = options.otherRunnerIds ?? [];
  const intervalMs = Math.max(500, Math.floor((deadAfterSeconds * 1000) / 4));
  let healthySince: number | null = null;
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();

  await db
    .insertInto("pmt_jobs.worker")
    .values({
      id: workerId,
      hostname: os.hostname(),
      pid: process.pid,
      version: options.version,
      concurrency: options.concurrency,
      tasks: options.tasks,
      runner_ids: runnerIds,
    })
    .execute();
  healthySince = Date.now();

  async function heartbeat(): Promise<void> {
    // Upsert: a worker declared dead by mistake (frozen, partitioned) comes back.
    await sql`
      insert into pmt_jobs.worker (id, hostname, pid, version, concurrency, tasks, runner_ids)
      values (${workerId}, ${os.hostname()}, ${process.pid}, ${options.version}, ${options.concurrency}, ${options.tasks}, ${runnerIds})
      on conflict (id) do update set last_seen_at = now()`.execute(db);
  }

  /**
   * Each stale worker is removed and its jobs released in one transaction, so
   * a failure half-way leaves it to the next pass rather than forgotten.
   */
  async function rescue(): Promise<void> {
    const stale = await db
      .selectFrom("pmt_jobs.worker")
      .select(["id", "hostname", "pid", "last_seen_at"])
      .where("last_seen_at", "<", sql<Date>`now() - make_interval(secs => ${deadAfterSeconds})`)
      .where("id", "<>", workerId)
      .execute();
    for (const w of stale) {
      const reason = `worker ${w.id} (${w.hostname} pid ${w.pid}) stopped heartbeating for over ${deadAfterSeconds}s; the job was released for retry`;
      if (await releaseDeadWorker(pool, w.id, deadAfterSeconds, reason)) {
        logger.warn(
          { deadWorker: w.id, hostname: w.hostname, pid: w.pid, lastSeenAt: w.last_seen_at },
          "worker stopped heartbeating; its jobs are released for retry",
        );
      }
    }
  }

  /** One heartbeat and, when this worker has been healthy for the whole window, one rescue pass. */
  async function tick(): Promise<void> {
    try {
      await heartbeat();
      healthySince ??= Date.now();
    } catch (error) {
      if (healthySince !== null) logger.warn({ err: errorMessage(error) }, "heartbeat failed");
      healthySince = null;
      return;
    }
    if (Date.now() - healthySince < deadAfterSeconds * 1000) return;
    await rescue().catch((error) => logger.warn({ err: errorMessage(error) }, "rescue pass failed"));
  }

  const timer = setInterval(() => {
    if (stopped) return;
    running = running.then(tick);
  }, intervalMs);
  timer.unref();

  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running.catch(() => {});
      await db
        .deleteFrom("pmt_jobs.worker")
        .where("id", "=", workerId)
        .execute()
        .catch((error) => logger.warn({ err: errorMessage(error) }, "could not remove this worker's row: status shows it until its heartbeat is stale"));
    },
  };
}

/**
 * Removes a worker's row if it is still stale and releases its job locks
 * and those of its other runners (graphile_worker.force_unlock_workers); the capture trigger marks its running
 * attempts abandoned with `reason`. One transaction. True if it was released.
 */
async function releaseDeadWorker(pool: pg.Pool, id: string, deadAfterSeconds: number, reason: string): Promise<boolean> {
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query<{ runner_ids: string[] }>(
      "delete from pmt_jobs.worker where id = $1 and last_seen_at < now() - make_interval(secs => $2) returning runner_ids",
      [id, deadAfterSeconds],
    );
    const rowCount = rows.length;
    if (rowCount) {
      await client.query("select set_config('pmt_jobs.release_reason', $1, true)", [reason]);
      await client.query("select graphile_worker.force_unlock_workers($1::text[])", [[id, ...rows[0]!.runner_ids]]);
    }
    return Boolean(rowCount);
  });
}
