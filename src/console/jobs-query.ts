/**
 * The Jobs page's reads of pmt_jobs.job_run: one page of attempts, newest
 * first, filtered by task, status and time, keyset-paginated on
 * (started_at, id) so any page costs the same with a million rows (the
 * index job_run_started_at_idx, job_run_task_started_at_idx with a task, and
 * job_run_failures_idx for failed and abandoned: migrations/0017_console.sql,
 * job_run_running_idx for running).
 * Cursors carry started_at to the microsecond, as text.
 */
import type { JobStatus } from "../db/schema.js";
import { UserError } from "../errors.js";
import type { JobRunRow } from "../history/queries.js";
import type { Query } from "./read.js";

export const JOB_STATUSES = ["running", "succeeded", "failed", "abandoned"] as const satisfies readonly JobStatus[];
export const PAGE_SIZE = 50;

export interface JobsFilter {
  task?: string;
  status?: JobStatus;
  /** started_at >= from */
  from?: Date;
  /** started_at < to */
  to?: Date;
  /** Older than this cursor (the next page). */
  before?: Cursor;
  /** Newer than this cursor (the previous page). */
  after?: Cursor;
  limit?: number;
}

export interface Cursor {
  /** started_at to the microsecond, ISO 8601 UTC. */
  at: string;
  id: number;
}

/** A history row as the page gets it: the times as text (started_at to the microsecond, ISO 8601 UTC: the cursor's). */
export type JobRow = Omit<JobRunRow, "started_at" | "finished_at"> & {
  started_at: string;
  finished_at: string | null;
  /** updated_at in µs: the live events' seq, so the page ignores an event older than the row it shows. */
  seq: number;
};

export interface JobsPage {
  rows: JobRow[];
  /** Cursor of an older page, if there is one. */
  older?: Cursor;
  /** Cursor of a newer page, when this one is not the newest. */
  newer?: Cursor;
}

const CURSOR = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z)~(\d{1,18})$/;

/** A cursor from the page's link; undefined when absent; a UserError (400) naming the parameter when malformed. */
export function parseCursor(text: string | null | undefined, name = "cursor"): Cursor | undefined {
  if (!text) return undefined;
  const m = CURSOR.exec(text);
  // The shape alone lets 2026-13-45T99:99:99Z through, which PostgreSQL would refuse with a 500.
  const at = m && new Date(m[1]!);
  // Year 0000 parses in JavaScript; PostgreSQL has no year 0.
  if (!m || !at || Number.isNaN(at.getTime()) || at.toISOString().slice(0, 19) !== m[1]!.slice(0, 19) || at.getUTCFullYear() < 1) {
    throw new UserError(
      `${name}: ${JSON.stringify(text.slice(0, 60))} is not a page cursor: expected <time>~<id> as the page's links give, e.g. 2026-12-01T13:00:00.123456Z~42`,
    );
  }
  return { at: m[1]!, id: Number(m[2]) };
}

export function formatCursor(c: Cursor): string {
  return `${c.at}~${c.id}`;
}

const ISO_US = `to_char(started_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export async function jobsPage(q: Query, filter: JobsFilter): Promise<JobsPage> {
  const limit = filter.limit ?? PAGE_SIZE;
  const where: string[] = [];
  const values: unknown[] = [];
  const param = (v: unknown) => `$${values.push(v)}`;
  if (filter.task) where.push(`task = ${param(filter.task)}`);
  if (filter.status) where.push(`status = ${param(filter.status)}`);
  if (filter.from) where.push(`started_at >= ${param(filter.from)}`);
  if (filter.to) where.push(`started_at < ${param(filter.to)}`);
  const backwards = !filter.before && !!filter.after;
  const cursor = filter.before ?? filter.after;
  if (cursor) where.push(`(started_at, id) ${backwards ? ">" : "<"} (${param(cursor.at)}::timestamptz, ${param(cursor.id)}::bigint)`);
  // Qualified: the output columns started_at (text) and id (float8) would otherwise be what ORDER BY sorts, by a full sort.
  const order = backwards ? "r.started_at asc, r.id asc" : "r.started_at desc, r.id desc";
  const rows = await q<JobRow>(
    `select id::float8 as id, job_id::float8 as job_id, task, attempt, max_attempts, queue, status,
            ${ISO_US} as started_at, finished_at::text as finished_at,
            round(extract(epoch from duration) * 1000)::float8 as duration_ms, error, worker_id, payload_summary,
            (extract(epoch from updated_at) * 1000000)::bigint::float8 as seq
     from pmt_jobs.job_run r ${where.length ? `where ${where.join(" and ")}` : ""}
     order by ${order} limit ${param(limit + 1)}`,
    values,
  );
  const more = rows.length > limit;
  const page = rows.slice(0, limit);
  if (backwards) page.reverse();
  const first = page[0];
  const last = page[page.length - 1];
  const at = (r: JobRow): Cursor => ({ at: r.started_at, id: r.id });
  return {
    rows: page,
    older: last && (backwards || more) ? at(last) : undefined,
    newer: first && (backwards ? more : !!cursor) ? at(first) : undefined,
  };
}

/** The tasks in the history, by a skip scan of job_run_task_started_at_idx (a distinct over a million rows would read them all). */
export async function historyTasks(q: Query): Promise<string[]> {
  const rows = await q<{ task: string }>(
    `with recursive t(task) as (
       (select task from pmt_jobs.job_run order by task limit 1)
       union all
       select (select r.task from pmt_jobs.job_run r where r.task > t.task order by r.task limit 1) from t where t.task is not null
     )
     select task from t where task is not null limit 200`,
  );
  return rows.map((r) => r.task);
}
