/**
 * The IATI renderer's pure core: escaping, role codes, dates, status,
 * sectors, budgets. (The schema validity of whole files is proven against
 * the official XSD in test/exports and test/compat.)
 */
import { describe, expect, it } from "vitest";
import { iatiActivity, renderIati, roleCode, xmlEscape } from "../../src/exports/iati.js";
import type { ExportRow } from "../../src/exports/rows.js";

const ORG = { ref: "XI-PMT-0000", name: "Portfolio Mapping Tool", type: "80" };

function row(over: Partial<ExportRow> = {}): ExportRow {
  return {
    project_id: 1,
    project_title: "P",
    project_description: null,
    data_group: null,
    project_start_date: null,
    project_end_date: null,
    project_budget: null,
    activity_id: 7,
    iati_identifier: null,
    title: "Clean water",
    description: null,
    sector_names: null,
    sector_codes: null,
    coordinates: null,
    country_names: null,
    funding: null,
    implementing: null,
    start_date: null,
    end_date: null,
    budget: null,
    status_names: null,
    updated_date: "2024-05-01T10:00:00Z",
    sectors: [],
    country_codes: [],
    status_codes: [],
    currency: "USD",
    participants: [],
    locations: [],
    budgets: [],
    ...over,
  };
}

describe("IATI rendering", () => {
  it("escapes markup and drops characters XML cannot carry", () => {
    expect(xmlEscape(`<a href="x">&'`)).toBe("&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
    expect(xmlEscape("ok\u0000\u0008\uFFFE!")).toBe("ok!");
    expect(xmlEscape("tab\tand\nline")).toBe("tab\tand\nline");
    expect(xmlEscape(null)).toBe("");
  });

  it("maps PMT's Organisation Role words to IATI role codes", () => {
    expect(["Funding", "accountable", " Extending ", "IMPLEMENTING", "3", "Donor", null].map(roleCode)).toEqual([
      "1",
      "2",
      "3",
      "4",
      "3",
      undefined,
      undefined,
    ]);
  });

  it("names the reporting org as participant when no participant has a role, and derives status and dates from today", () => {
    const xml = iatiActivity(row({ start_date: "2020-01-01", end_date: "2030-01-01" }), ORG, "2025-01-01");
    expect(xml).toContain("<iati-identifier>XI-PMT-0000-7</iati-identifier>");
    expect(xml).toContain('<participating-org ref="XI-PMT-0000" role="2">');
    expect(xml).toContain('<activity-status code="2"/>');
    expect(xml).toContain('<activity-date type="2" iso-date="2020-01-01"/>');
    expect(xml).toContain('<activity-date type="3" iso-date="2030-01-01"/>');
    const closed = iatiActivity(row({ end_date: "2021-01-01" }), ORG, "2025-01-01");
    expect(closed).toContain('<activity-status code="4"/>');
    expect(closed).toContain('<activity-date type="4" iso-date="2021-01-01"/>');
  });

  it("keeps only DAC sector codes (5 digits: vocabulary 1, 3 digits: 2), ISO countries and complete budgets", () => {
    const xml = iatiActivity(
      row({
        sectors: [
          { code: "14030", name: "Water" },
          { code: "140", name: "Water supply" },
          { code: "X1", name: "Not DAC" },
        ],
        country_codes: ["KE", "kenya", null],
        budgets: [
          { amount: 1500.5, start: "2024-01-01", end: "2024-12-31" },
          { amount: null, start: "2024-01-01", end: "2024-12-31" },
        ],
        participants: [{ name: "Gates", role: "Funding" }],
      }),
      ORG,
      "2025-01-01",
    );
    expect(xml).toContain('<sector vocabulary="1" code="14030">');
    expect(xml).toContain('<sector vocabulary="2" code="140">');
    expect(xml).not.toContain("X1");
    expect(xml.match(/<recipient-country /g)).toHaveLength(1);
    expect(xml.match(/<budget /g)).toHaveLength(1);
    expect(xml).toContain('<value currency="USD" value-date="2024-01-01">1500.5</value>');
    expect(xml).toContain('<participating-org role="1">');
  });

  it("streams a whole document: header, one activity per row, footer", async () => {
    async function* rows() {
      yield row({ activity_id: 1 });
      yield row({ activity_id: 2, title: "A & B" });
    }
    let doc = "";
    for await (const chunk of renderIati(ORG, rows(), new Date("2025-01-01T00:00:00.123Z"))) doc += chunk;
    expect(doc.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<iati-activities version="2.03" generated-datetime="2025-01-01T00:00:00Z">')).toBe(true);
    expect(doc.match(/<iati-activity /g)).toHaveLength(2);
    expect(doc).toContain("A &amp; B");
    expect(doc.endsWith("</iati-activities>\n")).toBe(true);
  });
});
