/**
 * File names in the legacy drop folder: `<email>_<instance>.csv|.xml`, as
 * PMT's pmt_filter_csv wrote them for incron. The address is everything up to
 * the last `_`. Pure.
 */
import type { ExportFormat } from "./requests.js";

/** The same rule as pmt_jobs.check_mailbox: one plain mailbox, nothing a shell, header or path could misread. */
export const MAILBOX =
  /^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$/;

export type DropName =
  | { ok: true; recipient: string; instance: string; format: ExportFormat }
  | { ok: false; reason: string };

export function parseDropName(name: string): DropName {
  const m = /^(.+)_([A-Za-z0-9-]+)\.(csv|xml)$/i.exec(name);
  if (!m) {
    return { ok: false, reason: `name ${JSON.stringify(name)} is not <email>_<instance>.csv or <email>_<instance>.xml` };
  }
  const [, recipient, instance, ext] = m as unknown as [string, string, string, string];
  if (recipient.length > 254 || !MAILBOX.test(recipient)) {
    return { ok: false, reason: `${JSON.stringify(recipient)} in ${JSON.stringify(name)} is not a single valid mailbox` };
  }
  const local = recipient.slice(0, recipient.lastIndexOf("@"));
  if (local.length > 64) {
    return { ok: false, reason: `the part before @ in ${JSON.stringify(name)} has ${local.length} characters; at most 64` };
  }
  return { ok: true, recipient, instance: instance.toLowerCase(), format: ext.toLowerCase() === "csv" ? "csv" : "iati" };
}
