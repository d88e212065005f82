/**
 * What a role that is not a superuser leaves out of a restore, and why it
 * loses nothing. A PMT database carries PostGIS, an extension only a
 * superuser may create; the DBA creates it once in template1 (deploy/README.md),
 * so every restored database has it, owned by the DBA. The dump's
 * `CREATE EXTENSION IF NOT EXISTS` is then a no-op, but two of its entries
 * would still fail for the worker's role:
 * - COMMENT ON EXTENSION: only the extension's owner may comment; CREATE
 *   EXTENSION already set that very comment from the extension's control file.
 * - the data of an extension's configuration table (spatial_ref_sys): only the
 *   rows a user added are dumped; when there are none, the entry copies nothing.
 *   With rows it is kept, and the restore fails loudly rather than lose them.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
/** Runs pg_restore with these arguments on the dump (a file named last, or the dump on its stdin) and returns its stdout. */
export type DumpReader = (args: string[]) => Promise<string>;

const ENTRY = /^(\d+); \d+ \d+ (.*)$/;

/** Rows in the COPY block(s) pg_restore prints for one TOC entry. */
async function copiedRows(read: DumpReader, entry: string, dir: string): Promise<number> {
  const one = path.join(dir, "entry.list");
  fs.writeFileSync(one, `${entry}\n`, { mode: 0o600 });
  const sql = await read(["--file=-", `--use-list=${one}`]);
  let rows = 0;
  let inCopy = false;
  for (const line of sql.split("\n")) {
    if (inCopy) {
      if (line === "\\.") inCopy = false;
      else rows++;
    } else if (/^COPY .* FROM stdin;$/.test(line)) inCopy = true;
  }
  return rows;
}

export interface RestoreList {
  /** pg_restore's --use-list file, or undefined when nothing is left out. */
  file: string | undefined;
  skipped: string[];
  cleanup(): void;
}

export async function restoreList(read: DumpReader): Promise<RestoreList> {
  const toc = (await read(["--list"])).split("\n");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-restore-list-"));
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    const tables = new Set(toc.flatMap((l) => /^\d+; \d+ \d+ TABLE (?!DATA )(\S+ \S+) /.exec(l)?.slice(1) ?? []));
    const skipped: string[] = [];
    const kept: string[] = [];
    for (const line of toc) {
      const desc = ENTRY.exec(line)?.[2];
      const data = desc && /^TABLE DATA (\S+ \S+) /.exec(desc)?.[1];
      if (desc?.startsWith("COMMENT - EXTENSION ")) skipped.push(desc.trim());
      // Data of a table the dump does not create belongs to an extension's configuration table.
      else if (data && !tables.has(data) && (await copiedRows(read, line, dir)) === 0) skipped.push(`${desc!.replace(/ \S+$/, "")} (no rows)`);
      else kept.push(line);
    }
    if (skipped.length === 0) {
      cleanup();
      return { file: undefined, skipped, cleanup: () => {} };
    }
    const list = path.join(dir, "restore.list");
    fs.writeFileSync(list, kept.join("\n") + "\n", { mode: 0o600 });
    return { file: list, skipped, cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}
