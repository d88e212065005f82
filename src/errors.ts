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

/**
 * The attempt lost its job (released after missed heartbeats, or taken over
 * by another worker) and stopped without acting: the job's outcome belongs to
 * the attempt that holds it now. The history wrapper adds the message to the
 * attempt's history row (already `abandoned`), and graphile-worker's failJob,
 * which only touches a job still locked by this worker, leaves the job alone.
 * Never permanent: making it so would end the job the other attempt runs.
 */
export class FencedJobError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FencedJobError";
  }
}
