import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, ENV, loadConfig } from "../src/config.js";

const NO_DOTENV = "/nonexistent/.env";

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env, NO_DOTENV);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("applies the documented defaults", () => {
    const config = loadConfig({}, NO_DOTENV);
    expect(config).toMatchObject({
      databaseUrl: undefined,
      concurrency: 4,
      httpHost: "127.0.0.1",
      httpPort: 9464,
      historyRetentionDays: 90,
      historyPruneCron: "30 3 * * *",
      logLevel: "info",
    });
    expect(config.pmtHome).toBe(path.resolve(".pmt"));
  });

  it("treats empty values as unset", () => {
    expect(loadConfig({ WORKER_CONCURRENCY: "", HTTP_PORT: "" }, NO_DOTENV).concurrency).toBe(4);
  });

  it("names every bad variable and what it expects", () => {
    const found = problems({ WORKER_CONCURRENCY: "lots", HTTP_PORT: "70000", LOG_LEVEL: "loud", HISTORY_RETENTION_DAYS: "0" });
    expect(found).toEqual([
      'WORKER_CONCURRENCY: expected a whole number from 1 to 100 (got "lots")',
      'HTTP_PORT: expected a whole number from 0 to 65535 (got "70000")',
      'HISTORY_RETENTION_DAYS: expected a whole number from 1 to 36500 (got "0")',
      'LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent (got "loud")',
    ]);
  });

  it("leaves the export limits to the table unless set, and validates them", () => {
    const config = loadConfig({}, NO_DOTENV);
    expect(config.maintenanceConcurrency).toBe(2);
    expect(config.exportLimits).toEqual({ perRecipientPerHour: undefined, perRolePerHour: undefined, maxQueued: undefined, filterTimeoutMs: undefined });
    const set = loadConfig(
      { EXPORT_LIMIT_PER_RECIPIENT: "0", EXPORT_LIMIT_PER_ROLE: "50", EXPORT_QUEUE_MAX: "10", EXPORT_FILTER_TIMEOUT_MS: "2500", MAINTENANCE_CONCURRENCY: "1" },
      NO_DOTENV,
    );
    expect(set.exportLimits).toEqual({ perRecipientPerHour: 0, perRolePerHour: 50, maxQueued: 10, filterTimeoutMs: 2500 });
    expect(set.maintenanceConcurrency).toBe(1);
    expect(problems({ EXPORT_LIMIT_PER_RECIPIENT: "-1", EXPORT_FILTER_TIMEOUT_MS: "5s", MAINTENANCE_CONCURRENCY: "0" })).toEqual([
      'MAINTENANCE_CONCURRENCY: expected a whole number from 1 to 100 (got "0")',
      'EXPORT_LIMIT_PER_RECIPIENT: expected a whole number from 0 to 1000000 (got "-1")',
      'EXPORT_FILTER_TIMEOUT_MS: expected a whole number from 0 to 3600000 (got "5s")',
    ]);
  });

  it("rejects a bad crontab with graphile-worker's reason", () => {
    const [problem] = problems({ HISTORY_PRUNE_CRON: "61 * * * *" });
    expect(problem).toMatch(/^HISTORY_PRUNE_CRON: expected a crontab expression like "0 3 \* \* \*" \(.*61.*\) \(got "61 \* \* \* \*"\)$/);
  });

  it("never echoes DATABASE_URL, which may hold a password", () => {
    const [problem] = problems({ DATABASE_URL: "mysql://u:hunter2@host/db" });
    expect(problem).toContain("DATABASE_URL: expected a URL like postgres://");
    expect(problem).not.toContain("hunter2");
  });

  it("accepts OFFSITE_URL only as s3://bucket/prefix or file:///absolute/path, saying what is wrong otherwise", () => {
    expect(loadConfig({ OFFSITE_URL: "s3://bucket/pmt/backups" }, NO_DOTENV).offsite.url).toBe("s3://bucket/pmt/backups");
    expect(loadConfig({ OFFSITE_URL: "file:///var/backups/pmt" }, NO_DOTENV).offsite.url).toBe("file:///var/backups/pmt");
    const expected = "OFFSITE_URL: expected s3://bucket/prefix (any S3-compatible store) or file:///absolute/path (three slashes) (value not shown); got ";
    const cases: [string, string][] = [
      // Once accepted: doctor then made /path/127.0.0.1 at the filesystem root and said OK.
      ["file://relative/path", "a file URL without an absolute path (file://folder/... names a host, not a folder)"],
      ["file:relative/path", "a file URL without an absolute path (file://folder/... names a host, not a folder)"],
      ["file:///", "the filesystem root"],
      // Once only "Invalid input".
      ["ftp://x", 'the unsupported scheme "ftp:"'],
      ["/var/backups", "no scheme"],
      ["s3://", "no bucket name after s3://"],
      ["s3://AKIA:hunter2@bucket/pmt", "credentials in the URL (give them as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"],
      ["s3://bucket/pmt?region=x", "a query or fragment (? or #)"],
    ];
    for (const [value, problem] of cases) expect(problems({ OFFSITE_URL: value }), value).toEqual([expected + problem]);
    expect(problems({ OFFSITE_URL: "s3://AKIA:hunter2@bucket/pmt" }).join()).not.toContain("hunter2");
  });

  it("reads PMT_DATABASES as names or postgres:// URLs, naming a bad item and echoing no URL", () => {
    expect(loadConfig({ PMT_DATABASES: " bmgf, oam ,pmt-dev,postgres://u:p@db2/x " }, NO_DOTENV).pmtDatabases).toEqual([
      "bmgf",
      "oam",
      "pmt-dev",
      "postgres://u:p@db2/x",
    ]);
    expect(loadConfig({}, NO_DOTENV).pmtDatabases).toEqual([]);
    expect(problems({ PMT_DATABASES: "bmgf,bad name!" })).toEqual([
      'PMT_DATABASES: "bad name!" is neither a database name (letters, digits, _ $ -) nor a postgres:// URL',
    ]);
    expect(problems({ PMT_DATABASES: " , " })).toEqual(["PMT_DATABASES: expected database names or postgres:// URLs, comma-separated, like bmgf,oam"]);
    const url = problems({ PMT_DATABASES: "bmgf,postgres://u:hunter2@/x" });
    expect(url).toHaveLength(1);
    expect(url[0]).toMatch(/^PMT_DATABASES: an item is not a usable postgres:\/\/ URL \(.+\) \(values not shown\)$/);
    expect(url.join()).not.toContain("hunter2");
  });

  it("says what is wrong with the other URLs, echoing none that may hold a password", () => {
    expect(problems({ DATABASE_URL: "mysql://u:hunter2@host/db", SMTP_URL: "smtp.example.org:587", S3_ENDPOINT: "http://" })).toEqual([
      'DATABASE_URL: expected a URL like postgres://user:password@host:5432/dbname (value not shown); got the unsupported scheme "mysql:"',
      'SMTP_URL: expected smtp://user:password@host:587 (STARTTLS) or smtps://...:465 (TLS) (value not shown); got the unsupported scheme "smtp.example.org:"',
      'S3_ENDPOINT: expected the store\'s URL, like https://s3.example.org or http://minio:9000; got not a URL (got "http://")',
    ]);
  });

  it("reads .env without overriding the environment, and names a bad line", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-env-"));
    const file = path.join(dir, ".env");
    fs.writeFileSync(file, "# comment\nWORKER_CONCURRENCY=7\nexport HTTP_PORT='9999'\nLOG_LEVEL=debug\n");
    const config = loadConfig({ LOG_LEVEL: "warn" }, file);
    expect(config.concurrency).toBe(7);
    expect(config.httpPort).toBe(9999);
    expect(config.logLevel).toBe("warn");
    fs.writeFileSync(file, "WORKER_CONCURRENCY=2\nthis is not an assignment\n");
    expect(() => loadConfig({}, file)).toThrow(/\.env line 2: expected NAME=value/);
  });

  it("is documented in the README, every variable with its default", () => {
    const readme = fs.readFileSync(path.join(import.meta.dirname, "..", "README.md"), "utf8");
    for (const [name, spec] of Object.entries(ENV)) {
      const row = readme.split("\n").find((l) => l.startsWith(`| \`${name}\` |`));
      expect(row, `README row for ${name}`).toBeDefined();
      if (spec.default !== undefined) expect(row).toContain(`\`${spec.default}\``);
    }
  });
});
