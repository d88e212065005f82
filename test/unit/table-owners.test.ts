/**
 * One owner per table: every write of a pmt_jobs table in src/ (raw SQL or
 * kysely) is in the one module that owns it, so a table's rules (what a
 * status may become, which columns go together) live in one place. The
 * database's own functions (sql/functions) write too; they are one place of
 * their own. A new table, or a write elsewhere, fails here naming it.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src");

const OWNERS: Record<string, string> = {
  backup: "backups/catalog.ts",
  backup_copy: "offsite/copies.ts",
  export_request: "exports/requests.ts",
  export_limits: "exports/limits.ts",
  export_limit_key: "exports/limits.ts",
  job_run: "history/runs.ts",
  worker: "worker/rescuer.ts",
  alert: "alerts/alerts.ts",
};

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const file = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(file) : e.name.endsWith(".ts") ? [file] : [];
  });
}

const WRITE = [/\b(?:insert\s+into|update|delete\s+from)\s+pmt_jobs\.(\w+)/gi, /\b(?:insertInto|updateTable|deleteFrom)\(\s*["']pmt_jobs\.(\w+)["']/g];

/** [table, file] for every write in src/. */
function writes(): [string, string][] {
  return sourceFiles(SRC).flatMap((file) => {
    const text = fs.readFileSync(file, "utf8");
    return WRITE.flatMap((re) => [...text.matchAll(re)].map((m) => [m[1]!.toLowerCase(), path.relative(SRC, file)] as [string, string]));
  });
}

describe("table owners", () => {
  it("finds the writes it checks (the scan is not blind)", () => {
    const tables = new Set(writes().map(([t]) => t));
    for (const table of ["backup", "backup_copy", "export_request", "job_run", "worker", "alert"]) expect(tables).toContain(table);
  });

  it("every write of a pmt_jobs table is in its owner module", () => {
    const strays = writes()
      .filter(([table, file]) => OWNERS[table] !== file)
      .map(([table, file]) =>
        OWNERS[table] ? `${file} writes pmt_jobs.${table}, owned by ${OWNERS[table]}` : `${file} writes pmt_jobs.${table}, which has no owner here`,
      );
    expect(strays).toEqual([]);
  });
});
