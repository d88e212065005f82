/**
 * Every environment variable pmt-worker reads: its default, what it means and
 * how it is validated, in one place. `loadConfig()` validates once at start and
 * throws a ConfigError naming each bad variable and what it expects.
 *
 * Values come from the process environment, then from `.env` in the working
 * directory for anything the environment does not set.
 */
import fs from "node:fs";
import path from "node:path";
import { parseCronItem } from "graphile-worker";
import { z } from "zod";
import { UserError } from "./errors.js";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

function int(min: number, max: number) {
  return z
    .string()
    .trim()
    .regex(/^-?\d+$/, `expected a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().min(min, `expected a whole number from ${min} to ${max}`).max(max, `expected a whole number from ${min} to ${max}`));
}

/** A five-field crontab expression, checked with graphile-worker's own parser. */
const cron = z
  .string()
  .trim()
  .superRefine((value, ctx) => {
    try {
      parseCronItem({ task: "check", match: value, identifier: "check" }, "env");
    } catch (error) {
      ctx.addIssue({
        code: "custom",
        message: `expected a crontab expression like "0 3 * * *" (${(error as Error).message.replace(/\s+/g, " ")})`,
      });
    }
  });

const postgresUrl = z
  .string()
  .trim()
  .superRefine((value, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      // fall through
    }
    if (!url || !["postgres:", "postgresql:"].includes(url.protocol)) {
      // Never echo the value: it may hold a password.
      ctx.addIssue({ code: "custom", message: "expected a URL like postgres://user:password@host:5432/dbname (value not shown)" });
    }
  });

/**
 * The variables. `doc` is what `pmt-worker start --help` and the README show.
 */
export const ENV = {
  DATABASE_URL: {
    schema: postgresUrl.optional(),
    default: undefined,
    doc: "PMT database (queue, history and schema pmt_jobs live there). Unset: an embedded PostgreSQL 15 under PMT_HOME.",
  },
  PMT_HOME: {
    schema: z.string().trim().min(1, "expected a folder path"),
    default: "./.pmt",
    doc: "Folder for local state: the embedded PostgreSQL's data (pg/) and its connection file.",
  },
  EMBEDDED_PG_PORT: {
    schema: int(1024, 65535),
    default: "54329",
    doc: "TCP port of the embedded PostgreSQL (listens on 127.0.0.1 only).",
  },
  WORKER_CONCURRENCY: {
    schema: int(1, 100),
    default: "4",
    doc: "Jobs one worker process runs at once.",
  },
  WORKER_POLL_INTERVAL_MS: {
    schema: int(100, 600_000),
    default: "2000",
    doc: "How often to look for jobs scheduled in the future (new jobs arrive by LISTEN/NOTIFY at once).",
  },
  WORKER_DEAD_AFTER_SECONDS: {
    schema: int(2, 86_400),
    default: "120",
    doc: "A worker whose heartbeat is older than this is dead: its jobs are unlocked for retry and its running history rows marked abandoned.",
  },
  HTTP_HOST: {
    schema: z.string().trim().min(1, "expected a host name or address"),
    default: "127.0.0.1",
    doc: "Address of the /healthz and /metrics listener (0.0.0.0 in a container).",
  },
  HTTP_PORT: {
    schema: int(0, 65535),
    default: "9464",
    doc: "Port of the /healthz and /metrics listener; 0 picks a free port.",
  },
  HISTORY_RETENTION_DAYS: {
    schema: int(1, 36_500),
    default: "90",
    doc: "Job history rows older than this are deleted by the daily prune task.",
  },
  HISTORY_PRUNE_CRON: {
    schema: cron,
    default: "30 3 * * *",
    doc: "When the history prune task runs (crontab syntax, UTC).",
  },
  LOG_LEVEL: {
    schema: z.enum(LOG_LEVELS, { message: `expected one of ${LOG_LEVELS.join(", ")}` }),
    default: "info",
    doc: "Log verbosity (JSON lines on stdout).",
  },
} as const satisfies Record<string, { schema: z.ZodType; default: string | undefined; doc: string }>;

type Env = typeof ENV;
export type EnvName = keyof Env;

export interface Config {
  databaseUrl: string | undefined;
  pmtHome: string;
  embeddedPgPort: number;
  concurrency: number;
  pollIntervalMs: number;
  deadAfterSeconds: number;
  httpHost: string;
  httpPort: number;
  historyRetentionDays: number;
  historyPruneCron: string;
  logLevel: (typeof LOG_LEVELS)[number];
}

export class ConfigError extends UserError {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/**
 * Reads `.env` (if present) without overriding the real environment. A line
 * that is not NAME=value is an error that names the line.
 */
export function readDotEnv(file: string): Record<string, string> {
  if (!fs.existsSync(file)) return {};
  const out: Record<string, string> = {};
  const lines = fs.readFileSync(file, "utf8").split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) {
      throw new ConfigError([`${path.basename(file)} line ${i + 1}: expected NAME=value`]);
    }
    let value = m[2]!;
    const quoted = /^(['"])(.*)\1$/.exec(value);
    if (quoted) value = quoted[2]!;
    out[m[1]!] = value;
  });
  return out;
}

/**
 * Validates the environment. Empty strings count as unset, so `FOO=` in a
 * compose file falls back to the default rather than failing.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, dotEnvFile = ".env"): Config {
  const merged = { ...readDotEnv(dotEnvFile), ...env };
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(ENV) as [EnvName, Env[EnvName]][]) {
    const raw = merged[name];
    const input = raw === undefined || raw === "" ? spec.default : raw;
    const result = (spec.schema as z.ZodType).safeParse(input);
    if (result.success) {
      values[name] = result.data;
    } else {
      const shown = name === "DATABASE_URL" || input === undefined ? "" : ` (got ${JSON.stringify(input)})`;
      problems.push(`${name}: ${result.error.issues[0]?.message ?? "invalid value"}${shown}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return {
    databaseUrl: values.DATABASE_URL as string | undefined,
    pmtHome: path.resolve(values.PMT_HOME as string),
    embeddedPgPort: values.EMBEDDED_PG_PORT as number,
    concurrency: values.WORKER_CONCURRENCY as number,
    pollIntervalMs: values.WORKER_POLL_INTERVAL_MS as number,
    deadAfterSeconds: values.WORKER_DEAD_AFTER_SECONDS as number,
    httpHost: values.HTTP_HOST as string,
    httpPort: values.HTTP_PORT as number,
    historyRetentionDays: values.HISTORY_RETENTION_DAYS as number,
    historyPruneCron: values.HISTORY_PRUNE_CRON as string,
    logLevel: values.LOG_LEVEL as Config["logLevel"],
  };
}

/** The variables as "NAME (default X): doc" lines, for --help. */
export function describeEnv(): string {
  return Object.entries(ENV)
    .map(([name, spec]) => `  ${name}${spec.default !== undefined ? ` (default ${spec.default})` : ""}\n      ${spec.doc}`)
    .join("\n");
}
