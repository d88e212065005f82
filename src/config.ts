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
// parseCronItem's own check of a string (graphile-worker's index would load all of it for every
// command); test/unit/deep-imports.test.ts fails if an upgrade makes the two differ.
import { createCronMatcher } from "graphile-worker/dist/cronMatcher.js";
// zod's classic API from its zod/v3 entry (shipped with zod 4 and kept there): a few modules, where
// zod 4's entry loads about 95 (every locale), half a bare node start that every command paid for
// its configuration. The schemas below read the same in both; the jobs' payloads use zod 4.
import { z } from "zod/v3";
import { UserError } from "./errors.js";
import { mailboxProblem } from "./mail/mailbox.js";

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
      createCronMatcher(value, "env");
    } catch (error) {
      ctx.addIssue({
        code: "custom",
        message: `expected a crontab expression like "0 3 * * *" (${(error as Error).message.replace(/\s+/g, " ")})`,
      });
    }
  });

/** What is wrong with `value` as a URL of one of `protocols`, without echoing it (it may hold a password); undefined if nothing. */
function urlProblem(value: string, protocols: string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "not a URL";
  }
  if (!protocols.includes(url.protocol)) return `the unsupported scheme ${JSON.stringify(url.protocol.slice(0, 20))}`;
  if (!url.hostname) return "no host";
  return undefined;
}

/** A URL of one of `protocols`: the message says what is wrong and what is expected, never the value. */
function urlOf(protocols: string[], message: string) {
  return z
    .string()
    .trim()
    .superRefine((value, ctx) => {
      const problem = urlProblem(value, protocols);
      if (problem) ctx.addIssue({ code: "custom", message: `${message}; got ${problem}` });
    });
}

const OFFSITE_EXPECTED = "expected s3://bucket/prefix (any S3-compatible store) or file:///absolute/path (three slashes) (value not shown)";

/**
 * OFFSITE_URL: `file://relative/path` parses as host "relative", path "/path",
 * and `file:relative` as "/relative"; both once made a store at the wrong
 * place, so a file store must be spelt `file:///` plus an absolute path.
 */
const offsiteUrl = z
  .string()
  .trim()
  .superRefine((value, ctx) => {
    const fail = (problem: string) => ctx.addIssue({ code: "custom", message: `${OFFSITE_EXPECTED}; got ${problem}` });
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value)?.[1]?.toLowerCase();
    if (scheme === "file") {
      if (!value.startsWith("file:///")) return fail("a file URL without an absolute path (file://folder/... names a host, not a folder)");
      if (/^file:\/\/\/+$/.test(value)) return fail("the filesystem root");
      return;
    }
    if (scheme !== "s3") return fail(scheme ? `the unsupported scheme "${scheme.slice(0, 20)}:"` : "no scheme");
    const problem = urlProblem(value, ["s3:"]);
    if (problem) return fail(problem === "no host" ? "no bucket name after s3://" : problem);
    const url = new URL(value);
    if (url.username || url.password) return fail("credentials in the URL (give them as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)");
    if (url.search || url.hash) return fail("a query or fragment (? or #)");
  });

/** A database name as PMT_DATABASES and BACKUP_DATABASES accept it (a full URL may name any). */
const DATABASE_NAME = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;

const postgresUrl = urlOf(["postgres:", "postgresql:"], "expected a URL like postgres://user:password@host:5432/dbname (value not shown)");

/**
 * The variables. `doc` is what `pmt-worker start --help` and the README show.
 */
export const ENV = {
  DATABASE_URL: {
    schema: postgresUrl.optional(),
    default: undefined,
    doc: "PMT database (queue, history and schema pmt_jobs live there). Unset: an embedded PostgreSQL 15 under PMT_HOME.",
  },
  PMT_DATABASES: {
    schema: z
      .string()
      .trim()
      .superRefine((value, ctx) => {
        const items = value
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
        if (!items.length) ctx.addIssue({ code: "custom", message: "expected database names or postgres:// URLs, comma-separated, like bmgf,oam" });
        for (const item of items) {
          if (/^postgres(ql)?:\/\//.test(item)) {
            const problem = urlProblem(item, ["postgres:", "postgresql:"]);
            if (problem) ctx.addIssue({ code: "custom", message: `an item is not a usable postgres:// URL (${problem}) (values not shown)` });
            continue;
          }
          if (!DATABASE_NAME.test(item)) {
            ctx.addIssue({
              code: "custom",
              message: `${JSON.stringify(item.slice(0, 70))} is neither a database name (letters, digits, _ $ -) nor a postgres:// URL`,
            });
          }
        }
      })
      .optional(),
    default: undefined,
    doc: "PMT databases this one worker serves, each with its own queue, history and backup catalog: names on DATABASE_URL's server (DATABASE_URL's own database is served only if listed) or full postgres:// URLs, comma-separated, like bmgf,oam,pmt_dev. Unset: DATABASE_URL's database alone.",
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
  DEMO_ACTIVITIES: {
    schema: int(0, 10_000_000),
    default: "1000",
    doc: "On the embedded default only: PMT sample tables are created and filled with this many synthetic activities when empty (0: no demo data).",
  },
  WORKER_CONCURRENCY: {
    schema: int(1, 100),
    default: "4",
    doc: "Exports (and other jobs that are not maintenance) one worker process runs at once.",
  },
  MAINTENANCE_CONCURRENCY: {
    schema: int(1, 100),
    default: "2",
    doc: "Maintenance jobs (backups, test restores, offsite, alerts, prunes) one worker process runs at once, in slots of their own: they never wait behind exports.",
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
  CONSOLE: {
    schema: z.enum(["on", "off"], { message: "expected on or off" }),
    default: "on",
    doc: "The web console under /console on the HTTP listener (jobs, backups, exports, a few actions; docs/console.md). On an address other than loopback it needs CONSOLE_PASSWORD, or the worker refuses to start.",
  },
  CONSOLE_USER: {
    schema: z
      .string()
      .trim()
      .regex(/^[^:\s]{1,64}$/, "expected a user name without spaces or colons"),
    default: "admin",
    doc: "The console's user name (HTTP Basic authentication), with CONSOLE_PASSWORD.",
  },
  CONSOLE_PASSWORD: {
    schema: z.string().min(12, "expected at least 12 characters").max(1024, "expected at most 1024 characters").optional(),
    default: undefined,
    doc: "The console's password (HTTP Basic authentication; compared in constant time, never logged). Required when HTTP_HOST is not a loopback address; unset on loopback: the console is open to local users, recipients' addresses masked.",
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
  SMTP_URL: {
    schema: urlOf(["smtp:", "smtps:"], "expected smtp://user:password@host:587 (STARTTLS) or smtps://...:465 (TLS) (value not shown)").optional(),
    default: undefined,
    doc: "Mail server for exports (smtp:// with STARTTLS, smtps:// for TLS). Unset: messages are written as .eml files to PMT_HOME/outbox.",
  },
  SMTP_CA_FILE: {
    schema: z
      .string()
      .trim()
      .superRefine((value, ctx) => {
        if (!fs.existsSync(value)) ctx.addIssue({ code: "custom", message: "expected a PEM file of the CA that signed the mail server's certificate" });
      })
      .optional(),
    default: undefined,
    doc: "PEM file of a private CA to trust for the mail server's TLS certificate (besides the system's).",
  },
  MAIL_FROM: {
    schema: z.string().trim().min(3, "expected an address like PMT <pmt@example.org>"),
    default: "PMT <pmt-worker@localhost>",
    doc: "From: of export mails.",
  },
  EXPORT_MAX_ATTACHMENT_MB: {
    schema: z
      .string()
      .trim()
      .regex(/^\d+(\.\d+)?$/, "expected a number of megabytes from 0.01 to 1000, like 20 or 0.5")
      .transform(Number)
      .pipe(z.number().min(0.01, "expected a number of megabytes from 0.01 to 1000").max(1000, "expected a number of megabytes from 0.01 to 1000")),
    default: "20",
    doc: "Attachments above this are gzip-compressed; still above it, the recipient is told to narrow the filters.",
  },
  EXPORT_KEEP_HOURS: {
    schema: int(0, 8760),
    default: "0",
    doc: "Keep sent export files in PMT_HOME/spool this long (for audit); 0 deletes them once sent.",
  },
  EXPORT_DISCLAIMER: {
    schema: z.string(),
    default: "Disclaimer: the data is provided as is, without warranty of any kind.",
    doc: "Second line of every CSV export.",
  },
  EXPORT_CSV_FORMULA_PREFIX: {
    schema: z
      .string()
      .trim()
      .regex(/^(on|off|[^\sA-Za-z0-9=+\-@",])$/u, 'expected on, off, or the one character to put before a cell (not a letter, digit, space, = + - @ " or ,)')
      .transform((v) => (v === "off" ? null : v === "on" ? "'" : v)),
    default: "on",
    doc: "CSV cells a spreadsheet would run as a formula (text starting with = + - @, a tab or CR; numbers like -12.5 excepted) get a ' before them (on), as OWASP recommends; off writes them as they are; or give the character to use.",
  },
  EXPORT_MAIL_BODY: {
    schema: z.string().min(1, "expected a mail body"),
    default: "Attached is your data request from the Portfolio Mapping Tool ({instance}): {rows} activities, {format}.\\nFilters: {filters}",
    doc: "Body of export mails; {instance}, {rows}, {format}, {filters} and {attachment} are filled in.",
  },
  EXPORT_MAIL_BODIES: {
    schema: z.string().transform((text, ctx) => {
      try {
        const parsed = z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), z.string().min(1)).parse(JSON.parse(text));
        return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k.toLowerCase(), v]));
      } catch {
        ctx.addIssue({ code: "custom", message: 'expected a JSON object of instance name to body, like {"bmgf": "..."}' });
        return z.NEVER;
      }
    }),
    default: "{}",
    doc: "Bodies per PMT instance (database name, lower case), as JSON; others get EXPORT_MAIL_BODY.",
  },
  EXPORT_LIMIT_PER_RECIPIENT: {
    schema: int(0, 1_000_000).optional(),
    default: undefined,
    doc: "Export requests to one mailbox in any hour (case and +tag ignored), then SQLSTATE 22023 with the time of the next; 0: no limit. Unset: pmt_jobs.export_limits decides (default 20; change it with update). Set: written there at every start and migrate.",
  },
  EXPORT_LIMIT_PER_ROLE: {
    schema: int(0, 1_000_000).optional(),
    default: undefined,
    doc: "Export requests by one login role (session_user) in any hour; 0: no limit. Unset: pmt_jobs.export_limits decides (default 200).",
  },
  EXPORT_QUEUE_MAX: {
    schema: int(0, 10_000_000).optional(),
    default: undefined,
    doc: "Unfinished export requests above which new ones are refused (SQLSTATE 53400); 0: no limit. Unset: pmt_jobs.export_limits decides (default 1000).",
  },
  EXPORT_FILTER_TIMEOUT_MS: {
    schema: int(0, 3_600_000).optional(),
    default: undefined,
    doc: "How long pmt_filter_csv/pmt_filter_iati may spend, in the caller's transaction, finding whether the filter matches (then SQLSTATE 57014); 0: no limit. Unset: pmt_jobs.export_limits decides (default 5000).",
  },
  DROP_DIR: {
    schema: z
      .string()
      .trim()
      .superRefine((value, ctx) => {
        if (!value.startsWith("/")) ctx.addIssue({ code: "custom", message: "expected an absolute folder path like /usr/local/pmt_dir" });
        else if (!fs.existsSync(value) || !fs.statSync(value).isDirectory()) ctx.addIssue({ code: "custom", message: "expected an existing folder" });
      })
      .optional(),
    default: undefined,
    doc: "Legacy drop folder (PMT's /usr/local/pmt_dir): files <email>_<instance>.csv|.xml appearing there are mailed, anything else moved to rejected/.",
  },
  DROP_SCAN_SECONDS: {
    schema: int(1, 3600),
    default: "2",
    doc: "How often the drop folder is scanned; a file is taken when unchanged between two scans.",
  },
  BACKUP_DIR: {
    schema: z.string().trim().min(1, "expected a folder path").optional(),
    default: undefined,
    doc: "Where backups are written (0700; files 0600). Unset: PMT_HOME/backups.",
  },
  BACKUP_CRON: {
    schema: cron,
    default: "0 0 * * *",
    doc: "When backups run (crontab syntax, UTC): one pg_dump per database per run.",
  },
  BACKUP_DATABASES: {
    schema: z
      .string()
      .trim()
      .superRefine((value, ctx) => {
        for (const item of value
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)) {
          if (/^postgres(ql)?:\/\//.test(item)) continue;
          if (!DATABASE_NAME.test(item)) {
            ctx.addIssue({ code: "custom", message: `${JSON.stringify(item)} is neither a database name nor a postgres:// URL (values not shown)` });
          }
        }
      })
      .optional(),
    default: undefined,
    doc: "Databases to back up: names on DATABASE_URL's server or full postgres:// URLs, comma-separated. Unset: every served database (PMT_DATABASES, else DATABASE_URL's). A served database keeps its own backups' catalog; the others' is kept by the first served one.",
  },
  BACKUP_FORMAT: {
    schema: z.enum(["custom", "tar", "directory"], { message: "expected custom, tar or directory" }),
    default: "custom",
    doc: "pg_dump format: custom (compressed, .dump), tar (the original's -Ft, .tar) or directory (with BACKUP_JOBS parallel jobs).",
  },
  BACKUP_JOBS: {
    schema: int(1, 32),
    default: "2",
    doc: "Parallel pg_dump jobs for the directory format.",
  },
  BACKUP_SPACE_FACTOR: {
    schema: z
      .string()
      .trim()
      .regex(/^\d+(\.\d+)?$/, "expected a number like 1.5")
      .transform(Number)
      .pipe(z.number().min(1, "expected a number of at least 1")),
    default: "1.5",
    doc: "A backup starts only if BACKUP_DIR has this many times the last backup's size free.",
  },
  BACKUP_TEST_RESTORE_CRON: {
    schema: z.literal("off").or(cron).optional(),
    default: undefined,
    doc: "When the newest backup of each database is test-restored into a scratch database (crontab, UTC), or off. Unset: 0 4 * * 0 (Sundays 04:00), off on the embedded demo.",
  },
  PG_BIN_DIR: {
    schema: z.string().trim().min(1).optional(),
    default: undefined,
    doc: "Folder of the pg_dump/pg_restore to use. Unset: the newest suitable one on PATH or in /usr/lib/postgresql/*/bin.",
  },
  BACKUP_TIMEZONE: {
    schema: z
      .string()
      .trim()
      .refine((tz) => {
        // The default needs no check: a first Intl.DateTimeFormat loads ICU's data, tens of ms of every command's start.
        if (tz === "UTC") return true;
        try {
          new Intl.DateTimeFormat("en-US", { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      }, "expected an IANA time zone like UTC or Africa/Nairobi"),
    default: "UTC",
    doc: "Calendar of the retention tiers (which day, week and month a backup belongs to).",
  },
  RETAIN_DAILY: { schema: int(0, 3650), default: "7", doc: "Daily backups kept (the newest of each of the newest N days)." },
  RETAIN_WEEKLY: { schema: int(0, 520), default: "5", doc: "Weekly backups kept (the newest of each ISO week, from WEEKLY_DAY on)." },
  RETAIN_MONTHLY: { schema: int(0, 1200), default: "12", doc: "Monthly backups kept (the newest of each month, from MONTHLY_DAY on)." },
  WEEKLY_DAY: { schema: int(0, 6), default: "0", doc: "Day of the week a weekly backup counts from (0 = Sunday)." },
  MONTHLY_DAY: {
    schema: z.enum(["first-sunday", "1"], { message: "expected first-sunday or 1" }),
    default: "first-sunday",
    doc: "Day of the month a monthly backup counts from: the first Sunday, or the 1st.",
  },
  RETAIN_MIN_SUCCESSFUL: {
    schema: int(1, 1000),
    default: "3",
    doc: "The newest N successful backups of a database are never pruned, whatever their age.",
  },
  OFFSITE_URL: {
    schema: offsiteUrl.optional(),
    default: undefined,
    doc: "Offsite store: s3://bucket/prefix (any S3-compatible store) or file:///path. Exports too large to mail are put there and mailed as a link.",
  },
  OFFSITE_STREAM: {
    schema: z.enum(["true", "false"], { message: "expected true or false" }).transform((v) => v === "true"),
    default: "false",
    doc: "Stream each dump to the store while it is written locally (custom and tar formats), so it is offsite sooner; the local file stays the verified source.",
  },
  BACKUP_ENCRYPT_TO: {
    schema: z
      .string()
      .transform((v, ctx) => {
        try {
          return parseRecipients(v);
        } catch (error) {
          ctx.addIssue({ code: "custom", message: (error as Error).message });
          return z.NEVER;
        }
      })
      .optional(),
    default: undefined,
    doc: "age recipients (public keys, age1..., comma or space separated): every copy in the offsite store (dumps and their roles) is encrypted to them as it streams, before it leaves the server. Restores take the identity (the private key) from --identity-file; the worker never holds it. Several recipients: each can decrypt (key rotation, a second keeper).",
  },
  BACKUP_ENCRYPT_LOCAL: {
    schema: z.enum(["true", "false"], { message: "expected true or false" }).transform((v) => v === "true"),
    default: "false",
    doc: "Also encrypt the dumps in BACKUP_DIR to BACKUP_ENCRYPT_TO as pg_dump writes them (`<file>.age`; custom and tar formats): a stolen backup disk leaks nothing. The offsite copy is then the local file itself. Restores, `backup verify`'s listing and the test restore need the identity.",
  },
  BACKUP_IDENTITY_FILE: {
    schema: z.string().trim().min(1, "expected the path of an age identity file").optional(),
    default: undefined,
    doc: "With BACKUP_ENCRYPT_LOCAL: the age identity file the scheduled test restore decrypts with (read when it runs, never logged). Putting the private key on the server weakens what local encryption protects against; without it set BACKUP_TEST_RESTORE_CRON=off and run `backup test-restore --identity-file` by hand.",
  },
  OFFSITE_VERIFY: {
    schema: z.enum(["checksum", "read-back"], { message: "expected checksum or read-back" }),
    default: "checksum",
    doc: "How an upload is confirmed. checksum: the store's MD5 ETag must equal our MD5 of the file; where the store gives none we can check (SSE-KMS, some clones) the object is read back. read-back: every copy is downloaded and its sha256 compared (doubles the traffic; egress may cost). offsite sync then proves every copy from the store's listing (size and ETag) without downloading it.",
  },
  OFFSITE_CONCURRENCY: {
    schema: int(1, 16),
    default: "2",
    doc: "Backups offsite sync uploads at once (each a multipart upload of two 5 MiB parts in flight: memory stays small).",
  },
  OFFSITE_SERVER_ID: {
    schema: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9._-]+$/, "expected a name of letters, digits, . _ -")
      .optional(),
    default: undefined,
    doc: "The folder of this server's backups in the store (<prefix>/<server id>/<database>/<file>). Unset: DATABASE_URL's host.",
  },
  OFFSITE_SYNC_CRON: {
    schema: cron,
    default: "0 1 * * *",
    doc: "When offsite sync runs: prove every copy against the store's listing, upload what lacks a proven copy (lost ones again), apply remote retention (PMT's 1 AM).",
  },
  OFFSITE_RETAIN_DAILY: { schema: int(0, 3650).optional(), default: undefined, doc: "Daily copies kept offsite (default RETAIN_DAILY)." },
  OFFSITE_RETAIN_WEEKLY: { schema: int(0, 520).optional(), default: undefined, doc: "Weekly copies kept offsite (default RETAIN_WEEKLY)." },
  OFFSITE_RETAIN_MONTHLY: { schema: int(0, 1200).optional(), default: undefined, doc: "Monthly copies kept offsite (default RETAIN_MONTHLY)." },
  BACKUP_MIN_FREE_MB: {
    schema: int(0, 100_000_000),
    default: "1024",
    doc: "Below this much free space in BACKUP_DIR, local retention may prune backups not yet offsite (logged as an alert).",
  },
  S3_ENDPOINT: {
    schema: urlOf(["http:", "https:"], "expected the store's URL, like https://s3.example.org or http://minio:9000").optional(),
    default: undefined,
    doc: "S3-compatible endpoint (MinIO, R2, Ceph, ...); unset: AWS.",
  },
  S3_PUBLIC_ENDPOINT: {
    schema: urlOf(["http:", "https:"], "expected the store's URL as recipients reach it, like https://s3.example.org or http://localhost:9000").optional(),
    default: undefined,
    doc: "S3_ENDPOINT as the recipients of download links reach it (large exports), when they cannot reach S3_ENDPOINT (e.g. http://minio:9000 inside compose). Unset: S3_ENDPOINT.",
  },
  S3_REGION: {
    schema: z
      .string()
      .trim()
      .regex(/^[a-z0-9-]+$/, "expected a region name like us-east-1"),
    default: "us-east-1",
    doc: "S3 region. Credentials come from the AWS SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, instance role).",
  },
  S3_FORCE_PATH_STYLE: {
    schema: z.enum(["true", "false"], { message: "expected true or false" }).transform((v) => v === "true"),
    default: "false",
    doc: "Address buckets as https://host/bucket (MinIO and most S3 clones) instead of https://bucket.host.",
  },
  EXPORT_LINK_DAYS: {
    schema: int(1, 7),
    default: "7",
    doc: "How long the download link of an export too large to mail stays valid (S3 presigned URLs last at most 7 days).",
  },
  ALERT_EMAIL: {
    schema: z
      .string()
      .trim()
      .refine((a) => mailboxProblem(a) === undefined, "expected one mailbox like dba@example.org")
      .optional(),
    default: undefined,
    doc: "The operator, mailed (through the export mailer) when a backup or upload fails for good, a backup is stale or shrank, or BACKUP_DIR runs low.",
  },
  ALERT_REPEAT_HOURS: { schema: int(1, 720), default: "24", doc: "At most one mail per alert condition in this many hours." },
  BACKUP_MAX_AGE_HOURS: { schema: int(1, 8760), default: "26", doc: "Alert when a database's newest successful backup is older than this." },
  BACKUP_SHRINK_ALERT: {
    schema: int(1, 100),
    default: "50",
    doc: "Alert when a backup is smaller than this percentage of the previous one.",
  },
  IATI_REPORTING_ORG_REF: {
    schema: z
      .string()
      .trim()
      .regex(/^[^/?#\s]+$/, "expected an IATI organisation identifier like XM-DAC-41114"),
    default: "XI-PMT-0000",
    doc: "IATI reporting-org ref of IATI exports (and the prefix of identifiers PMT does not have).",
  },
  IATI_REPORTING_ORG_NAME: {
    schema: z.string().trim().min(1, "expected the reporting organisation's name"),
    default: "Portfolio Mapping Tool",
    doc: "IATI reporting-org name.",
  },
  IATI_REPORTING_ORG_TYPE: {
    schema: z
      .string()
      .trim()
      .regex(/^\d{2}$/, "expected a two-digit IATI OrganisationType code like 10 or 80"),
    default: "80",
    doc: "IATI reporting-org type (IATI OrganisationType codelist).",
  },
  LOG_LEVEL: {
    schema: z.enum(LOG_LEVELS, { message: `expected one of ${LOG_LEVELS.join(", ")}` }),
    default: "info",
    doc: "Log verbosity (see LOG_FORMAT).",
  },
  LOG_FORMAT: {
    schema: z.enum(["auto", "json", "pretty"], { message: "expected auto, json or pretty" }),
    default: "auto",
    doc: "Log lines (the worker's on stdout, a command's on stderr): auto is one readable line each on a terminal and JSON lines elsewhere (a file, journald, a container); json or pretty to choose.",
  },
} as const satisfies Record<string, { schema: z.ZodType; default: string | undefined; doc: string }>;

type Env = typeof ENV;
/** Variables whose values may hold a password: never echoed in errors. */
/** An age recipient's shape (bech32, lower case): `age1...` X25519, `age1pq1...` post-quantum hybrid, `age1tag1...`. io/age.ts checks the rest. */
const RECIPIENT_SHAPE = /^age1[02-9ac-hj-np-z]{50,}$/;

/** BACKUP_ENCRYPT_TO's value: recipients separated by commas or white space, each of the right shape. */
export function parseRecipients(value: string): string[] {
  const recipients = value.split(/[\s,]+/).filter(Boolean);
  // Never echoed: a value pasted here by mistake may be a secret.
  recipients.forEach((r, i) => {
    const which = recipients.length > 1 ? `value ${i + 1}` : "this";
    if (/^AGE-SECRET-KEY-/i.test(r)) {
      throw new Error(`${which} is an identity (a private key), which must never be on the worker: give its recipient (age-keygen -y key.txt prints it)`);
    }
    if (!RECIPIENT_SHAPE.test(r)) throw new Error(`${which} is not an age recipient: expected age1... (age-keygen -y key.txt prints it)`);
  });
  if (recipients.length === 0) throw new Error("expected one or more age recipients (age1...)");
  return [...new Set(recipients)];
}

export const SECRET_VARS: ReadonlySet<string> = new Set<string>([
  "DATABASE_URL",
  "PMT_DATABASES",
  "SMTP_URL",
  "BACKUP_DATABASES",
  "OFFSITE_URL",
  "BACKUP_ENCRYPT_TO",
  "CONSOLE_PASSWORD",
]);
export type EnvName = keyof Env;

/** Each variable's validated value: the output type of its schema. */
type Values = { [K in EnvName]: z.output<Env[K]["schema"]> };

/** Set per served database (db/databases.ts instancesOf); unset: from BACKUP_DATABASES alone. */
interface ResolvedBackups {
  /** What this worker instance backs up, resolved. */
  targets?: { database: string; url: string }[];
  /** Databases the worker's other instances back up: their files in BACKUP_DIR and the store are theirs, not unknown. */
  others?: string[];
}

/** The configuration, typed by the schemas above: no field is declared twice or cast. */
export type Config = ReturnType<typeof configOf>;

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
  const values: Partial<Record<EnvName, unknown>> = {};
  for (const name of Object.keys(ENV) as EnvName[]) {
    const spec: { schema: z.ZodType; default: string | undefined } = ENV[name];
    const raw = merged[name];
    const input = raw === undefined || raw === "" ? spec.default : raw;
    const result = spec.schema.safeParse(input);
    if (result.success) {
      values[name] = result.data;
    } else {
      const shown = SECRET_VARS.has(name) || input === undefined ? "" : ` (got ${JSON.stringify(input)})`;
      problems.push(`${name}: ${result.error.issues[0]?.message ?? "invalid value"}${shown}`);
    }
  }
  problems.push(...crossProblems(merged, values));
  if (problems.length) throw new ConfigError(problems);
  // Every variable parsed without a problem: `values` holds each one's schema output.
  return configOf(values as Values);
}

/**
 * A loopback address or name (127.0.0.0/8, ::1, localhost): only this machine
 * reaches a listener there. Any other value (a name, 0.0.0.0, ::) may be
 * reached from elsewhere.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost") return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return h.split(".").every((o) => Number(o) <= 255);
  return h === "::1" || h === "0:0:0:0:0:0:0:1" || /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** What variables valid one by one cannot be together. */
function crossProblems(raw: NodeJS.ProcessEnv, v: Partial<Record<EnvName, unknown>>): string[] {
  const problems: string[] = [];
  if (v.CONSOLE === "on" && typeof v.HTTP_HOST === "string" && !isLoopbackHost(v.HTTP_HOST) && !v.CONSOLE_PASSWORD && !raw.CONSOLE_PASSWORD) {
    problems.push(
      `CONSOLE_PASSWORD: the web console (/console) would listen on HTTP_HOST ${JSON.stringify(v.HTTP_HOST)}, which is not a loopback address, without a password: set CONSOLE_PASSWORD (12 characters or more), or CONSOLE=off, or HTTP_HOST=127.0.0.1`,
    );
  }
  if (v.BACKUP_ENCRYPT_LOCAL === true) {
    if (!v.BACKUP_ENCRYPT_TO && !raw.BACKUP_ENCRYPT_TO) problems.push("BACKUP_ENCRYPT_LOCAL: needs BACKUP_ENCRYPT_TO (the recipients to encrypt to)");
    if (v.BACKUP_FORMAT === "directory") problems.push("BACKUP_ENCRYPT_LOCAL: works with BACKUP_FORMAT custom or tar (one file to encrypt), not directory");
    if (!v.BACKUP_IDENTITY_FILE && v.BACKUP_TEST_RESTORE_CRON !== "off") {
      problems.push(
        "BACKUP_ENCRYPT_LOCAL: the weekly test restore must decrypt: set BACKUP_IDENTITY_FILE, or BACKUP_TEST_RESTORE_CRON=off and run backup test-restore --identity-file by hand",
      );
    }
  }
  return problems;
}

function configOf(v: Values) {
  const resolved: ResolvedBackups = {};
  return {
    databaseUrl: v.DATABASE_URL,
    pmtDatabases: (v.PMT_DATABASES ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    pmtHome: path.resolve(v.PMT_HOME),
    embeddedPgPort: v.EMBEDDED_PG_PORT,
    demoActivities: v.DEMO_ACTIVITIES,
    concurrency: v.WORKER_CONCURRENCY,
    maintenanceConcurrency: v.MAINTENANCE_CONCURRENCY,
    pollIntervalMs: v.WORKER_POLL_INTERVAL_MS,
    deadAfterSeconds: v.WORKER_DEAD_AFTER_SECONDS,
    httpHost: v.HTTP_HOST,
    httpPort: v.HTTP_PORT,
    console: {
      enabled: v.CONSOLE === "on",
      user: v.CONSOLE_USER,
      password: v.CONSOLE_PASSWORD,
    },
    historyRetentionDays: v.HISTORY_RETENTION_DAYS,
    historyPruneCron: v.HISTORY_PRUNE_CRON,
    logLevel: v.LOG_LEVEL,
    logFormat: v.LOG_FORMAT,
    smtpUrl: v.SMTP_URL,
    smtpCaFile: v.SMTP_CA_FILE,
    dropDir: v.DROP_DIR,
    backup: {
      dir: path.resolve(v.BACKUP_DIR ?? path.join(v.PMT_HOME, "backups")),
      cron: v.BACKUP_CRON,
      databases: (v.BACKUP_DATABASES ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
      format: v.BACKUP_FORMAT,
      jobs: v.BACKUP_JOBS,
      spaceFactor: v.BACKUP_SPACE_FACTOR,
      pgBinDir: v.PG_BIN_DIR,
      testRestoreCron: v.BACKUP_TEST_RESTORE_CRON,
      ...resolved,
    },
    retention: {
      daily: v.RETAIN_DAILY,
      weekly: v.RETAIN_WEEKLY,
      monthly: v.RETAIN_MONTHLY,
      weeklyDay: v.WEEKLY_DAY,
      monthlyDay: v.MONTHLY_DAY,
      minSuccessful: v.RETAIN_MIN_SUCCESSFUL,
      timeZone: v.BACKUP_TIMEZONE,
    },
    offsite: {
      url: v.OFFSITE_URL,
      endpoint: v.S3_ENDPOINT,
      publicEndpoint: v.S3_PUBLIC_ENDPOINT,
      region: v.S3_REGION,
      forcePathStyle: v.S3_FORCE_PATH_STYLE,
      serverId: v.OFFSITE_SERVER_ID,
      stream: v.OFFSITE_STREAM,
      encryptTo: v.BACKUP_ENCRYPT_TO,
      encryptLocal: v.BACKUP_ENCRYPT_LOCAL,
      identityFile: v.BACKUP_IDENTITY_FILE,
      verify: v.OFFSITE_VERIFY,
      concurrency: v.OFFSITE_CONCURRENCY,
      syncCron: v.OFFSITE_SYNC_CRON,
      retain: {
        daily: v.OFFSITE_RETAIN_DAILY ?? v.RETAIN_DAILY,
        weekly: v.OFFSITE_RETAIN_WEEKLY ?? v.RETAIN_WEEKLY,
        monthly: v.OFFSITE_RETAIN_MONTHLY ?? v.RETAIN_MONTHLY,
      },
      minFreeBytes: v.BACKUP_MIN_FREE_MB * 1024 * 1024,
    },
    exportLinkDays: v.EXPORT_LINK_DAYS,
    dropScanSeconds: v.DROP_SCAN_SECONDS,
    mailFrom: v.MAIL_FROM,
    exportMaxAttachmentBytes: Math.round(v.EXPORT_MAX_ATTACHMENT_MB * 1024 * 1024),
    exportKeepHours: v.EXPORT_KEEP_HOURS,
    exportDisclaimer: v.EXPORT_DISCLAIMER,
    exportCsvFormulaPrefix: v.EXPORT_CSV_FORMULA_PREFIX,
    exportMailBody: v.EXPORT_MAIL_BODY.replace(/\\n/g, "\n"),
    exportMailBodies: v.EXPORT_MAIL_BODIES,
    exportLimits: {
      perRecipientPerHour: v.EXPORT_LIMIT_PER_RECIPIENT,
      perRolePerHour: v.EXPORT_LIMIT_PER_ROLE,
      maxQueued: v.EXPORT_QUEUE_MAX,
      filterTimeoutMs: v.EXPORT_FILTER_TIMEOUT_MS,
    },
    alerts: {
      email: v.ALERT_EMAIL,
      repeatHours: v.ALERT_REPEAT_HOURS,
      maxAgeHours: v.BACKUP_MAX_AGE_HOURS,
      shrinkPercent: v.BACKUP_SHRINK_ALERT,
    },
    iati: {
      ref: v.IATI_REPORTING_ORG_REF,
      name: v.IATI_REPORTING_ORG_NAME,
      type: v.IATI_REPORTING_ORG_TYPE,
    },
  };
}

/** The variables as "NAME (default X): doc" lines, for --help. */
export function describeEnv(): string {
  return Object.entries(ENV)
    .map(([name, spec]) => `  ${name}${spec.default !== undefined ? ` (default ${spec.default})` : ""}\n      ${spec.doc}`)
    .join("\n");
}
