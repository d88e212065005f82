/**
 * PMT's CSV report layout, RFC 4180: a filter line, a disclaimer line, then
 * per project its header and data rows, an activity header and one row per
 * activity. Every line has 18 fields. Pure: rows in, lines out.
 */
import type { ExportRow, Participant } from "./rows.js";

export const CSV_FIELDS = 18;

export const PROJECT_HEADER = [
  "Project Data", "PMT ProjectID", "IATI Identifier", "Project Name", "Project Description", "Data Group",
  "Organization", "Organization Website", "Funding Organizations", "Implementing Organizations",
  "Sector Name", "Sector Code", "Country", "Start Date", "End Date", "Total Amount", "Currency", "Project Website",
];

export const ACTIVITY_HEADER = [
  "Activity Data", "PMT ActivityID", "IATI Identifier", "Activity Title", "Activity Description",
  "Sector Name", "Sector Code", "Activity Status", "Latitude Longitude", "Country", "City Village",
  "Partners", "Partner Role", "Start Date", "End Date", "Amount", "Currency", "Keywords",
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
  /** PMT's version (pmt_version()), or null when the database has none. */
  databaseVersion: string | null;
  retrievalDate: string;
  /** Human-readable filters, e.g. "Sector=Basic health care | DateRange=2010-01-01 to 2012-12-31". */
  filters: string;
  disclaimer: string;
}

/** `PMT 2.0, Database Version 2.0.8.79, Retrieval Date:2026-11-26,Filters: none` */
export function filterLine(head: CsvHead): string {
  return `PMT 2.0, Database Version ${head.databaseVersion ?? "unknown"}, Retrieval Date:${head.retrievalDate},Filters: ${head.filters || "none"}`;
}

function names(participants: Participant[], roleCode: string): string {
  return [...new Set(participants.filter((p) => p.role_code === roleCode).map((p) => p.name))].join(",");
}

function projectRecord(row: ExportRow): (string | null)[] {
  const projectLevel = row.participants.filter((p) => p.level === "project");
  return [
    "", String(row.project_id), row.project_iati_identifier, row.project_title, row.project_description, row.data_group,
    row.accountable, row.accountable_url, names(projectLevel, "1"), names(projectLevel, "4"),
    row.project_sector_name, row.project_sector_code, row.project_country_name, row.project_start_date, row.project_end_date,
    row.project_amount, row.currency, row.project_url,
  ];
}

function activityRecord(row: ExportRow): (string | null)[] {
  const partners = row.participants.filter((p) => p.role_code === "1" || p.role_code === "4");
  return [
    "", String(row.activity_id), row.iati_identifier, row.title, row.description,
    row.sector_name, row.sector_code, row.status_name,
    row.locations.map((l) => `${l.lat} ${l.long}`).join(","), row.country_name, row.city_village,
    [...new Set(partners.map((p) => p.name))].join(","), [...new Set(partners.map((p) => p.role ?? ""))].join(","),
    row.start_date, row.end_date, row.amount, row.currency, row.tags,
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
