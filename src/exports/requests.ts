/**
 * Reads and state changes of pmt_jobs.export_request. Until the send is
 * claimed, every change is fenced: made only while the attempt still holds its
 * graphile-worker job lock, so a worker that resumes after its job was rescued
 * changes nothing and sends nothing. The claim (claimSend) is the point of no
 * return; after it, only the claiming attempt records the SMTP outcome.
 */
import type pg from "pg";
import { inTransaction } from "../db/transaction.js";
import { FencedJobError } from "../errors.js";

export type ExportFormat = "csv" | "iati";
export type ExportStatus = "queued" | "rendering" | "sending" | "sent" | "failed";

export interface ExportRequest {
  id: number;
  format: ExportFormat;
  recipient: string;
  filters: Record<string, unknown>;
  instance: string;
  /** A dropped file to mail as it is, instead of rendering one. */
  spool_file: string | null;
  status: ExportStatus;
  send_started_at: Date | null;
  sent_at: Date | null;
}

export async function getRequest(pool: pg.Pool, id: number): Promise<ExportRequest | undefined> {
  const { rows } = await pool.query<ExportRequest>(
    "select id, format, recipient, filters, instance, spool_file, status, send_started_at, sent_at from pmt_jobs.export_request where id = $1",
    [id],
  );
  return rows[0];
}

export interface Rendered {
  rows: number | null;
  bytes: number;
  sha256: string;
  attachment: string;
  compressed: boolean;
}

/** The graphile-worker attempt that runs an export: its job, attempt number and lock owner (the worker pool's id). */
export interface Attempt {
  jobId: string;
  attempt: number;
  workerId: string;
}

/**
 * Runs `fn` in one transaction that holds the attempt's job row (FOR SHARE)
 * if the attempt still owns it: locked by this worker, at this attempt, its
 * history row still `running`. A rescuer releasing the lock meanwhile waits
 * for the commit; one that came first leaves nothing to hold, and the attempt
 * stops with FencedJobError before `what`. `fn` gets the attempt's job_run id.
 */
async function fenced<T>(pool: pg.Pool, a: Attempt, id: number, what: string, fn: (client: pg.PoolClient, runId: number) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query<{ run_id: string }>(
      `select r.id as run_id
       from graphile_worker._private_jobs j
       join pmt_jobs.job_run r on r.job_id = j.id and r.attempt = j.attempts and r.status = 'running'
       where j.id = $1 and j.attempts = $2 and j.locked_by = $3
       for share of j`,
      [a.jobId, a.attempt, a.workerId],
    );
    if (!rows[0]) {
      throw new FencedJobError(
        `export request ${id}: worker ${a.workerId} no longer holds job ${a.jobId} attempt ${a.attempt} (released after missed heartbeats, or taken over); stopped before ${what}, nothing sent by this attempt`,
      );
    }
    return fn(client, Number(rows[0].run_id));
  });
}

/**
 * Where the request stands for an attempt that holds its job:
 *   finished -> sent or failed already, nothing to do
 *   started  -> an earlier attempt began the SMTP transaction and never recorded
 *               its end: recorded here as sent, delivery unconfirmed
 *   open     -> nobody began sending
 */
export type SendState = "finished" | "started" | "open";

export const UNCONFIRMED_EARLIER =
  "delivery unconfirmed: an earlier attempt began the SMTP transaction and did not record its end (its worker stopped or lost the job); not sent again to avoid a second copy";

/** `ownRunId`: the attempt asking, whose own claim (committed, its reply lost with the connection) leaves the send open to it. */
async function settle(client: pg.PoolClient, id: number, ownRunId?: number): Promise<SendState> {
  const { rows } = await client.query<{ status: ExportStatus; send_started_at: Date | null; send_run_id: string | null }>(
    "select status, send_started_at, send_run_id from pmt_jobs.export_request where id = $1 for update",
    [id],
  );
  const row = rows[0];
  if (!row || row.status === "sent" || row.status === "failed") return "finished";
  if (row.send_started_at === null) return "open";
  if (ownRunId !== undefined && row.status === "sending" && Number(row.send_run_id) === ownRunId) return "open";
  await client.query(`update pmt_jobs.export_request set status = 'sent', smtp_response = 'unknown', sent_at = now(), error = $2 where id = $1`, [
    id,
    UNCONFIRMED_EARLIER,
  ]);
  return "started";
}

/** The attempt begins: unless the request is settled, it is rendering. Fenced. */
export async function beginAttempt(pool: pg.Pool, a: Attempt, id: number): Promise<SendState> {
  return fenced(pool, a, id, "rendering", async (client) => {
    const state = await settle(client, id);
    if (state === "open") await client.query("update pmt_jobs.export_request set status = 'rendering', error = null where id = $1", [id]);
    return state;
  });
}

/**
 * The point of no return: the file is ready and the SMTP transaction starts.
 * Claimed only by an attempt that holds its job and only if no attempt began
 * sending before; from here a crash or a lost lock leaves the delivery
 * unknown, and no later attempt sends. Returns the claiming job_run id, or the
 * state that stopped the claim. The claiming attempt may claim again (its
 * first claim's reply lost with the connection): it has sent nothing yet.
 */
export async function claimSend(pool: pg.Pool, a: Attempt, id: number, r: Rendered): Promise<{ state: SendState; runId: number }> {
  return fenced(pool, a, id, "sending", async (client, runId) => {
    const state = await settle(client, id, runId);
    if (state === "open") {
      await client.query(
        `update pmt_jobs.export_request
         set status = 'sending', rows = $2, bytes = $3, sha256 = $4, attachment = $5, compressed = $6,
             send_started_at = now(), send_run_id = $7
         where id = $1`,
        [id, r.rows, r.bytes, r.sha256, r.attachment, r.compressed, runId],
      );
    }
    return { state, runId };
  });
}

/** The file went to the offsite store; the mail carries a link to it instead. Fenced. */
export async function markShared(pool: pg.Pool, a: Attempt, id: number, key: string, expiresAt: Date): Promise<void> {
  await fenced(pool, a, id, "sharing the file", (client) =>
    client.query("update pmt_jobs.export_request set offsite_key = $2, link_expires_at = $3 where id = $1", [id, key, expiresAt]),
  );
}

/** Nothing to send (no rows matched): failed. Fenced, and never over a settled request. */
export async function markFailed(pool: pg.Pool, a: Attempt, id: number, error: string, rendered?: Partial<Rendered>): Promise<void> {
  await fenced(pool, a, id, "recording the failure", (client) =>
    client.query(
      `update pmt_jobs.export_request set status = 'failed', error = $2, rows = coalesce($3, rows), bytes = coalesce($4, bytes)
       where id = $1 and status not in ('sent', 'failed')`,
      [id, error, rendered?.rows ?? null, rendered?.bytes ?? null],
    ),
  );
}

// The outcome of a claimed send is recorded by the claiming attempt whether or
// not it still holds its job: it alone knows what the server answered.

/** The server accepted it (250), or `note` says why the delivery is unconfirmed. */
export async function markSent(pool: pg.Pool, id: number, runId: number, messageId: string | null, response: string, note: string | null): Promise<void> {
  await pool.query(
    `update pmt_jobs.export_request
     set status = 'sent', message_id = coalesce($3, message_id), smtp_response = $4, sent_at = coalesce(sent_at, now()), error = $5
     where id = $1 and send_run_id = $2`,
    [id, runId, messageId, response, note],
  );
}

/**
 * The server did not take it: failed (final), or the claim is given back so a
 * retry sends (status queued). If another attempt has meanwhile recorded the
 * request as sent, delivery unconfirmed, and finished the job, nothing would
 * retry it: it is recorded as failed with what happened.
 */
export async function markUnsent(pool: pg.Pool, id: number, runId: number, final: boolean, error: string): Promise<void> {
  await pool.query(
    `update pmt_jobs.export_request
     set status = case when not $3::boolean and status = 'sending' then 'queued' else 'failed' end,
         error = case when $3::boolean or status = 'sending' then $4::text
                      else 'not sent: ' || $4::text || '; meanwhile another attempt finished the job (delivery unconfirmed), so nothing retries it: ask for the export again' end,
         sent_at = null, send_started_at = null, send_run_id = case when $3::boolean then send_run_id end
     where id = $1 and send_run_id = $2`,
    [id, runId, final, error],
  );
}

/** A notice was mailed instead of the file (too large): the request failed with `error`. */
export async function markNoticeSent(pool: pg.Pool, id: number, runId: number, error: string): Promise<void> {
  await pool.query("update pmt_jobs.export_request set status = 'failed', error = $3 where id = $1 and send_run_id = $2", [id, runId, error]);
}

/** Whether the attempt still holds its job (a finished task that lost it must not complete the retry's job). */
export async function holdsJob(pool: pg.Pool, a: Attempt): Promise<boolean> {
  const { rowCount } = await pool.query("select 1 from graphile_worker._private_jobs where id = $1 and attempts = $2 and locked_by = $3", [
    a.jobId,
    a.attempt,
    a.workerId,
  ]);
  return Boolean(rowCount);
}

/** The CSV's header fields from the database: PMT's filter text (pmt_jobs.describe_filters), its version and date. */
export async function exportHead(
  pool: pg.Pool,
  filters: Record<string, unknown>,
): Promise<{ filters: string; databaseVersion: string | null; retrievalDate: string }> {
  const { rows } = await pool.query<{ filters: string; databaseVersion: string | null; retrievalDate: string }>(
    `select pmt_jobs.describe_filters($1::jsonb) as filters, pmt_jobs.pmt_version() as "databaseVersion",
            to_char(current_date, 'YYYY-MM-DD') as "retrievalDate"`,
    [JSON.stringify(filters)],
  );
  return rows[0]!;
}
