/**
 * PMT 2.0's CSV report (pmt_filter_csv), RFC 4180: a filter line, a
 * disclaimer line, then per project its header (8 fields) and data row, an
 * activity header (14 fields) and one row per activity. Every line has 18
 * fields, as PMT's COPY of its 18-column table wrote them. Pure: rows in,
 * lines out.
 */
import type { ExportRow } from "./rows.js";

export const CSV_FIELDS = 18;

export const PROJECT_HEADER = ["Project Data", "PMT ProjectID", "Project Name", "Project Description", "Data Group", "Start Date", "End Date", "Total Budget"];

export const ACTIVITY_HEADER = [
  "Activity Data",
  "PMT ActivityID",
  "Activity Title",
  "Activity Description",
  "Sector - Name",
  "Sector - Code",
  "Latitude Longitude",
  "Country",
  "Funding Organization(s)",
  "Implementing Organization(s)",
  "Start Date",
  "End Date",
  "Total Budget",
  "Activity Status",
];

/**
 * CSV injection (OWASP): a spreadsheet runs a cell that starts with one of
 * these as a formula (=HYPERLINK(...), -2+3+cmd|' /C calc'!A0, @SUM(...)).
 */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * Numbers and lists of numbers: a negative budget (-1500.00), "lat long"
 * coordinates (-12.3 45.6,-13 44.1). Data a spreadsheet shows as it is, and
 * with no letter, parenthesis or | nothing a formula could call; never prefixed.
 */
const NUMBERS = /^[-+]?\d+(\.\d+)?([ ,]+[-+]?\d+(\.\d+)?)*$/;

/** `text` as a cell a spreadsheet shows and never runs: `prefix` (a single quote by default) before a formula start. null: off. */
export function neutralizeFormula(text: string, prefix: string | null): string {
  if (prefix === null || !FORMULA_START.test(text) || NUMBERS.test(text)) return text;
  return prefix + text;
}

export interface CsvOptions {
  /** EXPORT_CSV_FORMULA_PREFIX: put before text cells a spreadsheet would run as a formula; null: off. */
  formulaPrefix: string | null;
}

/** One RFC 4180 record: fields with a comma, quote, CR or LF are quoted, quotes doubled; CRLF ends it. */
export function csvLine(fields: readonly (string | number | null | undefined)[], options: CsvOptions): string {
  const cells = Array.from({ length: CSV_FIELDS }, (_, i) => {
    const value = fields[i];
    const text = value === null || value === undefined ? "" : typeof value === "number" ? String(value) : neutralizeFormula(value, options.formulaPrefix);
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
    "",
    String(row.project_id),
    row.project_title,
    row.project_description,
    row.data_group,
    row.project_start_date,
    row.project_end_date,
    row.project_budget,
  ];
}

function activityRecord(row: ExportRow): (string | null)[] {
  return [
    "",
    String(row.activity_id),
    row.title,
    row.description,
    row.sector_names,
    row.sector_codes,
    row.coordinates,
    row.country_names,
    row.funding,
    row.implementing,
    row.start_date,
    row.end_date,
    row.budget,
    row.status_names,
  ];
}

/** The CSV as lines; a project's header and data rows come before its first activity. */
export async function* renderCsv(head: CsvHead, rows: AsyncIterable<ExportRow>, options: CsvOptions): AsyncGenerator<string> {
  const line = (fields: readonly (string | null)[]) => csvLine(fields, options);
  yield line([filterLine(head)]);
  yield line([head.disclaimer]);
  let project: number | null = null;
  for await (const row of rows) {
    if (row.project_id !== project) {
      project = row.project_id;
      yield line(PROJECT_HEADER);
      yield line(projectRecord(row));
      yield line(ACTIVITY_HEADER);
    }
    yield line(activityRecord(row));
  }
}
