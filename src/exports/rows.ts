/**
 * The rows an export renders (pmt_jobs.export_rows), streamed from PostgreSQL
 * with a cursor so memory stays flat however many activities match.
 */
import type pg from "pg";
import Cursor from "pg-cursor";

export interface Participant {
  name: string;
  ref: string | null;
  url: string | null;
  role: string | null;
  role_code: string | null;
  /** Participation in the project as a whole, or in this activity. */
  level: "project" | "activity";
}

export interface ExportRow {
  project_id: number;
  project_iati_identifier: string | null;
  project_title: string | null;
  project_description: string | null;
  project_url: string | null;
  project_start_date: string | null;
  project_end_date: string | null;
  project_amount: string | null;
  project_sector_name: string | null;
  project_sector_code: string | null;
  project_country_name: string | null;
  data_group: string | null;
  accountable: string | null;
  accountable_url: string | null;
  activity_id: number;
  iati_identifier: string | null;
  title: string | null;
  description: string | null;
  sector_name: string | null;
  sector_code: string | null;
  status_name: string | null;
  status_code: string | null;
  country_name: string | null;
  country_code: string | null;
  city_village: string | null;
  start_date: string | null;
  end_date: string | null;
  amount: string | null;
  currency: string;
  tags: string | null;
  updated_date: string;
  participants: Participant[];
  locations: { name: string | null; lat: number | null; long: number | null }[];
  budgets: { amount: number; start: string | null; end: string | null }[];
}

const BATCH = 500;

/**
 * Yields the export's rows in project, activity order. Dates come as text
 * (YYYY-MM-DD) and amounts as exact decimal text.
 */
export async function* exportRows(pool: pg.Pool, filters: unknown): AsyncGenerator<ExportRow> {
  const client = await pool.connect();
  try {
    await client.query("begin read only");
    const cursor = client.query(
      new Cursor<ExportRow>(
        `select r.*, r.project_start_date::text as project_start_date, r.project_end_date::text as project_end_date,
                r.start_date::text as start_date, r.end_date::text as end_date,
                r.project_amount::text as project_amount, r.amount::text as amount,
                to_char(r.updated_date at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as updated_date
         from pmt_jobs.export_rows($1::jsonb) r`,
        [JSON.stringify(filters)],
      ),
    );
    try {
      for (;;) {
        const rows = await cursor.read(BATCH);
        if (rows.length === 0) break;
        yield* rows;
      }
    } finally {
      await cursor.close();
    }
    await client.query("commit");
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
