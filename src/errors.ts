/**
 * An error the user can act on: the CLI prints its message as one line (or a
 * short list) and exits non-zero, without a stack trace.
 */
export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UserError";
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * A job failure that retrying cannot fix (a recipient the mail server refuses,
 * a request that no longer exists): the history wrapper records it as the
 * job's last attempt, and graphile-worker does not run it again.
 */
export class PermanentJobError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PermanentJobError";
  }
}
