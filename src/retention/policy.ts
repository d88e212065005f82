/**
 * Grandfather-father-son retention as a pure function of the successful
 * backups of one database and "now".
 *
 * - daily:   the newest backup of each of the newest `daily` days that have one;
 * - weekly:  the newest backup of each of the newest `weekly` ISO weeks that have
 *            one on or after `weeklyDay` (0 = Sunday: "a month of Sundays");
 * - monthly: the newest backup of each of the newest `monthly` months that have
 *            one on or after `monthlyDay` (the first Sunday, or the 1st);
 * - recent:  the newest `minSuccessful`, whatever their age (a safety rail).
 * A backup kept by no tier is pruned. Days, weeks and months are those of the
 * calendar in `timeZone` (default UTC), so a DST change never makes a day
 * hold two dailies or none.
 */
export type Tier = "daily" | "weekly" | "monthly" | "recent";

export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
  /** 0 = Sunday ... 6 = Saturday. */
  weeklyDay: number;
  monthlyDay: "first-sunday" | "1";
  minSuccessful: number;
  timeZone?: string;
}

export interface RetentionCandidate {
  id: number;
  at: Date;
}

export interface RetentionPlan {
  /** id -> the tiers that keep it. */
  keep: Map<number, Tier[]>;
  prune: number[];
}

interface LocalDate {
  year: number;
  month: number; // 1-12
  day: number; // 1-31
  /** 0 = Sunday */
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

export function localDate(at: Date, timeZone = "UTC"): LocalDate {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone, year: "numeric", month: "numeric", day: "numeric" });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  const year = Number(parts.year);
  const month = Number(parts.month);
  const day = Number(parts.day);
  return { year, month, day, weekday: new Date(Date.UTC(year, month - 1, day)).getUTCDay() };
}

/** ISO 8601 week: weeks start on Monday; week 1 holds the year's first Thursday. */
export function isoWeek(d: LocalDate): string {
  const DAY = 86_400_000;
  const thursday = Date.UTC(d.year, d.month - 1, d.day) + (3 - ((d.weekday + 6) % 7)) * DAY;
  const weekYear = new Date(thursday).getUTCFullYear();
  const jan4 = Date.UTC(weekYear, 0, 4);
  const firstThursday = jan4 + (3 - ((new Date(jan4).getUTCDay() + 6) % 7)) * DAY;
  const week = 1 + Math.round((thursday - firstThursday) / (7 * DAY));
  return `${weekYear}-W${String(week).padStart(2, "0")}`;
}

function dayKey(d: LocalDate): string {
  return `${d.year}-${String(d.month).padStart(2, "0")}-${String(d.day).padStart(2, "0")}`;
}

function firstSunday(year: number, month: number): number {
  const weekday = new Date(Date.UTC(year, month - 1, 1)).getUTCDay();
  return 1 + ((7 - weekday) % 7);
}

/**
 * The newest candidate of each of the newest `count` groups (candidates sorted
 * newest first, so a group's first candidate is its newest). A null group
 * means "does not qualify".
 */
function newestPerGroup(sorted: { c: RetentionCandidate; d: LocalDate }[], count: number, group: (d: LocalDate) => string | null): number[] {
  const kept: number[] = [];
  const groups = new Set<string>();
  if (count <= 0) return kept;
  for (const { c, d } of sorted) {
    const key = group(d);
    if (key === null || groups.has(key)) continue;
    groups.add(key);
    kept.push(c.id);
    if (groups.size >= count) break;
  }
  return kept;
}

export function planRetention(candidates: readonly RetentionCandidate[], now: Date, policy: RetentionPolicy): RetentionPlan {
  const tz = policy.timeZone ?? "UTC";
  const sorted = [...candidates].sort((a, b) => b.at.getTime() - a.at.getTime() || b.id - a.id).map((c) => ({ c, d: localDate(c.at, tz) }));
  const keep = new Map<number, Tier[]>();
  const add = (ids: number[], tier: Tier) => {
    for (const id of ids) keep.set(id, [...(keep.get(id) ?? []), tier]);
  };

  // Backups from the future (clock skew) are kept and left out of the tiers.
  const past = sorted.filter(({ c }) => c.at.getTime() <= now.getTime());
  add(
    sorted.filter(({ c }) => c.at.getTime() > now.getTime()).map(({ c }) => c.id),
    "recent",
  );

  add(newestPerGroup(past, policy.daily, dayKey), "daily");
  const weeklyIso = (policy.weeklyDay + 6) % 7;
  add(
    newestPerGroup(past, policy.weekly, (d) => ((d.weekday + 6) % 7 >= weeklyIso ? isoWeek(d) : null)),
    "weekly",
  );
  add(
    newestPerGroup(past, policy.monthly, (d) => {
      const from = policy.monthlyDay === "1" ? 1 : firstSunday(d.year, d.month);
      return d.day >= from ? `${d.year}-${String(d.month).padStart(2, "0")}` : null;
    }),
    "monthly",
  );
  add(
    sorted
      .slice(0, policy.minSuccessful)
      .map(({ c }) => c.id)
      .filter((id) => !keep.has(id)),
    "recent",
  );

  const prune = sorted.map(({ c }) => c.id).filter((id) => !keep.has(id));
  return { keep, prune };
}
