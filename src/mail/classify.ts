/**
 * What an SMTP failure means for a retry. Pure.
 *
 * Permanent: the server refused this recipient or this message with a 5xx
 * (550 no such user, 552 too large, 553 bad address): sending again cannot help.
 * Transient: everything else (connection refused or reset, timeouts, 4xx
 * greylisting or full queues, and authentication failures, which an operator
 * fixes in the configuration): retried with backoff.
 */
export interface SmtpFailure {
  permanent: boolean;
  reason: string;
}

interface NodemailerError {
  code?: string;
  responseCode?: number;
  response?: string;
  message?: string;
}

export function classifySmtpError(error: unknown): SmtpFailure {
  const e = (error ?? {}) as NodemailerError;
  const status = e.responseCode;
  const detail = (e.response || e.message || String(error)).trim();
  if (status !== undefined && status >= 500 && status < 600 && e.code !== "EAUTH") {
    return { permanent: true, reason: `the mail server refused it permanently (${detail})` };
  }
  if (status !== undefined && status >= 400 && status < 500) {
    return { permanent: false, reason: `the mail server deferred it (${detail})` };
  }
  if (e.code === "EAUTH") return { permanent: false, reason: `the mail server rejected the login; check SMTP_URL (${detail})` };
  return { permanent: false, reason: `the mail server could not be reached (${e.code ?? "error"}: ${detail})` };
}
