/**
 * File names in the legacy drop folder: `<email>_<instance>.csv|.xml`, as
 * PMT's pmt_filter_csv wrote them for incron. The address is everything up to
 * the last `_`, unless the name ends in `_<instance>` for one of `instances`
 * (the served databases, whose names may hold a `_`, like pmt_dev): then that
 * instance (the longest that fits). Pure.
 */
import { mailboxProblem } from "../mail/mailbox.js";
import type { ExportFormat } from "./requests.js";

export type DropName = { ok: true; recipient: string; instance: string; format: ExportFormat } | { ok: false; reason: string };

export function parseDropName(name: string, instances: string[] = []): DropName {
  const parts = splitDropName(name, instances);
  if (!parts) {
    return { ok: false, reason: `name ${JSON.stringify(name)} is not <email>_<instance>.csv or <email>_<instance>.xml` };
  }
  const { recipient, instance, ext } = parts;
  const problem = mailboxProblem(recipient);
  if (problem) return { ok: false, reason: `the address in ${JSON.stringify(name)}: ${problem}` };
  return { ok: true, recipient, instance, format: ext.toLowerCase() === "csv" ? "csv" : "iati" };
}

function splitDropName(name: string, instances: string[]): { recipient: string; instance: string; ext: string } | undefined {
  const m = /^(.+)\.(csv|xml)$/i.exec(name);
  if (!m) return undefined;
  const [, stem, ext] = m as unknown as [string, string, string];
  const lower = stem.toLowerCase();
  const known = instances
    .map((i) => i.toLowerCase())
    .filter((i) => i && lower.length > i.length + 1 && lower.endsWith(`_${i}`))
    .sort((a, b) => b.length - a.length)[0];
  if (known) return { recipient: stem.slice(0, stem.length - known.length - 1), instance: known, ext };
  const g = /^(.+)_([A-Za-z0-9-]+)$/.exec(stem);
  return g ? { recipient: g[1]!, instance: g[2]!.toLowerCase(), ext } : undefined;
}
