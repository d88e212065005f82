/**
 * Drop-folder file names, `<email>_<instance>.csv|.xml` (src/exports/drop-name.ts).
 * The folder itself (moves, links, races) is tested in test/exports and test/faults.
 */
import { describe, expect, it } from "vitest";
import { parseDropName } from "../../src/exports/drop-name.js";

describe("parseDropName", () => {
  it("takes the address up to the last underscore", () => {
    expect(parseDropName("ann.lee@example.org_BMGF.csv")).toEqual({ ok: true, recipient: "ann.lee@example.org", instance: "bmgf", format: "csv" });
    expect(parseDropName("ann_lee@example.org_oam.xml")).toEqual({ ok: true, recipient: "ann_lee@example.org", instance: "oam", format: "iati" });
  });

  it("takes a served database's name with an underscore as the instance (PMT_DATABASES=pmt_dev,dev)", () => {
    const served = ["dev", "pmt_dev", "oam"];
    expect(parseDropName("ann@example.org_PMT_DEV.csv", served)).toEqual({ ok: true, recipient: "ann@example.org", instance: "pmt_dev", format: "csv" });
    expect(parseDropName("ann_lee@example.org_dev.csv", served)).toEqual({ ok: true, recipient: "ann_lee@example.org", instance: "dev", format: "csv" });
    // No served name fits: as before, up to the last underscore.
    expect(parseDropName("ann@example.org_bmgf.csv", served)).toEqual({ ok: true, recipient: "ann@example.org", instance: "bmgf", format: "csv" });
    // The name alone is no address.
    expect(parseDropName("_pmt_dev.csv", served).ok).toBe(false);
  });

  it.each([
    ["report.csv", /is not <email>_<instance>\.csv/],
    ["ann@example.org_pmt.exe", /is not <email>_<instance>\.csv/],
    ["$(reboot)@example.org_pmt.csv", /is not a single valid mailbox/],
    ["a b@example.org_pmt.csv", /is not a single valid mailbox/],
    ["ann@example.org;id_pmt.csv", /is not a single valid mailbox/],
    ["ann@b@example.org_pmt.csv", /is not a single valid mailbox/],
    ["..@example.org_pmt.csv", /is not a single valid mailbox/],
  ])("rejects %j", (name, reason) => {
    const parsed = parseDropName(name);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.reason).toMatch(reason);
  });
});
