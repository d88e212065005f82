/**
 * File names in the legacy drop folder: `<email>_<instance>.csv|.xml`, as
 * PMT's pmt_filter_csv wrote them for incron. The address is everything up to
 * the last `_`. Pure.
 */
import { mailboxProblem } from "../mail/mailbox.js";
import type { ExportFormat } from "./requests.js";

export type DropName =
  | { ok: true; recipient: string; instance: string; format: ExportFormat }
  | { ok: false; reason: string };

export function parseDropName(name: string): DropName {
  const m = /^(.+)_([A-Za-z0-9-]+)\.(csv|xml)$/i.exec(name);
  if (!m) {
    return { ok: false, reason: `name ${JSON.stringify(name)} is not <email>_<instance>.csv or <email>_<instance>.xml` };
  }
  const [, recipient, instance, ext] = m as unknown as [string, string, string, string];
  const problem = mailboxProblem(recipient);
  if (problem) return { ok: false, reason: `the address in ${JSON.stringify(name)}: ${problem}` };
  return { ok: true, recipient, instance: instance.toLowerCase(), format: ext.toLowerCase() === "csv" ? "csv" : "iati" };
}
