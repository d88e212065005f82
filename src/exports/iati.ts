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
// eslint-disable-next-line no-control-regex -- matching control characters is the point
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

/** IATI 2.x OrganisationRole codes for PMT's Organisation Role words (its codelist loader stores words). */
const ROLE_CODES: Record<string, string> = { Funding: "1", Accountable: "2", Extending: "3", Implementing: "4" };

export function roleCode(role: string | null): string | undefined {
  if (!role) return undefined;
  if (/^[1-4]$/.test(role)) return role;
  return ROLE_CODES[role.trim().charAt(0).toUpperCase() + role.trim().slice(1).toLowerCase()];
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
  const code = row.status_codes.find((c) => c !== null && /^[1-6]$/.test(c));
  return code ?? (row.end_date && row.end_date < today ? "4" : "2");
}

export function iatiActivity(row: ExportRow, org: ReportingOrg, today: string): string {
  const identifier = row.iati_identifier || `${org.ref}-${row.activity_id}`;
  let xml = `  <iati-activity last-updated-datetime="${xmlEscape(row.updated_date)}" xml:lang="en" default-currency="${xmlEscape(row.currency)}">\n`;
  xml += `    <iati-identifier>${xmlEscape(identifier)}</iati-identifier>\n`;
  xml += `    <reporting-org ref="${xmlEscape(org.ref)}" type="${xmlEscape(org.type)}">\n${narrative(org.name, "      ")}    </reporting-org>\n`;
  xml += `    <title>\n${narrative(row.title || `Activity ${row.activity_id}`, "      ")}    </title>\n`;
  xml += `    <description type="1">\n${narrative(row.description || row.title || `Activity ${row.activity_id}`, "      ")}    </description>\n`;

  const orgs = row.participants.flatMap((p) => {
    const code = roleCode(p.role);
    return code ? [{ name: p.name, code }] : [];
  });
  if (orgs.length === 0) {
    // IATI requires one; PMT recorded none with a role for this activity.
    xml += `    <participating-org ref="${xmlEscape(org.ref)}" role="2">\n${narrative(org.name, "      ")}    </participating-org>\n`;
  }
  for (const p of orgs) {
    xml += `    <participating-org role="${p.code}">\n${narrative(p.name, "      ")}    </participating-org>\n`;
  }
  xml += `    <activity-status code="${activityStatus(row, today)}"/>\n`;
  xml += activityDates(row, today).join("");
  for (const code of row.country_codes.filter((c): c is string => c !== null && /^[A-Z]{2}$/.test(c))) {
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
  for (const sector of row.sectors) {
    // DAC 5-digit purpose codes are vocabulary 1, 3-digit categories vocabulary 2.
    const vocabulary = /^\d{5}$/.test(sector.code ?? "") ? "1" : /^\d{3}$/.test(sector.code ?? "") ? "2" : undefined;
    if (!vocabulary) continue;
    xml += `    <sector vocabulary="${vocabulary}" code="${sector.code}">\n${narrative(sector.name, "      ")}    </sector>\n`;
  }
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
