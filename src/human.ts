/**
 * Sizes, ages and durations as people read them, in one format everywhere
 * (status, jobs, backup and offsite lists, retention plans, doctor, logs on a
 * terminal). Pure functions; JSON output never uses them (it gives bytes and
 * seconds).
 *
 * Sizes are binary (1 KB = 1024 bytes), with the labels PostgreSQL's
 * pg_size_pretty and our own *_MB variables use: "512 B", "1.2 GB", "78.9 GB",
 * "312 GB" (one decimal below 100, none above).
 */

const UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

/** `bytes` as "1.2 GB"; "" for null. */
export function humanBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(Number(bytes))) return "";
  let n = Math.abs(Number(bytes));
  let u = 0;
  while (n >= 1024 && u < UNITS.length - 1) {
    n /= 1024;
    u++;
  }
  // 99.96 rounds to "100.0": shown as "100" like any value of three digits.
  const text = u === 0 ? String(Math.round(n)) : n < 99.95 ? n.toFixed(1) : String(Math.round(n));
  return `${Number(bytes) < 0 ? "-" : ""}${text} ${UNITS[u]}`;
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/**
 * How long something took: "350 ms", "2.1 s", "4 min 05 s", "1 h 03 min",
 * "3 d 04 h". Two units at most: the second is padded so columns line up.
 */
export function humanDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, seconds);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 59.95) return `${s.toFixed(1)} s`;
  const whole = Math.round(s);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${pad2(whole % 60)} s`;
  const minutes = Math.floor(whole / 60);
  if (minutes < 24 * 60) return `${Math.floor(minutes / 60)} h ${pad2(minutes % 60)} min`;
  const hours = Math.floor(minutes / 60);
  return `${Math.floor(hours / 24)} d ${pad2(hours % 24)} h`;
}

/**
 * How long ago, or until, in one unit, rounded down: "13 s", "12 min", "5 h"
 * (hours up to two days, so a backup 25 h old reads as more than a day),
 * "3 d".
 */
export function humanSpan(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

/** "13 s ago", "2 h ago", "3 d ago"; "" for null. */
export function humanAge(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  return `${humanSpan(seconds)} ago`;
}

/** Seconds from `from` (default: now) to `at`, as "in 3 h" or "5 min ago". */
export function humanWhen(at: Date, from: Date = new Date()): string {
  const s = (at.getTime() - from.getTime()) / 1000;
  return s >= 0 ? `in ${humanSpan(s)}` : humanAge(-s);
}

/** A timestamp as ISO 8601 to the second, UTC: "2026-12-01T14:08:16Z". */
export function isoSeconds(at: Date | string): string {
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, "Z");
}
