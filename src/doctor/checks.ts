/**
 * `pmt-worker doctor`: one line per check, OK / WARN / FAIL, each saying what
 * was checked and what to do. Nothing is changed, except a probe file in
 * BACKUP_DIR and a probe object in the offsite store, both deleted at once.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import nodemailer from "nodemailer";
import type pg from "pg";
import { withClient } from "../db/pool.js";
import { doctorFindings } from "../db/security.js";
import { backupTargets } from "../backups/target.js";
import type { Config } from "../config.js";
import { migrationNames } from "../db/migrate.js";
import { errorMessage } from "../errors.js";
import { humanBytes } from "../human.js";
import { freeBytes } from "../io/space.js";
import { classifySmtpError } from "../mail/classify.js";
import { smtpOptions } from "../mail/transport.js";
import { describeStoreError, serverId } from "../offsite/copies.js";
import { objectKey, openStore } from "../offsite/store.js";
import { serverVersion, toolFor } from "../pgtools/tools.js";
import { redactText, redactUrl } from "../redact.js";
import { dumpRangeCheck } from "./dump-range.js";
import { restoreChecks } from "./restore.js";

export type Verdict = "OK" | "WARN" | "FAIL";

export interface Check {
  verdict: Verdict;
  name: string;
  detail: string;
}

const ok = (name: string, detail: string): Check => ({ verdict: "OK", name, detail });
const warn = (name: string, detail: string): Check => ({ verdict: "WARN", name, detail });
const fail = (name: string, detail: string): Check => ({ verdict: "FAIL", name, detail });

async function databaseChecks(url: string): Promise<Check[]> {
  try {
    return await withClient(url, async (c) => {
      const checks: Check[] = [];
      const { rows } = await c.query<{ version: string; skew: number }>(
        "select current_setting('server_version') as version, extract(epoch from now())::float8 * 1000 - $1::float8 as skew",
        [Date.now()],
      );
      checks.push(ok("database", `reachable: PostgreSQL ${rows[0]!.version} at ${redactUrl(url)}`));
      const skew = Math.abs(rows[0]!.skew);
      checks.push(
        skew > 60_000
          ? fail("clock", `this machine's clock is ${(skew / 1000).toFixed(0)} s off the database's: fix NTP (cron, retention and ages depend on it)`)
          : skew > 5_000
            ? warn("clock", `this machine's clock is ${(skew / 1000).toFixed(1)} s off the database's`)
            : ok("clock", `within ${(skew / 1000).toFixed(2)} s of the database's`),
      );
      const gw = await c
        .query<{ id: number | null }>(
          "select case when to_regclass('graphile_worker.migrations') is null then null else (select max(id) from graphile_worker.migrations) end as id",
        )
        .catch(() => ({ rows: [{ id: null }] }));
      const graphile = gw.rows[0]?.id;
      checks.push(
        graphile ? ok("queue", `graphile-worker schema at migration ${graphile}`) : fail("queue", "no graphile_worker schema: run pmt-worker migrate"),
      );
      // No pmt_jobs.migration table: nothing applied.
      const ours = await c.query<{ name: string }>("select name from pmt_jobs.migration").catch(() => ({ rows: [] as { name: string }[] }));
      const applied = new Set(ours.rows.map((r) => r.name));
      const pending = migrationNames().filter((n) => !applied.has(n));
      checks.push(
        pending.length === 0
          ? ok("migrations", `pmt_jobs schema up to date (${applied.size} migrations)`)
          : applied.size === 0
            ? fail("migrations", "no pmt_jobs schema: run pmt-worker migrate")
            : warn("migrations", `${pending.length} pending (${pending.join(", ")}): run pmt-worker migrate`),
      );
      checks.push(...(await securityChecks(c)));
      return checks;
    });
  } catch (error) {
    return [fail("database", `cannot connect to ${redactUrl(url)}: ${redactText(errorMessage(error))}`)];
  }
}

/** Whatever lets another role run code as the worker (src/db/security.ts): one WARN each, or one OK line. */
async function securityChecks(c: pg.Client): Promise<Check[]> {
  try {
    const findings = await doctorFindings(c);
    if (findings.length) return findings.map((f) => warn(f.name, f.detail));
    return [
      ok("privileges", "schema public is not writable by PUBLIC or PMT's application roles; PMT's tables are the DBA's, without row-level security policies"),
    ];
  } catch (error) {
    return [warn("privileges", `could not read the privileges from the catalogs: ${redactText(errorMessage(error))}`)];
  }
}

async function toolChecks(config: Config, databaseUrl: string): Promise<Check[]> {
  const checks: Check[] = [];
  for (const target of backupTargets(databaseUrl, config.backup)) {
    try {
      const server = await withClient(target.url, serverVersion);
      const dump = toolFor("pg_dump", server, config.backup.pgBinDir);
      const restore = toolFor("pg_restore", server, config.backup.pgBinDir);
      checks.push(ok(`pg_dump ${target.database}`, `pg_dump ${dump.version} (${dump.path}) and pg_restore ${restore.version} for server ${server.version}`));
    } catch (error) {
      checks.push(fail(`pg_dump ${target.database}`, redactText(errorMessage(error))));
    }
  }
  return checks;
}

function backupDirCheck(config: Config): Check[] {
  const dir = config.backup.dir;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const probe = path.join(dir, `.pmt-worker-probe-${process.pid}`);
    fs.writeFileSync(probe, "probe", { mode: 0o600 });
    fs.rmSync(probe);
  } catch (error) {
    return [fail("backup dir", `${dir} is not writable: ${errorMessage(error)}`)];
  }
  const checks: Check[] = [];
  const mode = fs.statSync(dir).mode & 0o777;
  if (mode & 0o077) checks.push(warn("backup dir", `${dir} is mode ${mode.toString(8)}: others can read the backups; chmod 700 it`));
  const free = freeBytes(dir);
  checks.push(
    free < config.offsite.minFreeBytes
      ? warn("backup space", `${humanBytes(free)} free in ${dir}, below BACKUP_MIN_FREE_MB (${humanBytes(config.offsite.minFreeBytes)})`)
      : ok("backup space", `${dir} writable, ${humanBytes(free)} free`),
  );
  return checks;
}

async function smtpCheck(config: Config): Promise<Check> {
  if (!config.smtpUrl) return ok("smtp", `no SMTP_URL: export mails go to ${path.join(config.pmtHome, "outbox")}`);
  const options = { ...smtpOptions(config.smtpUrl, config.smtpCaFile), pool: false };
  const transport = nodemailer.createTransport(options);
  try {
    await transport.verify();
    return ok("smtp", `${options.host}:${options.port} answers${options.auth ? " and accepts the login" : ""} (no mail sent)`);
  } catch (error) {
    return fail("smtp", `${options.host}:${options.port}: ${classifySmtpError(error).reason}`);
  } finally {
    transport.close();
  }
}

async function offsiteCheck(config: Config, databaseUrl: string): Promise<Check> {
  if (!config.offsite.url) return warn("offsite", "no OFFSITE_URL: backups stay on this machine only");
  let description = redactUrl(config.offsite.url);
  try {
    const store = openStore(config.offsite.url, config.offsite);
    description = store.description;
    const key = objectKey(store.prefix, serverId(config, databaseUrl), `.pmt-worker-probe-${crypto.randomBytes(6).toString("hex")}`);
    await store.putText(key, "probe");
    const head = await store.head(key);
    await store.remove(key);
    if (!head) throw new Error("the probe object was not there after writing it");
    return ok("offsite", `${description} reachable and writable (probe written and deleted)`);
  } catch (error) {
    return fail("offsite", `${description}: ${describeStoreError(error)}`);
  }
}

/** Copies leave the server: encrypted to valid recipients, or a warning that the bucket can read the database. */
async function encryptionCheck(config: Config): Promise<Check | undefined> {
  if (!config.offsite.url) return undefined;
  const recipients = config.offsite.encryptTo;
  if (!recipients) {
    return warn("encryption", "BACKUP_ENCRYPT_TO is not set: copies in the store are plain pg_dump archives, readable by whoever can read the bucket");
  }
  try {
    const age = await import("../io/age.js");
    await age.checkRecipients(recipients);
    const what = `${config.offsite.encryptLocal ? "backups and copies" : "copies"} encrypted with age to ${recipients.length} recipient${recipients.length === 1 ? "" : "s"}`;
    if (!config.offsite.encryptLocal || !config.offsite.identityFile) return ok("encryption", what);
    // The test restore's key must open what is written now.
    const mine = await age.recipientsOf(await age.readIdentityFile(config.offsite.identityFile, "BACKUP_IDENTITY_FILE"));
    if (!mine.some((r) => recipients.includes(r))) {
      return fail("encryption", `BACKUP_IDENTITY_FILE holds no identity of BACKUP_ENCRYPT_TO's recipients: the test restore could not decrypt the backups`);
    }
    return ok("encryption", `${what}; BACKUP_IDENTITY_FILE opens them (test restore)`);
  } catch (error) {
    return fail("encryption", errorMessage(error));
  }
}

function dropDirCheck(config: Config): Check | undefined {
  if (!config.dropDir) return undefined;
  const dir = config.dropDir;
  try {
    fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    return fail("drop folder", `${dir}: this user cannot read, write and enter it (files must be moved out of it)`);
  }
  const mode = fs.statSync(dir).mode;
  if ((mode & 0o002) !== 0 && (mode & 0o1000) === 0) {
    return warn(
      "drop folder",
      `${dir} is world-writable without the sticky bit (mode ${(mode & 0o7777).toString(8)}): anyone can replace a file being mailed; chmod 1733 or restrict the group`,
    );
  }
  return ok("drop folder", `${dir} readable and writable`);
}

/**
 * One served database's checks, when doctor covers several: reachable, clock,
 * schemas, privileges, and pg_dump and restores for what it backs up.
 */
export async function instanceChecks(config: Config, databaseUrl: string): Promise<Check[]> {
  const checks = await databaseChecks(databaseUrl);
  if (checks[0]?.verdict !== "FAIL") checks.push(...(await toolChecks(config, databaseUrl)), ...(await restoreChecks(config, databaseUrl)));
  return checks;
}

/**
 * The checks of this machine, once whatever the databases: pg_dump's range,
 * BACKUP_DIR, SMTP, the offsite store (probed under `databaseUrl`'s server
 * folder), the drop folder.
 */
export async function machineChecks(config: Config, databaseUrl: string): Promise<Check[]> {
  const checks = [dumpRangeCheck(config), ...backupDirCheck(config), await smtpCheck(config), await offsiteCheck(config, databaseUrl)];
  const encryption = await encryptionCheck(config);
  if (encryption) checks.push(encryption);
  const drop = dropDirCheck(config);
  if (drop) checks.push(drop);
  return checks;
}

/** One database: its checks and the machine's, in the order doctor has always printed them. */
export async function runChecks(config: Config, databaseUrl: string): Promise<Check[]> {
  const checks = await databaseChecks(databaseUrl);
  checks.push(dumpRangeCheck(config));
  if (checks[0]?.verdict !== "FAIL") checks.push(...(await toolChecks(config, databaseUrl)), ...(await restoreChecks(config, databaseUrl)));
  checks.push(...backupDirCheck(config));
  checks.push(await smtpCheck(config));
  checks.push(await offsiteCheck(config, databaseUrl));
  const encryption = await encryptionCheck(config);
  if (encryption) checks.push(encryption);
  const drop = dropDirCheck(config);
  if (drop) checks.push(drop);
  return checks;
}

export function formatChecks(checks: Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  return checks.map((c) => `${c.verdict.padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}\n`).join("");
}
