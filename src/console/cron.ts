/**
 * When each cron item fires next, asked of graphile-worker's own matcher
 * (ParsedCronItem.match on a UTC timestamp digest, as its cron loop does), one
 * minute at a time up to a year ahead. Pure.
 */
import type { ParsedCronItem } from "graphile-worker";

const MINUTE = 60_000;
const HORIZON_MINUTES = 366 * 24 * 60;

/** The first whole minute after `now` the item matches, or undefined within a year. */
export function nextRun(item: Pick<ParsedCronItem, "match">, now: Date): Date | undefined {
  let t = Math.floor(now.getTime() / MINUTE) * MINUTE + MINUTE;
  for (let i = 0; i < HORIZON_MINUTES; i++, t += MINUTE) {
    const d = new Date(t);
    if (item.match({ min: d.getUTCMinutes(), hour: d.getUTCHours(), date: d.getUTCDate(), month: d.getUTCMonth() + 1, dow: d.getUTCDay() })) return d;
  }
  return undefined;
}
