/**
 * status's schedule (src/status/schedule.ts) against the worker's real
 * crontab (worker/crontab.ts, from each duty's declaration): the same
 * entries, firing at the same minutes; and the next-run search.
 */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { nextRun, scheduleOf } from "../../src/status/schedule.js";
import { buildCronItems } from "../../src/worker/crontab.js";

const CONFIGS: { env: Record<string, string>; backups: string[]; embedded: boolean }[] = [
  { env: {}, backups: ["pmt"], embedded: false },
  { env: {}, backups: ["pmt"], embedded: true },
  { env: {}, backups: [], embedded: false },
  {
    env: { OFFSITE_URL: "s3://bucket/pmt", OFFSITE_SYNC_CRON: "5 2 * * 1-5", BACKUP_CRON: "15 */6 * * *", HISTORY_PRUNE_CRON: "0 1 1 * *" },
    backups: ["bmgf", "oam"],
    embedded: false,
  },
  { env: { BACKUP_TEST_RESTORE_CRON: "off" }, backups: ["pmt"], embedded: false },
  { env: { BACKUP_TEST_RESTORE_CRON: "30 5 * * 3" }, backups: ["pmt"], embedded: true },
];

const START = Date.UTC(2026, 10, 29, 0, 0); // a Sunday
const END = START + 8 * 86_400_000;

/** Graphile-worker's digest of a minute. */
function digest(t: number) {
  const d = new Date(t);
  return { min: d.getUTCMinutes(), hour: d.getUTCHours(), date: d.getUTCDate(), month: d.getUTCMonth() + 1, dow: d.getUTCDay() };
}

/** The minutes of the eight days from START at which `matches` fires. */
function firings(matches: (d: ReturnType<typeof digest>) => boolean): number[] {
  const out: number[] = [];
  for (let t = START; t < END; t += 60_000) if (matches(digest(t))) out.push(t);
  return out;
}

/** The same minutes, found by following nextRun from each firing to the next. */
function followed(match: string): number[] {
  const out: number[] = [];
  for (let next = nextRun(match, new Date(START - 1)); next && next.getTime() < END; next = nextRun(match, next)) out.push(next.getTime());
  return out;
}

describe("status's schedule", () => {
  it.each(CONFIGS)("has the worker's crontab entries, firing at the same minutes (%j)", ({ env, backups, embedded }) => {
    const config = loadConfig(env, "/nonexistent/.env");
    const targets = backups.map((database) => ({ database }));
    const ours = scheduleOf(config, targets, embedded);
    const worker = buildCronItems(config, targets, { embedded });
    expect(ours.map((e) => [e.identifier, e.task]).sort()).toEqual(worker.map((i) => [i.identifier, i.task]).sort());
    for (const entry of ours) {
      const item = worker.find((i) => i.identifier === entry.identifier)!;
      expect(followed(entry.match), entry.identifier).toEqual(firings(item.match));
    }
  });
});

describe("next run", () => {
  it("is the first matching minute after now, in UTC", () => {
    const at = (iso: string) => new Date(iso);
    expect(nextRun("0 0 * * *", at("2026-12-01T14:08:16Z"))).toEqual(at("2026-12-02T00:00:00Z"));
    expect(nextRun("*/15 * * * *", at("2026-12-01T14:15:00Z"))).toEqual(at("2026-12-01T14:30:00Z"));
    expect(nextRun("*/15 * * * *", at("2026-12-01T14:14:59Z"))).toEqual(at("2026-12-01T14:15:00Z"));
    // Sundays 04:00; 2026-12-01 is a Tuesday.
    expect(nextRun("0 4 * * 0", at("2026-12-01T14:08:16Z"))).toEqual(at("2026-12-06T04:00:00Z"));
    // Day of month or day of week, as cron does when both are given.
    expect(nextRun("0 12 15 * 5", at("2026-12-01T00:00:00Z"))).toEqual(at("2026-12-04T12:00:00Z"));
    expect(nextRun("0 0 29 2 *", at("2026-12-01T00:00:00Z"))).toEqual(at("2028-02-29T00:00:00Z"));
    expect(nextRun("0 0 31 2 *", at("2026-12-01T00:00:00Z"))).toBeNull();
  });
});
