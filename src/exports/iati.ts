/**
 * IATI 2.03 activity XML (https://iatistandard.org/en/iati-standard/203/),
 * one <iati-activity> per exported activity, valid against the official
 * schema. Pure: rows in, text out; everything escaped for XML.
 */
import type { ExportRow } from "./rows.js";

export interface ReportingOrg {
  ref: string;
  name: string;
  type: string;
}

// Characters XML 1.0 does not allow at all (C0 controls other than tab, LF, CR; lone surrogates; FFFE/FFFF).
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text or attribute value, escaped; characters XML cannot carry are dropped. */
export function xmlEscape(value: string | number | null | undefined): string {
  return String(value ?? "")
    .replace(INVALID_XML, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

function narrative(text: string | null | undefined, indent: string): string {
  return `${indent}<narrative>${xmlEscape(text)}</narrative>\n`;
}

function split(list: string | null): string[] {
  return list ? list.split(",").map((s) => s.trim()).filter(Boolean) : [];
}

export function iatiHeader(generatedAt: Date): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<iati-activities version="2.03" generated-datetime="${generatedAt.toISOString().replace(/\.\d{3}Z$/, "Z")}">\n`;
}

export const IATI_FOOTER = "</iati-activities>\n";

/** ActivityDateType: 1 planned start, 2 actual start, 3 planned end, 4 actual end. */
function activityDates(row: ExportRow, today: string): string[] {
  const dates: string[] = [];
  if (row.start_date) dates.push(`    <activity-date type="${row.start_date <= today ? 2 : 1}" iso-date="${row.start_date}"/>\n`);
  if (row.end_date) dates.push(`    <activity-date type="${row.end_date <= today ? 4 : 3}" iso-date="${row.end_date}"/>\n`);
  if (dates.length === 0) dates.push(`    <activity-date type="1" iso-date="${row.updated_date.slice(0, 10)}"/>\n`);
  return dates;
}

/** ActivityStatus from PMT's classification, else from the dates: 2 implementation, 4 closed. */
function activityStatus(row: ExportRow, today: string): string {
  const code = split(row.status_code).find((c) => /^[1-6]$/.test(c));
  return code ?? (row.end_date && row.end_date < today ? "4" : "2");
}

export function iatiActivity(row: ExportRow, org: ReportingOrg, today: string): string {
  const identifier = row.iati_identifier || `${org.ref}-${row.activity_id}`;
  let xml = `  <iati-activity last-updated-datetime="${xmlEscape(row.updated_date)}" xml:lang="en" default-currency="${xmlEscape(row.currency)}">\n`;
  xml += `    <iati-identifier>${xmlEscape(identifier)}</iati-identifier>\n`;
  xml += `    <reporting-org ref="${xmlEscape(org.ref)}" type="${xmlEscape(org.type)}">\n${narrative(org.name, "      ")}    </reporting-org>\n`;
  xml += `    <title>\n${narrative(row.title || `Activity ${row.activity_id}`, "      ")}    </title>\n`;
  xml += `    <description type="1">\n${narrative(row.description || row.title || `Activity ${row.activity_id}`, "      ")}    </description>\n`;

  const orgs = row.participants.filter((p) => p.role_code && /^[1-4]$/.test(p.role_code));
  if (orgs.length === 0) {
    xml += `    <participating-org ref="${xmlEscape(org.ref)}" role="2">\n${narrative(org.name, "      ")}    </participating-org>\n`;
  }
  for (const p of orgs) {
    const ref = p.ref ? ` ref="${xmlEscape(p.ref)}"` : "";
    xml += `    <participating-org${ref} role="${p.role_code}">\n${narrative(p.name, "      ")}    </participating-org>\n`;
  }
  xml += `    <activity-status code="${activityStatus(row, today)}"/>\n`;
  xml += activityDates(row, today).join("");
  for (const code of split(row.country_code).filter((c) => /^[A-Z]{2}$/.test(c))) {
    xml += `    <recipient-country code="${code}"/>\n`;
  }
  for (const l of row.locations) {
    xml += "    <location>\n";
    if (l.name) xml += `      <name>\n${narrative(l.name, "        ")}      </name>\n`;
    if (l.lat !== null && l.long !== null) {
      xml += `      <point srsName="http://www.opengis.net/def/crs/EPSG/0/4326">\n        <pos>${Number(l.lat)} ${Number(l.long)}</pos>\n      </point>\n`;
    }
    xml += "    </location>\n";
  }
  const sectorNames = split(row.sector_name);
  split(row.sector_code).forEach((code, i) => {
    if (!/^\d{5}$/.test(code)) return;
    xml += `    <sector vocabulary="1" code="${code}">\n${narrative(sectorNames[i], "      ")}    </sector>\n`;
  });
  for (const b of row.budgets) {
    if (!b.start || !b.end || b.amount === null) continue;
    xml +=
      `    <budget type="1" status="1">\n      <period-start iso-date="${b.start}"/>\n      <period-end iso-date="${b.end}"/>\n` +
      `      <value currency="${xmlEscape(row.currency)}" value-date="${b.start}">${Number(b.amount)}</value>\n    </budget>\n`;
  }
  return `${xml}  </iati-activity>\n`;
}

export async function* renderIati(org: ReportingOrg, rows: AsyncIterable<ExportRow>, now = new Date()): AsyncGenerator<string> {
  const today = now.toISOString().slice(0, 10);
  yield iatiHeader(now);
  for await (const row of rows) yield iatiActivity(row, org, today);
  yield IATI_FOOTER;
}
