/** The fault-injection summary table (no vitest imports: the global setup prints it). */
import fs from "node:fs";

export interface FaultRow {
  scenario: string;
  fault: string;
  outcome: string;
  /** Jobs, mails, backups or copies lost or doubled: the assertions made it 0. */
  lost: number;
}

export function readFaults(file: string): FaultRow[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as FaultRow);
}

export function faultTable(rows: FaultRow[]): string {
  const lines = [["scenario", "injected fault", "outcome", "data lost"], ...rows.map((r) => [r.scenario, r.fault, r.outcome, String(r.lost)])];
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return (
    lines
      .map((l) =>
        l
          .map((c, i) => c.padEnd(widths[i]!))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}
