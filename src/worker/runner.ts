/**
 * Assembles a worker: two graphile-worker runners over one pool, one for
 * maintenance (backups, offsite, alerts, prunes; MAINTENANCE_CONCURRENCY
 * slots, the crontab) and one for everything else (exports; WORKER_CONCURRENCY
 * slots), so a backup never waits behind exports. Each runner fetches only the
 * jobs of its own task list. Every task is wrapped by withHistory; one
 * heartbeat row and rescuer covers both runners; one /healthz + /metrics listener.
 */
import { EventEmitter } from "node:events";
import { run, type ParsedCronItem, type Runner, type Task, type WorkerEvents } from "graphile-worker";
import type { Config } from "../config.js";
import { createDb } from "../db/kysely.js";
import { checkConnection, createPool, waitForDatabase, type Pool } from "../db/pool.js";
import { migrate } from "../db/migrate.js";
import { resilientPool } from "../db/resilient.js";
import { errorMessage } from "../errors.js";
import { graphileLogger, type Logger } from "../log.js";
import { VERSION } from "../version.js";
import { startDropFolder, type DropFolder } from "../exports/drop-folder.js";
import { applyExportLimits } from "../exports/limits.js";
import { createMailer, type Mailer } from "../mail/transport.js";
import { recoverBackups } from "../backups/recover.js";
import { backupTargets } from "../backups/target.js";
import { buildCronItems } from "./crontab.js";
import { withHistory } from "./history-wrapper.js";
import { startHttpServer } from "./http.js";
import { createMetrics } from "./metrics.js";
import { startRescuer } from "./rescuer.js";
import { buildTasks, MAINTENANCE_TASKS } from "./tasks.js";

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
  /** Wait for a database that is not up yet (with a log line every few seconds) instead of failing. */
  waitForDatabase?: boolean;
}

export interface WorkerHandle {
  /** graphile-worker pool id of the export runner: job_run.worker_id and locked_by of its jobs. */
  workerId: string;
  /** graphile-worker pool id of the maintenance runner (backups, offsite, alerts, prunes). */
  maintenanceWorkerId: string;
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
  // Pool: both runners' slots, their two LISTEN connections, the rescuer and health checks.
  const pool = createPool(options.databaseUrl, { max: config.concurrency + config.maintenanceConcurrency + 5, applicationName: "pmt-worker" });
  if (options.waitForDatabase) await waitForDatabase(pool, options.databaseUrl, logger);
  else await checkConnection(pool, options.databaseUrl);
  if (options.migrate !== false) {
    const { warnings } = await migrate(pool, logger);
    for (const w of warnings) logger.warn({ check: w.name }, w.detail);
  }
  await applyExportLimits(pool, config.exportLimits, logger);

  const db = createDb(pool);
  await recoverBackups(config.backup.dir, pool, logger);
  const metrics = createMetrics(pool, { backupDir: config.backup.dir });
  const mailer = options.mailer ?? createMailer(config);
  const bodies = { ...buildTasks({ config, databaseUrl: options.databaseUrl, db, pool, logger, mailer }), ...options.extraTasks };
  const taskList = Object.fromEntries(
    Object.entries(bodies).map(([name, body]) => [name, withHistory(name, body, { pool, logger, metrics })]),
  );
  const maintenanceList = Object.fromEntries(Object.entries(taskList).filter(([name]) => MAINTENANCE_TASKS.has(name)));
  const exportList = Object.fromEntries(Object.entries(taskList).filter(([name]) => !MAINTENANCE_TASKS.has(name)));

  let stopped: string | null = null;
  const cron = buildCronItems(config, backupTargets(options.databaseUrl, config.backup), { embedded: options.embedded });
  const exportsRunner = await startRunner({ pool, logger, taskList: exportList, concurrency: config.concurrency, pollIntervalMs: config.pollIntervalMs, cron: [] });
  const maintenance = await startRunner({
    pool,
    logger,
    taskList: maintenanceList,
    concurrency: config.maintenanceConcurrency,
    pollIntervalMs: config.pollIntervalMs,
    cron,
  }).catch(async (error) => {
    await exportsRunner.runner.stop();
    await pool.end();
    throw error;
  });
  const runners = [exportsRunner.runner, maintenance.runner];
  const stopRunners = () => Promise.all(runners.map((r) => r.stop()));
  const poolId = exportsRunner.id;

  const rescuer = await startRescuer({
    db,
    pool,
    logger,
    workerId: poolId,
    otherRunnerIds: [maintenance.id],
    version: VERSION,
    concurrency: config.concurrency + config.maintenanceConcurrency,
    tasks: Object.keys(taskList),
    deadAfterSeconds: config.deadAfterSeconds,
  });

  const http = await startHttpServer(
    { pool, metrics, workerProblem: () => stopped },
    config.httpHost,
    config.httpPort,
  ).catch(async (error) => {
    await stopRunners();
    await rescuer.stop();
    await pool.end();
    throw error;
  });
  const dropFolder = config.dropDir
    ? startDropFolder({ dir: config.dropDir, pmtHome: config.pmtHome, pool, logger, scanIntervalMs: config.dropScanSeconds * 1000 })
    : undefined;
  logger.info(
    {
      workerId: poolId,
      maintenanceWorkerId: maintenance.id,
      concurrency: config.concurrency,
      maintenanceConcurrency: config.maintenanceConcurrency,
      tasks: Object.keys(taskList),
      http: `${config.httpHost}:${http.port}`,
    },
    "worker started",
  );

  let stopping: Promise<void> | undefined;
  const stop = (reason = "stop requested"): Promise<void> => {
    stopping ??= (async () => {
      stopped = `stopping: ${reason}`;
      logger.info({ reason }, "worker stopping; waiting for running jobs");
      await dropFolder?.stop();
      await stopRunners().catch((error) => logger.error({ err: errorMessage(error) }, "worker stopped with errors"));
      await rescuer.stop();
      await http.close();
      mailer.close();
      await pool.end();
      logger.info("worker stopped");
    })();
    return stopping;
  };

  // Either runner dying is the worker dying.
  const promise = Promise.all(runners.map((r) => r.promise)).then(
    () => {
      stopped ??= "stopped";
    },
    (error) => {
      stopped = `failed: ${errorMessage(error)}`;
      throw error;
    },
  );
  promise.catch(() => {});

  return { workerId: poolId, maintenanceWorkerId: maintenance.id, httpPort: http.port, pool, dropFolder, stop, promise };
}

/** One graphile-worker runner over the shared pool; it fetches only the jobs of `taskList`'s tasks. */
async function startRunner(options: {
  pool: Pool;
  logger: Logger;
  taskList: Record<string, Task>;
  concurrency: number;
  pollIntervalMs: number;
  cron: ParsedCronItem[];
}): Promise<{ runner: Runner; id: string }> {
  const { logger } = options;
  const events: WorkerEvents = new EventEmitter();
  let id: string | undefined;
  events.on("pool:create", ({ workerPool }) => {
    id = workerPool.id;
  });
  events.on("pool:listen:error", ({ error }) => logger.warn({ err: errorMessage(error) }, "LISTEN connection lost; reconnecting"));
  const runner = await run({
    pgPool: resilientPool(options.pool, logger),
    taskList: options.taskList,
    parsedCronItems: options.cron,
    concurrency: options.concurrency,
    pollInterval: options.pollIntervalMs,
    noHandleSignals: true,
    logger: graphileLogger(logger),
    events,
    // With the default (-1) graphile-worker 0.17 fires completeJob/failJob without
    // awaiting them, so a graceful shutdown could end before a finished job was
    // marked complete (and the job would run again). Batched (0 ms), the pending
    // completions are flushed and awaited when the pool shuts down.
    preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  });
  if (!id) {
    await runner.stop();
    throw new Error("graphile-worker did not report its pool id");
  }
  return { runner, id };
}
