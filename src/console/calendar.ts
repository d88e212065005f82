/**
 * The Backups page's calendar: the last 12 months as weeks (columns) of
 * days (rows, Monday first), each day with its backups' outcome. Pure: the
 * days are UTC calendar days, or those of BACKUP_TIMEZONE (retention's).
 */
import { localDate } from "../retention/policy.js";

export interface CalendarBackup {
  id: number;
  status: string;
  tiers: string[];
  started_at: string;
  restore_test_ok: boolean | null;
  error: string | null;
  bytes: number | null;
}

export type DayState = "none" | "ok" | "failed" | "mixed" | "pruned" | "future";

export interface CalendarDay {
  /** YYYY-MM-DD */
  date: string;
  state: DayState;
  backups: CalendarBackup[];
  /** The union of the tiers that keep the day's backups. */
  tiers: string[];
  /** A test restore of one of the day's backups: true passed, false failed, undefined none. */
  restoreOk?: boolean;
}

const DAY = 86_400_000;

function key(at: Date, timeZone: string): string {
  const d = localDate(at, timeZone);
  return `${d.year}-${String(d.month).padStart(2, "0")}-${String(d.day).padStart(2, "0")}`;
}

/** Weeks of 7 days (null before the first day), from the Monday on or before `now` minus 12 months up to `now`'s week. */
export function backupCalendar(backups: CalendarBackup[], now: Date, timeZone = "UTC"): CalendarDay[][] {
  const byDay = new Map<string, CalendarBackup[]>();
  for (const b of backups) {
    const k = key(new Date(b.started_at), timeZone);
    byDay.set(k, [...(byDay.get(k) ?? []), b]);
  }
  const today = localDate(now, timeZone);
  const end = Date.UTC(today.year, today.month - 1, today.day);
  const start = Date.UTC(today.year - 1, today.month - 1, today.day) + DAY;
  // Back to Monday.
  const first = start - ((new Date(start).getUTCDay() + 6) % 7) * DAY;
  const weeks: CalendarDay[][] = [];
  for (let t = first; t <= end; t += 7 * DAY) {
    const week: CalendarDay[] = [];
    for (let i = 0; i < 7; i++) {
      const at = t + i * DAY;
      const date = new Date(at).toISOString().slice(0, 10);
      const list = at < start ? [] : (byDay.get(date) ?? []);
      week.push(dayOf(date, list, at > end));
    }
    weeks.push(week);
  }
  return weeks;
}

function dayOf(date: string, backups: CalendarBackup[], future: boolean): CalendarDay {
  const good = backups.filter((b) => b.status === "succeeded");
  const bad = backups.filter((b) => b.status === "failed" || b.status === "corrupt");
  const state: DayState = future
    ? "future"
    : good.length && bad.length
      ? "mixed"
      : good.length
        ? "ok"
        : bad.length
          ? "failed"
          : backups.some((b) => b.status === "pruned")
            ? "pruned"
            : "none";
  const tested = backups.filter((b) => b.restore_test_ok !== null);
  return {
    date,
    state,
    backups,
    tiers: [...new Set(backups.flatMap((b) => b.tiers))].sort(),
    restoreOk: tested.length ? tested.every((b) => b.restore_test_ok) : undefined,
  };
}
