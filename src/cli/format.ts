/**
 * The commands' output: tables and history rows for people (sizes, ages and
 * durations in src/human.ts's one format, colours on a terminal), and JSON for
 * programs (durations in seconds, sizes in bytes, timestamps in ISO 8601).
 */
import { colours, printable, visibleLength, type Colours } from "../colour.js";
import { humanDuration, isoSeconds } from "../human.js";
import type { JobEvent, JobRunRow } from "../history/queries.js";

const PLAIN = colours(false);

/** Milliseconds as src/human.ts's duration ("350 ms", "2.1 s", "1 h 03 min"); "" for null. */
export function formatDuration(ms: number | null): string {
  return ms === null ? "" : humanDuration(ms / 1000);
}

/** The first line of `text`, cut to `max` characters, printable on a terminal. */
export function firstLine(text: string | null | undefined, max = 80): string {
  if (!text) return "";
  const line = printable(text.split("\n")[0]!);
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** One database's part of a command's output, when it covers several: headed by the database's name. */
export function section(database: string, text: string, c: Colours = PLAIN): string {
  return `${c.bold(`== ${database} ==`)}\n${text}\n`;
}

/** Columns padded to their widest cell (colour codes take no room); control characters in a cell are escaped. */
export function table(headers: string[], unsafeRows: string[][], c: Colours = PLAIN): string {
  const rows = unsafeRows.map((r) => r.map((cell) => printable(cell, true)));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ""))));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell + " ".repeat(Math.max(0, widths[i]! - visibleLength(cell))))
      .join("  ")
      .trimEnd();
  return [c.bold(line(headers)), c.dim(line(widths.map((w) => "-".repeat(w)))), ...rows.map(line)].join("\n") + "\n";
}

/** A job or backup status, coloured by what it asks of the reader. */
export function statusColour(status: string, c: Colours): string {
  if (/^(failed|corrupt|FAIL)/i.test(status)) return c.red(status);
  if (/^(abandoned|WARN)/i.test(status)) return c.yellow(status);
  if (/^(succeeded|ok|OK)$/.test(status)) return c.green(status);
  if (status === "running") return c.cyan(status);
  return status;
}

/** With `database` on each row (several databases): a database column first. */
export function formatRuns(rows: (JobRunRow & { database?: string })[], c: Colours = PLAIN): string {
  if (rows.length === 0) return "no job history matches\n";
  const several = rows.some((r) => r.database !== undefined);
  return table(
    [...(several ? ["database"] : []), "id", "job", "task", "attempt", "status", "started", "duration", "error"],
    rows.map((r) => [
      ...(several ? [r.database ?? ""] : []),
      String(r.id),
      String(r.job_id),
      r.task,
      `${r.attempt}/${r.max_attempts}`,
      statusColour(r.status, c),
      isoSeconds(r.started_at),
      formatDuration(r.duration_ms),
      firstLine(r.error),
    ]),
    c,
  );
}

/** `database`: the database the event is of, when watching several. */
export function formatEvent(e: JobEvent, database?: string, c: Colours = PLAIN): string {
  const when = isoSeconds(e.finished_at ?? e.started_at);
  const what =
    e.status === "running"
      ? statusColour("running", c)
      : e.status === "succeeded"
        ? `${statusColour("succeeded", c)} in ${formatDuration(e.duration_ms)}`
        : `${statusColour(e.status, c)} after ${formatDuration(e.duration_ms)}: ${firstLine(e.error ?? e.error_class, 200)}`;
  return `${when}  ${database ? `${printable(database)}  ` : ""}job ${e.job_id}  ${printable(e.task)}  attempt ${e.attempt}/${e.max_attempts}  ${what}\n`;
}

/** node-postgres's parsed `interval` (postgres-interval): its fields, unset ones absent. */
interface PgInterval {
  years?: number;
  months?: number;
  days?: number;
  hours?: number;
  minutes?: number;
  seconds?: number;
  milliseconds?: number;
  toPostgres(): string;
}

export function isInterval(value: unknown): value is PgInterval {
  return typeof value === "object" && value !== null && typeof (value as PgInterval).toPostgres === "function";
}

/** An interval in seconds (a month as 30 days, a year as 365: our intervals hold neither). */
export function intervalSeconds(i: PgInterval): number {
  const days = (i.years ?? 0) * 365 + (i.months ?? 0) * 30 + (i.days ?? 0);
  return days * 86_400 + (i.hours ?? 0) * 3600 + (i.minutes ?? 0) * 60 + (i.seconds ?? 0) + (i.milliseconds ?? 0) / 1000;
}

/**
 * A row as JSON output gives it: a `*_ms` number becomes `*_s` in seconds,
 * an interval `*_s` in seconds (each in its place), a Date an ISO 8601
 * string; one level deep, which is all our rows have.
 */
export function jsonRow<T extends object>(row: T): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(row).map(([key, value]) => {
      if (key.endsWith("_ms") && (typeof value === "number" || value === null)) return [key.replace(/_ms$/, "_s"), value === null ? null : value / 1000];
      if (isInterval(value)) return [`${key}_s`, intervalSeconds(value)];
      return [key, value instanceof Date ? value.toISOString() : value];
    }),
  );
}
