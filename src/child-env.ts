/**
 * The environment of every process we start (pg_dump, pg_restore, psql,
 * pg_ctl, a tool's --version): only what it needs, never ours. Ours holds
 * SMTP_URL, DATABASE_URL, OFFSITE_URL, AWS_* and whatever else the service
 * file sets; a child could log it, leave it in a core file, or show it to
 * anyone who may read /proc/<pid>/environ of that user. So nothing is
 * inherited but the names below; each caller adds what its tool needs (the
 * libpq variables of one connection: PGHOST, PGPASSWORD, PGSSLMODE...).
 */

/** Where to find programs, the user's files (libpq's ~/.pgpass, ~/.postgresql/root.crt), language, time zone, temp folder. */
const INHERITED = ["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR"] as const;

export function childEnv(extra: Record<string, string> = {}, from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of INHERITED) if (from[name] !== undefined) env[name] = from[name];
  return { ...env, ...extra };
}
