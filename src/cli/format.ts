/** Plain-text rendering of history rows and events for the terminal. */
import type { JobEvent, JobRunRow } from "../history/queries.js";

export function formatDuration(ms: number | null): string {
  if (ms === null) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

function firstLine(text: string | null, max = 80): string {
  if (!text) return "";
  const line = text.split("\n")[0]!;
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function iso(d: Date | string): string {
  return new Date(d).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** One database's part of a command's output, when it covers several: headed by the database's name. */
export function section(database: string, text: string): string {
  return `== ${database} ==\n${text}\n`;
}

/** Columns padded to their widest cell. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n") + "\n";
}

/** With `database` on each row (several databases): a database column first. */
export function formatRuns(rows: (JobRunRow & { database?: string })[]): string {
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
      r.status,
      iso(r.started_at),
      formatDuration(r.duration_ms),
      firstLine(r.error),
    ]),
  );
}

/** `database`: the database the event is of, when watching several. */
export function formatEvent(e: JobEvent, database?: string): string {
  const when = iso(e.finished_at ?? e.started_at);
  const what =
    e.status === "running"
      ? "running"
      : e.status === "succeeded"
        ? `succeeded in ${formatDuration(e.duration_ms)}`
        : `${e.status} after ${formatDuration(e.duration_ms)}: ${firstLine(e.error ?? e.error_class, 200)}`;
  return `${when}  ${database ? `${database}  ` : ""}job ${e.job_id}  ${e.task}  attempt ${e.attempt}/${e.max_attempts}  ${what}\n`;
}
