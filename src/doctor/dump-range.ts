/**
 * Which PostgreSQL servers this machine can back up: pg_dump N dumps servers
 * 9.2 to N, so the newest pg_dump found sets the range. Said up front because
 * a server upgraded past it fails only at the next backup (in a container,
 * the image's client is fixed when it is built).
 */
import type { Config } from "../config.js";
import { findTools, searchDirs } from "../pgtools/tools.js";
import type { Check } from "./checks.js";

/** pg_dump's oldest supported server, the same for every pg_dump since 15. */
const OLDEST_SERVER = "9.2";

export function dumpRangeCheck(config: Config): Check {
  const dirs = searchDirs(config.backup.pgBinDir);
  const newest = findTools("pg_dump", dirs).sort((a, b) => b.major - a.major)[0];
  if (!newest) {
    return {
      verdict: "FAIL",
      name: "backup range",
      detail: `no pg_dump in ${config.backup.pgBinDir ? `PG_BIN_DIR (${config.backup.pgBinDir})` : "PATH or /usr/lib/postgresql/*/bin"}: install postgresql-client-<server major> or set PG_BIN_DIR`,
    };
  }
  return { verdict: "OK", name: "backup range", detail: `pg_dump ${newest.version} (${newest.path}) backs up PostgreSQL ${OLDEST_SERVER} to ${newest.major}` };
}
