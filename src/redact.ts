/**
 * Secret removal for everything that leaves the process: logs, history rows,
 * NOTIFY payloads and error text. Pure functions.
 */

// These three are also the SQL form's (pmt_jobs.redact_json, in
// sql/functions/03_redact.sql: history's job payloads), character for
// character; test/rules/agreement.test.ts runs one corpus through both.

/** Object keys whose values are never shown. */
export const SECRET_KEY = /pass(word)?|secret|token|credential|api[_-]?key|access[_-]?key|private[_-]?key|auth|cookie|session/i;

/**
 * user:password@ in any URL-looking text, also where the scheme follows a
 * letter, digit or _ (no \b: `x_postgres://u:pw@h` hides its password too).
 */
export const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):([^@/?#\s]*)@/gi;
/**
 * password=... in libpq keyword/value strings and query strings, also at the
 * end of a longer name (no \b: PGPASSWORD=..., db_password=...).
 */
export const KV_PASSWORD = /(password|passwd|pwd)=([^\s&;]+)/gi;

export const REDACTED = "***";

/** Replaces passwords in URLs and key=value text with ***. */
export function redactText(text: string): string {
  return text.replace(URL_PASSWORD, `$1:${REDACTED}@`).replace(KV_PASSWORD, `$1=${REDACTED}`);
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** A connection string safe to print: the password replaced by ***. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = REDACTED;
    for (const key of [...u.searchParams.keys()]) {
      if (isSecretKey(key)) u.searchParams.set(key, REDACTED);
    }
    return u.toString();
  } catch {
    return redactText(url);
  }
}

const MAX_ERROR = 10_000;

/** An error's message and its causes' as one line of text for history, secrets removed, at most ~10,000 characters. */
export function errorText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let i = 0; current !== undefined && current !== null && i < 5; i++) {
    parts.push(current instanceof Error ? current.message || current.name : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  const text = redactText(parts.filter(Boolean).join(": caused by: ") || "unknown error");
  return text.length > MAX_ERROR ? `${text.slice(0, MAX_ERROR)}… (cut)` : text;
}
