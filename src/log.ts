import { createRequire } from "node:module";
import tty from "node:tty";
import type { Logger as GraphileLogger, LogLevel as GraphileLogLevel } from "graphile-worker";
import type { DestinationStream, Logger } from "pino";
import { colourEnabled, colours, printable, type Colours } from "./colour.js";
import { redactText } from "./redact.js";

export type { Logger };

// pino and graphile-worker (CommonJS both) are required when first needed, not when this module
// loads: a command that logs nothing (status on a reachable database) loads neither, and only
// the commands that run graphile-worker, which has loaded it already, wrap its logger.
const requireCjs = createRequire(import.meta.url);
const pinoModule = () => requireCjs("pino") as typeof import("pino");

/** LOG_FORMAT: auto is readable lines on a terminal, JSON lines anywhere else (a file, journald, a container's log). */
export type LogFormat = "auto" | "json" | "pretty";

/**
 * Logs on stdout (or `destination`): JSON lines, or with `format` pretty (or
 * auto on a terminal) one readable line each. Messages, string fields and
 * errors pass through redactText, and the usual secret fields are censored,
 * so a connection string with a password never reaches a log line.
 */
export function createLogger(level: string, destination?: DestinationStream, format: LogFormat = "json"): Logger {
  const { pino } = pinoModule();
  const fd = destination ? (destination as { fd?: unknown }).fd : 1;
  const pretty = format === "pretty" || (format === "auto" && typeof fd === "number" && tty.isatty(fd));
  const out = pretty ? prettyDestination(destination ?? pino.destination(1), typeof fd === "number" ? fd : undefined) : destination;
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
    out,
  );
}

/** A destination writing each JSON line pino makes to `inner` as a readable line (prettyLine). */
function prettyDestination(inner: DestinationStream, fd: number | undefined): DestinationStream {
  const c = colours(colourEnabled({ isTTY: fd !== undefined && tty.isatty(fd) }));
  const target = inner as DestinationStream & { flush?: (cb?: () => void) => void; flushSync?: () => void; end?: () => void };
  return Object.assign(
    {},
    {
      write: (line: string) => target.write(prettyLine(line, c)),
      flush: (cb?: () => void) => (target.flush ? target.flush(cb) : cb?.()),
      flushSync: () => target.flushSync?.(),
      end: () => target.end?.(),
    },
  ) as DestinationStream;
}

const LEVEL_COLOURS: Record<string, keyof Omit<Colours, "enabled">> = {
  fatal: "red",
  error: "red",
  warn: "yellow",
  info: "green",
  debug: "dim",
  trace: "dim",
};

const QUIET = new Set(["level", "time", "pid", "hostname", "msg"]);

/**
 * One of pino's JSON lines for a person: "2026-12-01 14:08:16Z INFO  message
 * key=value ...", an error's stack below it, indented. A line that is not
 * JSON passes as it is.
 */
export function prettyLine(json: string, c: Colours = colours(false)): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const level = String(entry.level ?? "info");
  const time = typeof entry.time === "string" ? entry.time.replace("T", " ").replace(/\.\d+Z$/, "Z") : "";
  const stacks: string[] = [];
  const fields = Object.entries(entry)
    .filter(([key]) => !QUIET.has(key))
    .map(([key, value]) => {
      const error = value as { message?: unknown; stack?: unknown } | null;
      if (error && typeof error === "object" && typeof error.message === "string") {
        if (typeof error.stack === "string") stacks.push(...error.stack.split("\n").slice(1));
        return `${key}=${JSON.stringify(error.message)}`;
      }
      return `${key}=${typeof value === "string" && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`;
    });
  // Escape sequences in a message or a value (a task name, an error from the database) are shown, never obeyed.
  const paint = c[LEVEL_COLOURS[level] ?? "bold"];
  const head = `${c.dim(printable(time))} ${paint(printable(level.toUpperCase().padEnd(5)))} ${printable(String(entry.msg ?? ""))}`;
  const tail = fields.length ? `  ${c.dim(printable(fields.join(" ")))}` : "";
  return `${head}${tail}\n${stacks.map((l) => c.dim(`    ${printable(l.trim())}`) + "\n").join("")}`;
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
