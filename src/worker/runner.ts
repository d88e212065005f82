/**
 * Assembles a worker. For each served database (PMT_DATABASES, else
 * DATABASE_URL's), an instance: two graphile-worker runners over that
 * database's pool, one for maintenance (backups, offsite, alerts, prunes;
 * MAINTENANCE_CONCURRENCY slots, the crontab) and one for everything else
 * (exports; WORKER_CONCURRENCY slots), so a backup never waits behind exports;
 * each runner fetches only the jobs of its own task list; every task is
 * wrapped by withHistory; one heartbeat row and rescuer per database. Shared
 * by all: the mailer, the drop folder, one /healthz + /metrics listener and
 * the slots (FairSlots: concurrency is the process's, shared in turn).
 *
 * With several databases each instance is supervised: one that cannot be
 * reached at start, or whose database goes away (dropped, server stopped),
 * is reported and started again with backoff, while the others go on.
 */
import { EventEmitter } from "node:events";
import pg from "pg";
import { run, type ParsedCronItem, type Runner, type Task, type WorkerEvents } from "graphile-worker";
import type { Config } from "../config.js";
import { createDb } from "../db/kysely.js";
import { checkConnection, createPool, openClient, waitForDatabase, type Pool } from "../db/pool.js";
import { migrate } from "../db/migrate.js";
import { checkGraphileInternals } from "../db/graphile-internals.js";
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
import { createMetrics, type Metrics } from "./metrics.js";
import { FairSlots } from "./slots.js";
import { instancesOf, multiDatabase, servedDatabases, type Instance } from "../db/databases.js";
import { redactText } from "../redact.js";
import { startRescuer } from "./rescuer.js";
import { buildTasks, MAINTENANCE_TASKS } from "./tasks.js";

export interface WorkerOptions {
  config: Config;
  /** DATABASE_URL's (or the embedded server's) database: served alone unless PMT_DATABASES is set. */
  databaseUrl: string | undefined;
  logger: Logger;
  /** Extra tasks (tests, embedding applications); wrapped like ours. */
  extraTasks?: Record<string, Task>;
  /** Apply migrations before starting (default true). */
  migrate?: boolean;
  /** The mailer for exports; default from SMTP_URL, else the outbox under PMT_HOME. */
  mailer?: Mailer;
  /** Running on the embedded demo database (some defaults differ). */
  embedded?: boolean;
  /** One database: wait for it if it is not up yet (with a log line every few seconds) instead of failing. */
  waitForDatabase?: boolean;
}

/** One served database's runners. */
export interface InstanceHandle {
  database: string;
  /** graphile-worker pool id of the export runner: job_run.worker_id and locked_by of its jobs. */
  workerId: string;
  /** graphile-worker pool id of the maintenance runner (backups, offsite, alerts, prunes). */
  maintenanceWorkerId: string;
  pool: Pool;
}

export interface WorkerHandle {
  /** The first served database's export runner id (see InstanceHandle); undefined if it is not running. */
  workerId: string;
  maintenanceWorkerId: string;
  httpPort: number;
  /** The first served database's pool. */
  pool: Pool;
  /** The running instances by database name (one that is being retried is absent). */
  instances(): Map<string, InstanceHandle>;
  /** The shared slots: in use and jobs waiting per database (FairSlots). */
  slots(): { exports: ReturnType<FairSlots["stats"]>; maintenance: ReturnType<FairSlots["stats"]> };
  /** The drop folder watcher, when DROP_DIR is set. */
  dropFolder: DropFolder | undefined;
  /** Stops taking jobs, waits for running ones, then closes everything. */
  stop(reason?: string): Promise<void>;
  /** Settles when the worker has stopped (rejects if it died). */
  promise: Promise<void>;
}

/** What every instance shares. */
interface Shared {
  options: WorkerOptions;
  mailer: Mailer;
  metrics: Metrics;
  slots: { exports: FairSlots; maintenance: FairSlots };
}

interface RunningInstance extends InstanceHandle {
  tasks: string[];
  /** Stops its runners (waiting for running jobs), its rescuer and its pool. */
  stop(): Promise<void>;
  /** Settles when its runners stop; rejects when one died. */
  promise: Promise<void>;
}

export async function startWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const { config, logger } = options;
  const served = instancesOf(config, servedDatabases(config, options.databaseUrl));
  // A recipient with a typo would fail every offsite copy: refused now, before anything runs.
  if (config.offsite.encryptTo) await (await import("../io/age.js")).checkRecipients(config.offsite.encryptTo);
  const supervised = multiDatabase(config);
  const mailer = options.mailer ?? createMailer(config);
  const running = new Map<string, RunningInstance>();
  const down = new Map<string, string>();
  const slots = { exports: new FairSlots(config.concurrency), maintenance: new FairSlots(config.maintenanceConcurrency) };
  const metrics = createMetrics(() => [...running.values()].map((i) => ({ database: i.database, pool: i.pool })), {
    backupDir: config.backup.dir,
    databases: () => served.map((s) => ({ database: s.name, up: running.has(s.name) && !down.has(s.name) })),
    slotWaits: () => ({ exports: slots.exports.stats().waiting, maintenance: slots.maintenance.stats().waiting }),
  });
  const shared: Shared = { options, mailer, metrics, slots };

  let stopped: string | null = null;
  let stopping: Promise<void> | undefined;
  let resolveStopped!: () => void;
  const allStopped = new Promise<void>((r) => (resolveStopped = r));

  // Single database: as before, it must start (or the worker does not), and a dead runner is a dead worker.
  if (!supervised) {
    const instance = await startInstance(shared, served[0]!, logger, { waitForDatabase: options.waitForDatabase });
    running.set(instance.database, instance);
  }
  const supervisors = supervised ? served.map((s) => superviseInstance(shared, s, running, down, () => stopped !== null)) : [];
  // Each database's first attempt settles before the worker says it started (one that failed is being retried).
  await Promise.all(supervisors.map((s) => s.firstAttempt));

  const stopInstances = () =>
    Promise.all(
      [...running.values()].map((i) =>
        i.stop().catch((error) => logger.error({ database: i.database, err: errorMessage(error) }, "worker stopped with errors")),
      ),
    );
  const http = await startHttpServer(
    {
      metrics,
      workerProblem: () => stopped,
      databases: () => served.map((s) => ({ name: s.name, pool: running.get(s.name)?.pool, problem: down.get(s.name) })),
      multi: supervised,
      console: { config, served, embedded: options.embedded, logger },
    },
    config.httpHost,
    config.httpPort,
  ).catch(async (error) => {
    stopped = "failed to listen";
    await Promise.all(supervisors.map((s) => s.stop()));
    await stopInstances();
    throw error;
  });
  const dropFolder = config.dropDir
    ? startDropFolder({
        dir: config.dropDir,
        pmtHome: config.pmtHome,
        logger,
        scanIntervalMs: config.dropScanSeconds * 1000,
        route: (instance) => routeDropFile(instance, served, running, supervised),
        instances: supervised ? served.map((s) => s.name) : [],
      })
    : undefined;
  const first = () => running.get(served[0]!.name) ?? [...running.values()][0];
  logger.info(
    {
      ...(supervised ? { databases: served.map((s) => s.name), waiting: served.filter((s) => !running.has(s.name)).map((s) => s.name) } : {}),
      workerId: first()?.workerId,
      maintenanceWorkerId: first()?.maintenanceWorkerId,
      concurrency: config.concurrency,
      maintenanceConcurrency: config.maintenanceConcurrency,
      tasks: first()?.tasks,
      http: `${config.httpHost}:${http.port}`,
    },
    "worker started",
  );

  const stop = (reason = "stop requested"): Promise<void> => {
    stopping ??= (async () => {
      stopped = `stopping: ${reason}`;
      logger.info({ reason }, "worker stopping; waiting for running jobs");
      await dropFolder?.stop();
      await Promise.all(supervisors.map((s) => s.stop()));
      await stopInstances();
      await http.close();
      mailer.close();
      logger.info("worker stopped");
      resolveStopped();
    })();
    return stopping;
  };

  // Single database: its runners stopping or dying is the worker stopping or dying.
  // Several: the worker runs until stopped; instances come and go under supervision.
  const promise = supervised
    ? allStopped
    : first()!.promise.then(
        () => {
          stopped ??= "stopped";
        },
        (error) => {
          stopped = `failed: ${errorMessage(error)}`;
          throw error;
        },
      );
  promise.catch(() => {});

  const handle: WorkerHandle = {
    get workerId() {
      return first()?.workerId as string;
    },
    get maintenanceWorkerId() {
      return first()?.maintenanceWorkerId as string;
    },
    get pool() {
      return first()?.pool as Pool;
    },
    httpPort: http.port,
    instances: () =>
      new Map([...running].map(([k, v]) => [k, { database: v.database, workerId: v.workerId, maintenanceWorkerId: v.maintenanceWorkerId, pool: v.pool }])),
    slots: () => ({ exports: shared.slots.exports.stats(), maintenance: shared.slots.maintenance.stats() }),
    dropFolder,
    stop,
    promise,
  };
  return handle;
}

/** Which database a drop-folder file `<email>_<instance>.csv` goes to: with several, the one named; with one, that one. */
function routeDropFile(
  instance: string,
  served: Instance[],
  running: Map<string, RunningInstance>,
  multi: boolean,
): { pool: pg.Pool } | { retry: string } | { reject: string } {
  const target = multi ? served.find((s) => s.name.toLowerCase() === instance.toLowerCase()) : served[0];
  if (!target) return { reject: `no served database is named ${JSON.stringify(instance)} (PMT_DATABASES: ${served.map((s) => s.name).join(", ")})` };
  const pool = running.get(target.name)?.pool;
  return pool ? { pool } : { retry: `database ${target.name} is not reachable yet` };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Keeps one database's instance running: started (migrated, its crontab
 * registered), watched, and when it cannot be reached or its runners die,
 * stopped and started again with backoff (1 s doubling to 30 s), logging
 * the first failure and each recovery.
 */
function superviseInstance(
  shared: Shared,
  served: Instance,
  running: Map<string, RunningInstance>,
  down: Map<string, string>,
  isStopped: () => boolean,
): { firstAttempt: Promise<void>; stop(): Promise<void> } {
  const logger = shared.options.logger.child({ database: served.name });
  let settleFirst!: () => void;
  const firstAttempt = new Promise<void>((r) => (settleFirst = r));
  let wake: () => void = () => {};
  const loop = (async () => {
    for (let attempt = 0; !isStopped();) {
      let instance: RunningInstance;
      try {
        instance = await startInstance(shared, served, logger, {});
      } catch (error) {
        const problem = redactText(errorMessage(error));
        if (!down.has(served.name)) logger.error({ err: problem }, "database unreachable or not ready; retrying without it");
        down.set(served.name, problem);
        settleFirst();
        const delay = Math.min(30_000, 1000 * 2 ** attempt++);
        await Promise.race([sleep(delay), new Promise<void>((r) => (wake = r))]);
        continue;
      }
      if (isStopped()) return void (await instance.stop());
      if (down.delete(served.name)) logger.info("database back: serving it again");
      attempt = 0;
      running.set(served.name, instance);
      settleFirst();
      let gone: (error: unknown) => void = () => {};
      const lost = new Promise<unknown>((r) => (gone = r));
      const watchdog = watchDatabase(instance, shared, logger, down, served.name, gone);
      const outcome = await Promise.race([
        instance.promise.then(
          () => undefined,
          (error: unknown) => error,
        ),
        lost,
        new Promise<"stop">((r) => (wake = () => r("stop"))),
      ]);
      watchdog.stop();
      if (outcome === "stop" || isStopped()) return; // stopped with the worker: startWorker's stop stops it
      running.delete(served.name);
      const problem = redactText(errorMessage(outcome ?? "its runners stopped"));
      down.set(served.name, problem);
      logger.error({ err: problem }, "lost the database: its jobs stop here and the others go on; retrying");
      shared.slots.exports.forfeit(served.name);
      shared.slots.maintenance.forfeit(served.name);
      // Its jobs may be waiting for a database that is gone: do not wait for them for ever.
      await Promise.race([instance.stop().catch(() => {}), sleep(10_000)]);
    }
  })();
  loop.catch((error) => shared.options.logger.error({ database: served.name, err: errorMessage(error) }, "database supervisor failed"));
  return {
    firstAttempt,
    stop: async () => {
      wake();
      await loop.catch(() => {});
    },
  };
}

/**
 * Every 5 s, whether the database answers. One that cannot be reached
 * (server stopped, network gone, too slow to answer) gives back the shared
 * slots its stuck jobs hold, and its runners wait for it as in any outage.
 * One that refuses us (dropped, renamed, our role, password or CONNECT gone) is
 * `gone`: the instance is stopped and started afresh, migrated, once the
 * database is back.
 */
function watchDatabase(
  instance: RunningInstance,
  shared: Shared,
  logger: Logger,
  down: Map<string, string>,
  name: string,
  gone: (error: unknown) => void,
): { stop(): void } {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void pingDatabase(instance.pool, 5000)
      .then(
        () => {
          if (down.delete(name)) logger.info("database answers again");
        },
        (error) => {
          if (refusesUs(error)) return gone(error);
          if (!down.has(name)) {
            const freed = shared.slots.exports.forfeit(name) + shared.slots.maintenance.forfeit(name);
            logger.warn({ err: redactText(errorMessage(error)), slotsFreed: freed }, "database does not answer; its jobs wait for it, the others go on");
          }
          down.set(name, redactText(errorMessage(error)));
        },
      )
      .finally(() => (busy = false));
  }, 5000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** The database is not there for us (dropped, our role, password or CONNECT right gone), rather than slow or unreachable. */
function refusesUs(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === "3D000" || code === "28000" || code === "28P01" || code === "42501";
}

/** `select 1` within `ms` on a fresh connection (a pool full of stuck clients would otherwise hide the answer). */
async function pingDatabase(pool: Pool, ms: number): Promise<void> {
  const options = pool.options as pg.PoolConfig;
  const client = openClient({ ...options, connectionTimeoutMillis: ms, query_timeout: ms });
  try {
    await client.connect();
    await client.query("select 1");
  } finally {
    client.end().catch(() => {});
  }
}

function taskBodies(shared: Shared, served: Instance, logger: Logger, pool: Pool): Record<string, Task> {
  const tasks = buildTasks({ config: served.config, databaseUrl: served.url, database: served.name, db: createDb(pool), pool, logger, mailer: shared.mailer });
  return { ...tasks, ...shared.options.extraTasks };
}

/** One database's instance: migrated, its tasks wrapped, its two runners, its heartbeat. */
async function startInstance(shared: Shared, served: Instance, logger: Logger, how: { waitForDatabase?: boolean }): Promise<RunningInstance> {
  const { options, metrics } = shared;
  const config = served.config;
  // Pool: both runners' slots, their two LISTEN connections, the rescuer and health checks.
  const pool = createPool(served.url, { max: config.concurrency + config.maintenanceConcurrency + 5, applicationName: "pmt-worker" });
  const runners: Runner[] = [];
  let rescuer: Awaited<ReturnType<typeof startRescuer>> | undefined;
  try {
    if (how.waitForDatabase) await waitForDatabase(pool, served.url, logger);
    else await checkConnection(pool, served.url);
    if (options.migrate !== false) {
      const { warnings } = await migrate(pool, logger);
      for (const w of warnings) logger.warn({ check: w.name }, w.detail);
    } else await checkGraphileInternals(pool);
    await applyExportLimits(pool, config.exportLimits, logger);
    const db = createDb(pool);
    await recoverBackups(config.backup.dir, pool, logger);
    const bodies = taskBodies(shared, served, logger, pool);
    const wrap = (name: string, body: Task) => {
      const slots = MAINTENANCE_TASKS.has(name) ? shared.slots.maintenance : shared.slots.exports;
      return withHistory(name, withSlot(slots, served.name, body), { pool, logger, metrics, database: served.name });
    };
    const taskList = Object.fromEntries(Object.entries(bodies).map(([name, body]) => [name, wrap(name, body)]));
    const maintenanceList = Object.fromEntries(Object.entries(taskList).filter(([name]) => MAINTENANCE_TASKS.has(name)));
    const exportList = Object.fromEntries(Object.entries(taskList).filter(([name]) => !MAINTENANCE_TASKS.has(name)));
    const cron = buildCronItems(config, backupTargets(served.url, config.backup), { embedded: options.embedded });
    const exportsRunner = await startRunner({
      pool,
      logger,
      taskList: exportList,
      concurrency: config.concurrency,
      pollIntervalMs: config.pollIntervalMs,
      cron: [],
    });
    runners.push(exportsRunner.runner);
    const maintenance = await startRunner({
      pool,
      logger,
      taskList: maintenanceList,
      concurrency: config.maintenanceConcurrency,
      pollIntervalMs: config.pollIntervalMs,
      cron,
    });
    runners.push(maintenance.runner);
    rescuer = await startRescuer({
      db,
      pool,
      logger,
      workerId: exportsRunner.id,
      otherRunnerIds: [maintenance.id],
      version: VERSION,
      concurrency: config.concurrency + config.maintenanceConcurrency,
      tasks: Object.keys(taskList),
      deadAfterSeconds: config.deadAfterSeconds,
    });
    const started = rescuer;
    let stopping: Promise<void> | undefined;
    return {
      database: served.name,
      workerId: exportsRunner.id,
      maintenanceWorkerId: maintenance.id,
      pool,
      tasks: Object.keys(taskList),
      // Either runner dying is the instance dying.
      promise: Promise.all(runners.map((r) => r.promise)).then(() => undefined),
      stop: () =>
        (stopping ??= (async () => {
          const errors = await Promise.allSettled(runners.map((r) => r.stop()));
          await started.stop().catch(() => {});
          await pool.end().catch(() => {});
          const failed = errors.find((e) => e.status === "rejected");
          if (failed) throw (failed as PromiseRejectedResult).reason;
        })()),
    };
  } catch (error) {
    await Promise.allSettled(runners.map((r) => r.stop()));
    await rescuer?.stop().catch(() => {});
    await pool.end().catch(() => {});
    throw error;
  }
}

/** The body runs holding one of the process's slots, given in turn to each database (FairSlots). */
function withSlot(slots: FairSlots, database: string, body: Task): Task {
  return async (payload, helpers) => {
    const slot = await slots.acquire(database);
    try {
      return await body(payload, helpers);
    } finally {
      slot.release();
    }
  };
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
