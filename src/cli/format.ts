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

/** Columns padded to their widest cell. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n") + "\n";
}

export function formatRuns(rows: JobRunRow[]): string {
  if (rows.length === 0) return "no job history matches\n";
  return table(
    ["id", "job", "task", "attempt", "status", "started", "duration", "error"],
    rows.map((r) => [
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

export function formatEvent(e: JobEvent): string {
  const when = iso(e.finished_at ?? e.started_at);
  const what =
    e.status === "running"
      ? "running"
      : e.status === "succeeded"
        ? `succeeded in ${formatDuration(e.duration_ms)}`
        : `${e.status} after ${formatDuration(e.duration_ms)}: ${firstLine(e.error ?? e.error_class, 200)}`;
  return `${when}  job ${e.job_id}  ${e.task}  attempt ${e.attempt}/${e.max_attempts}  ${what}\n`;
}
