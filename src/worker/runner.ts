/**
 * Assembles a worker: graphile-worker's runner with our task list (each task
 * wrapped by withHistory), the crontab from configuration, the heartbeat and
 * rescuer, and the /healthz + /metrics listener.
 */
import { EventEmitter } from "node:events";
import { run, type Runner, type Task, type WorkerEvents } from "graphile-worker";
import type { Config } from "../config.js";
import { createDb } from "../db/kysely.js";
import { checkConnection, createPool, type Pool } from "../db/pool.js";
import { migrate } from "../db/migrate.js";
import { resilientPool } from "../db/resilient.js";
import { errorMessage } from "../errors.js";
import { graphileLogger, type Logger } from "../log.js";
import { VERSION } from "../version.js";
import { startDropFolder, type DropFolder } from "../exports/drop-folder.js";
import { createMailer, type Mailer } from "../mail/transport.js";
import { recoverBackups } from "../backups/recover.js";
import { backupTargets } from "../backups/target.js";
import { buildCronItems } from "./crontab.js";
import { withHistory } from "./history-wrapper.js";
import { startHttpServer } from "./http.js";
import { createMetrics } from "./metrics.js";
import { startRescuer } from "./rescuer.js";
import { buildTasks } from "./tasks.js";

export interface WorkerOptions {
  config: Config;
  databaseUrl: string;
  logger: Logger;
  /** Extra tasks (tests, embedding applications); wrapped like ours. */
  extraTasks?: Record<string, Task>;
  /** Apply migrations before starting (default true). */
  migrate?: boolean;
  /** The mailer for exports; default from SMTP_URL, else the outbox under PMT_HOME. */
  mailer?: Mailer;
  /** Running on the embedded demo database (some defaults differ). */
  embedded?: boolean;
}

export interface WorkerHandle {
  /** graphile-worker pool id: job_run.worker_id and locked_by of its jobs. */
  workerId: string;
  httpPort: number;
  pool: Pool;
  /** The drop folder watcher, when DROP_DIR is set. */
  dropFolder: DropFolder | undefined;
  /** Stops taking jobs, waits for running ones, then closes everything. */
  stop(reason?: string): Promise<void>;
  /** Settles when the worker has stopped (rejects if it died). */
  promise: Promise<void>;
}

export async function startWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const { config, logger } = options;
  // Pool: the worker's slots, LISTEN, the rescuer and health checks.
  const pool = createPool(options.databaseUrl, { max: config.concurrency + 4, applicationName: "pmt-worker" });
  await checkConnection(pool, options.databaseUrl);
  if (options.migrate !== false) {
    const { warnings } = await migrate(pool, logger);
    for (const w of warnings) logger.warn({ check: w.name }, w.detail);
  }

  const db = createDb(pool);
  await recoverBackups(config.backup.dir, pool, logger);
  const metrics = createMetrics(pool, { backupDir: config.backup.dir });
  const mailer = options.mailer ?? createMailer(config);
  const bodies = { ...buildTasks({ config, databaseUrl: options.databaseUrl, db, pool, logger, mailer }), ...options.extraTasks };
  const taskList = Object.fromEntries(
    Object.entries(bodies).map(([name, body]) => [name, withHistory(name, body, { pool, logger, metrics })]),
  );

  const events: WorkerEvents = new EventEmitter();
  let poolId: string | undefined;
  events.on("pool:create", ({ workerPool }) => {
    poolId = workerPool.id;
  });
  let stopped: string | null = null;
  events.on("pool:listen:error", ({ error }) => logger.warn({ err: errorMessage(error) }, "LISTEN connection lost; reconnecting"));

  let runner: Runner;
  runner = await run({
    pgPool: resilientPool(pool, logger),
    taskList,
    parsedCronItems: buildCronItems(config, backupTargets(options.databaseUrl, config.backup.databases), { embedded: options.embedded }),
    concurrency: config.concurrency,
    pollInterval: config.pollIntervalMs,
    noHandleSignals: true,
    logger: graphileLogger(logger),
    events,
    // With the default (-1) graphile-worker 0.17 fires completeJob/failJob without
    // awaiting them, so a graceful shutdown could end before a finished job was
    // marked complete (and the job would run again). Batched (0 ms), the pending
    // completions are flushed and awaited when the pool shuts down.
    preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  });
  if (!poolId) throw new Error("graphile-worker did not report its pool id");

  const rescuer = await startRescuer({
    db,
    pool,
    logger,
    workerId: poolId,
    version: VERSION,
    concurrency: config.concurrency,
    tasks: Object.keys(taskList),
    deadAfterSeconds: config.deadAfterSeconds,
  });

  const http = await startHttpServer(
    { pool, metrics, workerProblem: () => stopped },
    config.httpHost,
    config.httpPort,
  ).catch(async (error) => {
    await runner.stop();
    await rescuer.stop();
    await pool.end();
    throw error;
  });
  const dropFolder = config.dropDir
    ? startDropFolder({ dir: config.dropDir, pmtHome: config.pmtHome, pool, logger, scanIntervalMs: config.dropScanSeconds * 1000 })
    : undefined;
  logger.info(
    { workerId: poolId, concurrency: config.concurrency, tasks: Object.keys(taskList), http: `${config.httpHost}:${http.port}` },
    "worker started",
  );

  let stopping: Promise<void> | undefined;
  const stop = (reason = "stop requested"): Promise<void> => {
    stopping ??= (async () => {
      stopped = `stopping: ${reason}`;
      logger.info({ reason }, "worker stopping; waiting for running jobs");
      await dropFolder?.stop();
      await runner.stop().catch((error) => logger.error({ err: errorMessage(error) }, "worker stopped with errors"));
      await rescuer.stop();
      await http.close();
      mailer.close();
      await pool.end();
      logger.info("worker stopped");
    })();
    return stopping;
  };

  const promise = runner.promise.then(
    () => {
      stopped ??= "stopped";
    },
    (error) => {
      stopped = `failed: ${errorMessage(error)}`;
      throw error;
    },
  );
  promise.catch(() => {});

  return { workerId: poolId, httpPort: http.port, pool, dropFolder, stop, promise };
}
