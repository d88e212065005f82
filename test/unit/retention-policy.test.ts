import { describe, expect, it } from "vitest";
import { isoWeek, localDate, planRetention, type RetentionCandidate, type RetentionPolicy } from "../../src/retention/policy.js";

const POLICY: RetentionPolicy = { daily: 7, weekly: 5, monthly: 12, weeklyDay: 0, monthlyDay: "first-sunday", minSuccessful: 3 };
const DAY = 86_400_000;

/** One backup a day at `hour` UTC for `days` days ending at `end`, ids in time order. */
function daily(end: Date, days: number, hour = 0, skip: (i: number) => boolean = () => false): RetentionCandidate[] {
  const out: RetentionCandidate[] = [];
  for (let i = days - 1; i >= 0; i--) {
    if (skip(i)) continue;
    const at = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth(), end.getUTCDate(), hour, 3) - i * DAY);
    out.push({ id: out.length + 1, at });
  }
  return out;
}

function tiers(plan: ReturnType<typeof planRetention>) {
  const count = { daily: 0, weekly: 0, monthly: 0, recent: 0 };
  for (const list of plan.keep.values()) for (const t of list) count[t]++;
  return count;
}

describe("isoWeek", () => {
  it.each([
    ["2026-01-01", "2026-W01"], // Thursday
    ["2027-01-01", "2026-W53"], // Friday: still the last week of 2026
    ["2024-12-30", "2025-W01"], // Monday
    ["2021-01-03", "2020-W53"], // Sunday
    ["2026-11-29", "2026-W48"], // Sunday
    ["2026-11-30", "2026-W49"], // Monday
  ])("%s is %s", (date, week) => {
    expect(isoWeek(localDate(new Date(`${date}T12:00:00Z`)))).toBe(week);
  });
});

describe("planRetention", () => {
  it("keeps exactly 7 daily, 5 weekly and 12 monthly over 400 days of daily runs, overlaps counted once", () => {
    const now = new Date("2026-11-26T00:30:00Z");
    const backups = daily(now, 400);
    const plan = planRetention(backups, now, POLICY);
    expect(tiers(plan)).toEqual({ daily: 7, weekly: 5, monthly: 12, recent: 0 });
    expect(plan.keep.size + plan.prune.length).toBe(400);
    // Dailies: the last 7 days. Weeklies: Sundays. Monthlies: first Sundays or later.
    for (const [id, list] of plan.keep) {
      const at = backups[id - 1]!.at;
      if (list.includes("weekly")) expect(at.getUTCDay()).toBe(0);
      if (list.includes("daily")) expect(now.getTime() - at.getTime()).toBeLessThan(7 * DAY);
    }
    const kinds = [...plan.keep.values()];
    const union = kinds.length;
    const overlaps = kinds.filter((l) => l.length > 1).reduce((n, l) => n + l.length - 1, 0);
    expect(union).toBe(7 + 5 + 12 - overlaps);
    expect(plan.prune.length).toBe(400 - union);
  });

  it("is stable: applying it again to what it kept prunes nothing", () => {
    const now = new Date("2026-11-26T00:30:00Z");
    const backups = daily(now, 400);
    const first = planRetention(backups, now, POLICY);
    const kept = backups.filter((b) => first.keep.has(b.id));
    expect(planRetention(kept, now, POLICY).prune).toEqual([]);
  });

  it("simulated day by day for two years (with missed and doubled runs), the kept set never exceeds the tiers and never empties", () => {
    const policy = { ...POLICY, monthlyDay: "1" as const };
    let catalog: RetentionCandidate[] = [];
    let id = 0;
    const start = Date.UTC(2025, 0, 1);
    for (let day = 0; day < 730; day++) {
      const missed = day % 37 === 5 || (day >= 300 && day < 310);
      const runs = missed ? 0 : day % 23 === 0 ? 2 : 1;
      for (let r = 0; r < runs; r++) catalog.push({ id: ++id, at: new Date(start + day * DAY + r * 3600_000) });
      const now = new Date(start + day * DAY + 6 * 3600_000);
      if (runs === 0) continue; // pruning runs only after a successful backup
      const plan = planRetention(catalog, now, policy);
      catalog = catalog.filter((b) => plan.keep.has(b.id));
      expect(catalog.length).toBeGreaterThanOrEqual(1);
      expect(catalog.length).toBeLessThanOrEqual(7 + 5 + 12 + 3);
      // The newest backup is always kept.
      expect(plan.keep.has(id)).toBe(true);
    }
    // After the ten-day gap and everything else, the newest 12 months still have one each.
    const months = new Set(catalog.map((b) => b.at.toISOString().slice(0, 7)));
    expect(months.size).toBeGreaterThanOrEqual(12);
  });

  it("keeps the newest backup of a day that has two", () => {
    const now = new Date("2026-03-10T12:00:00Z");
    const plan = planRetention(
      [
        { id: 1, at: new Date("2026-03-10T00:00:00Z") },
        { id: 2, at: new Date("2026-03-10T06:00:00Z") },
      ],
      now,
      { ...POLICY, minSuccessful: 1 },
    );
    expect(plan.keep.get(2)).toContain("daily");
    expect(plan.keep.has(1)).toBe(false);
  });

  it("follows the local calendar across a DST change", () => {
    // New York springs forward on 2026-03-08: 00:30 local is 05:30Z before and 04:30Z after.
    const backups = [
      { id: 1, at: new Date("2026-03-07T05:30:00Z") },
      { id: 2, at: new Date("2026-03-08T05:30:00Z") },
      { id: 3, at: new Date("2026-03-09T04:30:00Z") },
      { id: 4, at: new Date("2026-03-10T04:30:00Z") },
    ];
    const plan = planRetention(backups, new Date("2026-03-10T12:00:00Z"), {
      ...POLICY,
      daily: 4,
      weekly: 0,
      monthly: 0,
      minSuccessful: 1,
      timeZone: "America/New_York",
    });
    expect([...plan.keep.keys()].sort()).toEqual([1, 2, 3, 4]);
    expect(localDate(backups[2]!.at, "America/New_York")).toMatchObject({ month: 3, day: 9 });
  });

  it("counts month ends in the right month and respects the first-Sunday rule", () => {
    // May 2026: the 1st is a Friday, the first Sunday the 3rd.
    const plan = planRetention(
      [
        { id: 1, at: new Date("2026-04-30T23:59:00Z") },
        { id: 2, at: new Date("2026-05-02T00:00:00Z") },
      ],
      new Date("2026-05-02T12:00:00Z"),
      { daily: 0, weekly: 0, monthly: 12, weeklyDay: 0, monthlyDay: "first-sunday", minSuccessful: 1 },
    );
    // May has no backup on or after its first Sunday yet; April's last one counts for April
    // (April's first Sunday was the 5th).
    expect(plan.keep.get(1)).toEqual(["monthly"]);
    expect(plan.keep.get(2)).toEqual(["recent"]);
  });

  it("never prunes the newest RETAIN_MIN_SUCCESSFUL, whatever their age, and never the whole set", () => {
    const old = [1, 2, 3, 4].map((id) => ({ id, at: new Date(Date.UTC(2020, 0, id)) }));
    const plan = planRetention(old, new Date("2026-01-01T00:00:00Z"), { ...POLICY, daily: 0, weekly: 0, monthly: 0 });
    expect([...plan.keep.keys()].sort()).toEqual([2, 3, 4]);
    expect(plan.prune).toEqual([1]);
  });

  it("keeps backups dated in the future (clock skew) and does not let them push out real ones", () => {
    const now = new Date("2026-01-10T00:00:00Z");
    const backups = [...daily(now, 10), { id: 99, at: new Date("2026-02-01T00:00:00Z") }];
    const plan = planRetention(backups, now, { ...POLICY, daily: 3, weekly: 0, monthly: 0, minSuccessful: 1 });
    expect(plan.keep.get(99)).toEqual(["recent"]);
    expect([...plan.keep.entries()].filter(([, t]) => t.includes("daily"))).toHaveLength(3);
  });
});
