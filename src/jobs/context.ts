/**
 * What every duty is given, and what a duty declares. A duty is one thing
 * the worker does: its task name (the SQL/queue interface: `add_job` calls
 * and cron rows name it), the payload it accepts, whether it runs in the
 * maintenance slots, its cron entries and its body. worker/ registers them
 * by looping over the list in jobs/index.ts.
 */
import type { CronItem, JobHelpers, Task } from "graphile-worker";
import type pg from "pg";
import type { z } from "zod";
import type { Config } from "../config.js";
import { PermanentJobError } from "../errors.js";
import type { Db } from "../db/schema.js";
import type { Logger } from "../log.js";
import type { Mailer } from "../mail/transport.js";

/** One served database's view of the world, shared by every duty body. */
export interface JobContext {
  config: Config;
  /** The queue database's URL (backups of names in BACKUP_DATABASES are on its server). */
  databaseUrl: string;
  /** The queue database's name (several share one spool). */
  database: string;
  db: Db;
  pool: pg.Pool;
  logger: Logger;
  mailer: Mailer;
}

/** What the crontab is built for: the databases this instance backs up, and whether it runs on the embedded demo. */
export interface CronScope {
  backups: { database: string }[];
  embedded?: boolean;
}

export interface Duty<P = unknown> {
  /** The task identifier: never renamed, `graphile_worker.add_job` calls and existing jobs use it. */
  task: string;
  /**
   * Run by the maintenance runner, in slots of their own (MAINTENANCE_CONCURRENCY),
   * so a backup never waits behind exports; every other task (exports, noop,
   * an embedding application's) runs in WORKER_CONCURRENCY's slots.
   */
  maintenance: boolean;
  payload: z.ZodType<P>;
  /** The error for a payload the schema refuses, saying what was expected (none for a duty that takes no payload). */
  invalidPayload?(): Error;
  /** Its crontab entries, of this task (stable identifiers: existing crontab rows and job keys stay valid). */
  cron?(config: Config, scope: CronScope): Omit<CronItem, "task">[];
  /** The body for one served database; called once per instance, then once per job. */
  body(ctx: JobContext): (payload: P, helpers: JobHelpers) => Promise<void>;
}

/** A duty as worker/ registers it, whatever its payload: its task built for one served database. */
export interface RegisteredDuty extends Pick<Duty, "task" | "maintenance" | "cron"> {
  /** The duty as a graphile-worker task: the payload checked against its schema, then the body. */
  taskFor(ctx: JobContext): Task;
}

/** Declares a duty (typed by its payload schema). */
export function duty<P>(definition: Duty<P>): Duty<P> & RegisteredDuty {
  return {
    ...definition,
    taskFor(ctx) {
      const body = definition.body(ctx);
      return async (payload, helpers) => {
        const parsed = definition.payload.safeParse(payload ?? {});
        if (!parsed.success) throw definition.invalidPayload?.() ?? new PermanentJobError(`${definition.task}: payload refused`);
        await body(parsed.data, helpers);
      };
    },
  };
}
