/** Reads and state changes of pmt_jobs.export_request, one statement each. */
import type pg from "pg";

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

export async function markRendering(pool: pg.Pool, id: number): Promise<void> {
  await pool.query("update pmt_jobs.export_request set status = 'rendering', error = null where id = $1", [id]);
}

export interface Rendered {
  rows: number | null;
  bytes: number;
  sha256: string;
  attachment: string;
  compressed: boolean;
}

/** The file is ready and the SMTP transaction starts: from here a crash leaves the delivery unknown. */
export async function markSending(pool: pg.Pool, id: number, r: Rendered): Promise<void> {
  await pool.query(
    `update pmt_jobs.export_request
     set status = 'sending', rows = $2, bytes = $3, sha256 = $4, attachment = $5, compressed = $6, send_started_at = now()
     where id = $1`,
    [id, r.rows, r.bytes, r.sha256, r.attachment, r.compressed],
  );
}

/** The file went to the offsite store; the mail carries a link to it instead. */
export async function markShared(pool: pg.Pool, id: number, key: string, expiresAt: Date): Promise<void> {
  await pool.query("update pmt_jobs.export_request set offsite_key = $2, link_expires_at = $3 where id = $1", [id, key, expiresAt]);
}

export async function markSent(pool: pg.Pool, id: number, messageId: string | null, response: string, note: string | null): Promise<void> {
  await pool.query(
    `update pmt_jobs.export_request
     set status = 'sent', message_id = coalesce($2, message_id), smtp_response = $3, sent_at = now(), error = $4
     where id = $1`,
    [id, messageId, response, note],
  );
}

/** The send failed before the server accepted it: back to queued (retry) or failed (final). */
export async function markUnsent(pool: pg.Pool, id: number, final: boolean, error: string): Promise<void> {
  await pool.query(
    "update pmt_jobs.export_request set status = $2, error = $3, send_started_at = null where id = $1",
    [id, final ? "failed" : "queued", error],
  );
}

export async function markFailed(pool: pg.Pool, id: number, error: string, rendered?: Partial<Rendered>): Promise<void> {
  await pool.query(
    "update pmt_jobs.export_request set status = 'failed', error = $2, rows = coalesce($3, rows), bytes = coalesce($4, bytes) where id = $1",
    [id, error, rendered?.rows ?? null, rendered?.bytes ?? null],
  );
}

/** The CSV's header fields from the database: PMT's filter text (pmt_jobs.describe_filters), its version and date. */
export async function exportHead(pool: pg.Pool, filters: Record<string, unknown>): Promise<{ filters: string; databaseVersion: string | null; retrievalDate: string }> {
  const { rows } = await pool.query<{ filters: string; databaseVersion: string | null; retrievalDate: string }>(
    `select pmt_jobs.describe_filters($1::jsonb) as filters, pmt_jobs.pmt_version() as "databaseVersion",
            to_char(current_date, 'YYYY-MM-DD') as "retrievalDate"`,
    [JSON.stringify(filters)],
  );
  return rows[0]!;
}
