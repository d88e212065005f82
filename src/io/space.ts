/** Free space, as every check of it counts it: what this user may still write (df's "Avail", not the root reserve). */
import fs from "node:fs";

export function freeBytes(dir: string): number {
  const stat = fs.statfsSync(dir);
  return stat.bavail * stat.bsize;
}
