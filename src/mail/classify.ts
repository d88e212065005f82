/**
 * What an SMTP failure means for a retry. Pure.
 *
 * Permanent: the server refused this recipient or this message with a 5xx
 * (550 no such user, 552 too large, 553 bad address): sending again cannot help.
 * Unconfirmed: the whole message, final dot included, had gone to the server
 * and no reply came (the connection dropped or timed out while the server
 * stored it): it may have been delivered, so it is never sent again.
 * Transient: everything else (connection refused or reset before the end of
 * the message, timeouts, 4xx greylisting or full queues, and authentication
 * failures, which an operator fixes in the configuration): retried with backoff.
 * A connection lost before the final dot is safe to retry: a server accepts a
 * message only at its end-of-data mark (RFC 5321 4.1.1.4).
 */
export interface SmtpFailure {
  permanent: boolean;
  /** The server may have the message: neither a retry nor a failure. */
  unconfirmed: boolean;
  reason: string;
}

interface NodemailerError {
  code?: string;
  responseCode?: number;
  response?: string;
  message?: string;
  /** Set by our mailer (mail/transport.ts): the final dot had been handed to the connection. */
  messageSent?: boolean;
}

export function classifySmtpError(error: unknown): SmtpFailure {
  const e = (error ?? {}) as NodemailerError;
  const status = e.responseCode;
  const detail = (e.response || e.message || String(error)).trim();
  if (status !== undefined && status >= 500 && status < 600 && e.code !== "EAUTH") {
    return { permanent: true, unconfirmed: false, reason: `the mail server refused it permanently (${detail})` };
  }
  if (status !== undefined && status >= 400 && status < 500) {
    return { permanent: false, unconfirmed: false, reason: `the mail server deferred it (${detail})` };
  }
  if (e.messageSent === true) {
    return {
      permanent: false,
      unconfirmed: true,
      reason: `the connection to the mail server was lost after the whole message was sent, before its reply (${e.code ?? "error"}: ${detail})`,
    };
  }
  if (e.code === "EAUTH") return { permanent: false, unconfirmed: false, reason: `the mail server rejected the login; check SMTP_URL (${detail})` };
  return { permanent: false, unconfirmed: false, reason: `the mail server could not be reached (${e.code ?? "error"}: ${detail})` };
}
