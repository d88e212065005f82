import { Logger as GraphileLogger, type LogLevel as GraphileLogLevel } from "graphile-worker";
import { pino, type Logger } from "pino";
import { redactText } from "./redact.js";

export type { Logger };

/**
 * JSON logs on stdout. Messages pass through redactText, and the usual secret
 * fields are censored, so a connection string with a password never reaches
 * a log line.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: ["password", "*.password", "connectionString", "*.connectionString", "env", "*.env"],
        censor: "***",
      },
      hooks: {
        logMethod(args, method) {
          const redacted = args.map((a) => (typeof a === "string" ? redactText(a) : a));
          return method.apply(this, redacted as Parameters<typeof method>);
        },
      },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

const LEVELS: Record<GraphileLogLevel, "error" | "warn" | "info" | "debug"> = {
  error: "error",
  warning: "warn",
  info: "info",
  debug: "debug",
};

/** graphile-worker's logger, writing through ours. */
export function graphileLogger(logger: Logger): GraphileLogger {
  return new GraphileLogger((scope) => {
    const child = logger.child({ component: "graphile-worker", ...pickScope(scope) });
    return (level, message, meta) => {
      const error = meta && typeof meta === "object" && "error" in meta ? (meta as { error: unknown }).error : undefined;
      child[LEVELS[level]](error instanceof Error ? { err: error } : {}, message);
    };
  });
}

function pickScope(scope: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of ["label", "workerId", "taskIdentifier", "jobId"]) {
    if (scope[key] !== undefined) out[key] = scope[key];
  }
  return out;
}
