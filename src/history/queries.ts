/** Reads of the job history for the CLI (`jobs`, `watch`). */
import { sql } from "kysely";
import type { Db, JobStatus } from "../db/schema.js";

export interface JobRunRow {
  id: number;
  job_id: number;
  task: string;
  attempt: number;
  max_attempts: number;
  queue: string | null;
  status: JobStatus;
  started_at: Date;
  finished_at: Date | null;
  duration_ms: number | null;
  error: string | null;
  worker_id: string;
  payload_summary: Record<string, unknown>;
}

export interface RunFilter {
  task?: string;
  status?: JobStatus;
  limit: number;
}

export async function listRuns(db: Db, filter: RunFilter): Promise<JobRunRow[]> {
  let q = db
    .selectFrom("pmt_jobs.job_run")
    .select([
      "id",
      "job_id",
      "task",
      "attempt",
      "max_attempts",
      "queue",
      "status",
      "started_at",
      "finished_at",
      sql<number | null>`round(extract(epoch from duration) * 1000)::float8`.as("duration_ms"),
      "error",
      "worker_id",
      "payload_summary",
    ])
    .orderBy("started_at", "desc")
    .orderBy("id", "desc")
    .limit(filter.limit);
  if (filter.task) q = q.where("task", "=", filter.task);
  if (filter.status) q = q.where("status", "=", filter.status);
  return (await q.execute()) as JobRunRow[];
}

/**
 * An event as NOTIFY pmt_jobs carries it (pmt_jobs.job_run_event), which any
 * role that may connect can LISTEN to: the error's class only. `error` is the
 * full text, added by readers that may see pmt_jobs.job_run (the worker's role).
 */
export interface JobEvent {
  op: "insert" | "update" | "replay";
  id: number;
  job_id: number;
  task: string;
  attempt: number;
  max_attempts: number;
  queue: string | null;
  status: JobStatus;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  /** "mail refused", "export request 12: abandoned", ...: no addresses, no text (pmt_jobs.error_class). */
  error_class: string | null;
  /** The full error, from job_run; absent in a NOTIFY payload. */
  error?: string | null;
  worker_id: string;
  seq: number;
}

/**
 * The events of one NOTIFY pmt_jobs payload: an object for one event, an
 * array for several written by one statement (pmt_jobs.notify_events).
 * Accepts the payload as text or already parsed. Any role that
 * may connect can NOTIFY pmt_jobs: what is not valid JSON or not shaped like
 * an event is left out, never thrown.
 */
export function parseJobEvents(payload: unknown): JobEvent[] {
  let value: unknown = payload;
  if (typeof payload === "string") {
    try {
      value = JSON.parse(payload);
    } catch {
      return [];
    }
  }
  const events = Array.isArray(value) ? value : [value];
  return events.filter(isJobEvent);
}

const STATUSES: readonly string[] = ["running", "succeeded", "failed", "abandoned"] satisfies JobStatus[];
const whole = (v: unknown): boolean => Number.isSafeInteger(v);
const text = (v: unknown): boolean => typeof v === "string";
const textOrNull = (v: unknown): boolean => v === null || typeof v === "string";

function isJobEvent(e: unknown): e is JobEvent {
  if (typeof e !== "object" || e === null) return false;
  const v = e as Record<string, unknown>;
  return (
    (v.op === "insert" || v.op === "update" || v.op === "replay") &&
    whole(v.id) &&
    whole(v.job_id) &&
    whole(v.attempt) &&
    whole(v.max_attempts) &&
    whole(v.seq) &&
    text(v.task) &&
    text(v.worker_id) &&
    text(v.started_at) &&
    textOrNull(v.queue) &&
    textOrNull(v.finished_at) &&
    textOrNull(v.error_class) &&
    (v.duration_ms === null || typeof v.duration_ms === "number") &&
    STATUSES.includes(v.status as string)
  );
}

/** Events of rows changed at or after `seq` (microseconds since the epoch), oldest first, with their full errors. */
export async function eventsSince(db: Db, seq: number, limit = 10_000): Promise<JobEvent[]> {
  const result = await sql<{ event: JobEvent; error: string | null }>`
    select pmt_jobs.job_run_event(r, 'replay') as event, r.error
    from pmt_jobs.job_run r
    where r.updated_at >= to_timestamp(${seq}::float8 / 1000000)
    order by r.updated_at
    limit ${limit}`.execute(db);
  return result.rows.map((r) => ({ ...r.event, error: r.error }));
}

/** The full error of attempt `id` (a job_run id), for an event whose NOTIFY carried only its class. */
export async function runError(db: Db, id: number): Promise<string | null> {
  const row = await db.selectFrom("pmt_jobs.job_run").select("error").where("id", "=", id).executeTakeFirst();
  return row?.error ?? null;
}
