import { createRequire } from "node:module";
import type { Logger as GraphileLogger, LogLevel as GraphileLogLevel } from "graphile-worker";
import type { DestinationStream, Logger } from "pino";
import { redactText } from "./redact.js";

export type { Logger };

// pino and graphile-worker (CommonJS both) are required when first needed, not when this module
// loads: a command that logs nothing (status on a reachable database) loads neither, and only
// the commands that run graphile-worker, which has loaded it already, wrap its logger.
const requireCjs = createRequire(import.meta.url);
const pinoModule = () => requireCjs("pino") as typeof import("pino");

/**
 * JSON logs on stdout. Messages, string fields and errors pass through
 * redactText, and the usual secret fields are censored, so a connection string
 * with a password never reaches a log line.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const { pino } = pinoModule();
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
          return method.apply(this, args.map(redactValue) as Parameters<typeof method>);
        },
      },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** stderr as a logger's destination (a command's logs, so that stdout carries only its output). */
export function stderrDestination(): DestinationStream {
  return pinoModule().destination(2);
}

/**
 * A logger made by `make` on first use (a method called, a property read):
 * the commands that never log never load pino.
 */
export function lazyLogger(make: () => Logger): Logger {
  let real: Logger | undefined;
  const get = () => (real ??= make());
  return new Proxy({} as Logger, {
    get(_, key) {
      const target = get();
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
    set: (_, key, value) => Reflect.set(get(), key, value),
    has: (_, key) => Reflect.has(get(), key),
  });
}

/** Strings, and string fields of objects and errors (one level down), with passwords replaced by ***. */
function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redactText(value);
  if (value instanceof Error) {
    return { type: value.name, message: redactText(value.message), stack: redactText(value.stack ?? "") };
  }
  if (value && typeof value === "object" && !Array.isArray(value) && depth < 2) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(v, depth + 1)]));
  }
  return value;
}

const LEVELS: Record<GraphileLogLevel, "error" | "warn" | "info" | "debug"> = {
  error: "error",
  warning: "warn",
  info: "info",
  debug: "debug",
};

/** graphile-worker's logger, writing through ours. */
export function graphileLogger(logger: Logger): GraphileLogger {
  const { Logger } = requireCjs("graphile-worker") as typeof import("graphile-worker");
  return new Logger((scope) => {
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
