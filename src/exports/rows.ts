/**
 * The rows an export renders (pmt_jobs.export_rows), streamed from PostgreSQL
 * with a cursor so memory stays flat however many activities match.
 */
import type pg from "pg";
import Cursor from "pg-cursor";

/** An activity-level participation with its Organisation Role code (PMT's word, or IATI 2.x's 1-4). */
export interface Participant {
  name: string | null;
  role: string | null;
}

/**
 * One exported activity with its project's fields. The text fields are
 * PMT's CSV values (pmt_filter_csv: lists comma-joined); the arrays feed the
 * IATI XML.
 */
export interface ExportRow {
  project_id: number;
  project_title: string | null;
  project_description: string | null;
  data_group: string | null;
  project_start_date: string | null;
  project_end_date: string | null;
  project_budget: string | null;
  activity_id: number;
  iati_identifier: string | null;
  title: string | null;
  description: string | null;
  sector_names: string | null;
  sector_codes: string | null;
  coordinates: string | null;
  country_names: string | null;
  funding: string | null;
  implementing: string | null;
  start_date: string | null;
  end_date: string | null;
  budget: string | null;
  status_names: string | null;
  updated_date: string;
  sectors: { code: string | null; name: string | null }[];
  country_codes: (string | null)[];
  status_codes: (string | null)[];
  currency: string;
  participants: Participant[];
  locations: { name: string | null; lat: number | null; long: number | null }[];
  budgets: { amount: number | null; start: string | null; end: string | null }[];
}

const BATCH = 500;

/**
 * Yields the export's rows in project, activity order. Dates come as text
 * (YYYY-MM-DD) and amounts as exact decimal text; the IATI-only lists are
 * filled with `iati`, else empty.
 */
export async function* exportRows(pool: pg.Pool, filters: unknown, options: { iati?: boolean } = {}): AsyncGenerator<ExportRow> {
  const client = await pool.connect();
  let failure: Error | undefined;
  let committed = false;
  try {
    await client.query("begin read only");
    const cursor = client.query(
      new Cursor<ExportRow>(
        `select r.*, to_char(r.project_start_date, 'YYYY-MM-DD') as project_start_date, to_char(r.project_end_date, 'YYYY-MM-DD') as project_end_date,
                to_char(r.start_date, 'YYYY-MM-DD') as start_date, to_char(r.end_date, 'YYYY-MM-DD') as end_date,
                r.project_budget::text as project_budget, r.budget::text as budget,
                to_char(r.updated_date, 'YYYY-MM-DD"T"HH24:MI:SS') as updated_date
         from pmt_jobs.export_rows($1::jsonb, $2) r`,
        [JSON.stringify(filters), options.iati === true],
      ),
    );
    let readFailed = false;
    try {
      for (;;) {
        const rows = await cursor.read(BATCH).catch((error: unknown) => {
          readFailed = true;
          throw error;
        });
        if (rows.length === 0) break;
        yield* rows;
      }
    } finally {
      // After a failed read (a lost connection) close() would wait for ever for
      // a server that is gone; the client is discarded below instead.
      if (!readFailed && (cursor as unknown as { state?: string }).state !== "error") await closeCursor(cursor, client);
    }
    await client.query("commit");
    committed = true;
  } catch (error) {
    failure = error as Error;
    await client.query("rollback").catch(() => {});
    throw error;
  } finally {
    // A reader that stops early (the spool's disk full, a render error) ends
    // the generator with return(): neither the commit nor the catch above
    // runs, and the client must not go back to the pool inside its READ ONLY
    // transaction (the next caller's writes would fail with 25006).
    if (!committed && !failure) await client.query("rollback").catch((error: Error) => (failure = error));
    client.release(failure); // a failed client is discarded, not pooled
  }
}

/**
 * cursor.close() waits for the server's ReadyForQuery, which never comes if
 * the connection is lost meanwhile: the connection's end settles it too.
 */
function closeCursor(cursor: Cursor<ExportRow>, client: pg.PoolClient): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const gone = () => reject(new Error("Connection terminated while closing the export's cursor"));
    client.once("end", gone);
    client.once("error", gone);
    cursor
      .close()
      .then(resolve, reject)
      .finally(() => {
        client.off("end", gone);
        client.off("error", gone);
      });
  });
}
