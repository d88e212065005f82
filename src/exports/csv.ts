/**
 * PMT 2.0's CSV report (pmt_filter_csv), RFC 4180: a filter line, a
 * disclaimer line, then per project its header (8 fields) and data row, an
 * activity header (14 fields) and one row per activity. Every line has 18
 * fields, as PMT's COPY of its 18-column table wrote them. Pure: rows in,
 * lines out.
 */
import type { ExportRow } from "./rows.js";

export const CSV_FIELDS = 18;

export const PROJECT_HEADER = [
  "Project Data", "PMT ProjectID", "Project Name", "Project Description", "Data Group", "Start Date", "End Date", "Total Budget",
];

export const ACTIVITY_HEADER = [
  "Activity Data", "PMT ActivityID", "Activity Title", "Activity Description", "Sector - Name", "Sector - Code",
  "Latitude Longitude", "Country", "Funding Organization(s)", "Implementing Organization(s)", "Start Date", "End Date",
  "Total Budget", "Activity Status",
];

/** One RFC 4180 record: fields with a comma, quote, CR or LF are quoted, quotes doubled; CRLF ends it. */
export function csvLine(fields: readonly (string | number | null | undefined)[]): string {
  const cells = Array.from({ length: CSV_FIELDS }, (_, i) => {
    const value = fields[i];
    const text = value === null || value === undefined ? "" : String(value);
    return /[",\r\n]/.test(text) || /^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  });
  return `${cells.join(",")}\r\n`;
}

export interface CsvHead {
  /** PMT's version (its pmt_version()), or null when the database has none. */
  databaseVersion: string | null;
  /** The database's current date, YYYY-MM-DD. */
  retrievalDate: string;
  /** PMT's filter text (pmt_jobs.describe_filters): "none", or "Sector=Basic health care | DateRange=2010-01-01 to 2012-12-31 | ". */
  filters: string;
  disclaimer: string;
}

/** `PMT 2.0, Database Version 2.0.8.51, Retrieval Date:2026-11-26,Filters: none` */
export function filterLine(head: CsvHead): string {
  return `PMT 2.0, Database Version ${head.databaseVersion ?? "unknown"}, Retrieval Date:${head.retrievalDate},Filters: ${head.filters || "none"}`;
}

function projectRecord(row: ExportRow): (string | null)[] {
  return [
    "", String(row.project_id), row.project_title, row.project_description, row.data_group,
    row.project_start_date, row.project_end_date, row.project_budget,
  ];
}

function activityRecord(row: ExportRow): (string | null)[] {
  return [
    "", String(row.activity_id), row.title, row.description, row.sector_names, row.sector_codes,
    row.coordinates, row.country_names, row.funding, row.implementing,
    row.start_date, row.end_date, row.budget, row.status_names,
  ];
}

/** The CSV as lines; a project's header and data rows come before its first activity. */
export async function* renderCsv(head: CsvHead, rows: AsyncIterable<ExportRow>): AsyncGenerator<string> {
  yield csvLine([filterLine(head)]);
  yield csvLine([head.disclaimer]);
  let project: number | null = null;
  for await (const row of rows) {
    if (row.project_id !== project) {
      project = row.project_id;
      yield csvLine(PROJECT_HEADER);
      yield csvLine(projectRecord(row));
      yield csvLine(ACTIVITY_HEADER);
    }
    yield csvLine(activityRecord(row));
  }
}
