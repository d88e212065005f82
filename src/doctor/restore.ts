/**
 * `doctor`: can this worker restore, and did its last test restore pass?
 * Restores (and the weekly test restore) create a new database on the server
 * of the backed-up one, so the role needs CREATEDB there; an extension only a
 * superuser may create (PostGIS) must already be in template1. A test restore
 * that failed is a FAIL until one passes.
 */
import { lastTestRestores } from "../backups/catalog.js";
import { sqlName } from "../backups/restore.js";
import { backupTargets } from "../backups/target.js";
import type { Config } from "../config.js";
import { withClient } from "../db/pool.js";
import { errorMessage } from "../errors.js";
import { redactText } from "../redact.js";
import type { Check } from "./checks.js";

interface Privileges {
  role: string;
  createdb: boolean;
  superuser: boolean;
  /** Extensions in the database that the role could not create in a new one. */
  untrusted: string[];
}

async function privileges(url: string): Promise<Privileges> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ role: string; createdb: boolean; superuser: boolean; untrusted: string[] }>(
      `select current_user as role, r.rolcreatedb as createdb, r.rolsuper as superuser,
              array(select e.extname::text from pg_catalog.pg_extension e
                    join pg_catalog.pg_available_extension_versions v on v.name = e.extname and v.version = e.extversion
                    where not v.trusted and e.extname <> 'plpgsql' order by 1) as untrusted
       from pg_catalog.pg_roles r where r.rolname = current_user`,
    );
    return rows[0]!;
  });
}

/** The extensions of `names` that template1 lacks (new databases are copies of it). */
async function missingInTemplate(url: string, names: string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const template = new URL(url);
  template.pathname = "/template1";
  return withClient(template.toString(), async (c) => {
    const { rows } = await c.query<{ extname: string }>("select extname from pg_catalog.pg_extension");
    const present = new Set(rows.map((r) => r.extname));
    return names.filter((n) => !present.has(n));
  });
}

async function privilegeCheck(config: Config, url: string, database: string): Promise<Check> {
  const name = `restore ${database}`;
  const scheduled = config.backup.testRestoreCron !== "off";
  const p = await privileges(url);
  if (!p.createdb && !p.superuser) {
    const detail = `role ${p.role} may not create databases: backup restore${scheduled ? " and the weekly test restore" : ""} will fail ("permission denied to create database"). As a superuser: alter role ${sqlName(p.role)} createdb;`;
    return { verdict: scheduled ? "FAIL" : "WARN", name, detail };
  }
  const missing = p.superuser ? [] : await missingInTemplate(url, p.untrusted);
  if (missing.length) {
    return {
      verdict: scheduled ? "FAIL" : "WARN",
      name,
      detail: `${database} uses ${missing.join(", ")}, which only a superuser may create, and template1 lacks ${missing.length === 1 ? "it" : "them"}: restores will fail. As a superuser: ${missing.map((e) => `create extension ${e};`).join(" ")} in template1`,
    };
  }
  return {
    verdict: "OK",
    name,
    detail: `role ${p.role} may create databases (restores and test restores)${p.untrusted.length ? `; ${p.untrusted.join(", ")} in template1` : ""}`,
  };
}

export async function restoreChecks(config: Config, databaseUrl: string): Promise<Check[]> {
  const targets = backupTargets(databaseUrl, config.backup);
  const checks: Check[] = [];
  for (const target of targets) {
    try {
      checks.push(await privilegeCheck(config, target.url, target.database));
    } catch (error) {
      checks.push({ verdict: "WARN", name: `restore ${target.database}`, detail: `could not read the role's privileges: ${redactText(errorMessage(error))}` });
    }
  }
  try {
    const last = await withClient(databaseUrl, (c) =>
      lastTestRestores(
        c,
        targets.map((t) => t.database),
      ),
    );
    for (const t of last) {
      const when = t.tested_at.toISOString().replace(/\.\d{3}Z$/, "Z");
      checks.push(
        t.ok
          ? { verdict: "OK", name: `test restore ${t.database}`, detail: `backup ${t.backup_id} restored and its row counts matched at ${when}` }
          : {
              verdict: "FAIL",
              name: `test restore ${t.database}`,
              detail: `backup ${t.backup_id} FAILED at ${when}: ${redactText((t.error ?? "").split("\n")[0]!)}; fix it, then pmt-worker backup test-restore`,
            },
      );
    }
  } catch {
    // No pmt_jobs schema yet: the migrations check says so.
  }
  return checks;
}
