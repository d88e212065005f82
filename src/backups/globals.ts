/**
 * The globals file: what a dump of one database leaves out because it lives
 * in the whole server (cluster), so that a restore on a new server can put
 * back its owners and grants. pg_dump dumps objects, their owners' names and
 * their GRANTs, but not the roles themselves, their memberships and
 * settings, nor the database's own owner, privileges and settings; without
 * them pg_restore can only drop owners and grants (--no-owner
 * --no-privileges), and PMT comes back without pmt_app's EXECUTE on
 * pmt_filter_csv. Every backup run writes `<backup>.globals.json` beside the
 * dump (0600, atomically); the manifest records its sha256.
 *
 * The file is JSON (version 1):
 * ```
 * { "kind": "pmt-worker globals", "version": 1,
 *   "database": "pmt",                    // the backed-up database
 *   "taken_at": "2026-11-26T00:00:03.000Z", "server_version": "15.18",
 *   "roles": [{                           // every role the database references (below); never pg_* roles
 *     "name": "pmt_worker", "superuser": false, "login": true, "inherit": true, "createrole": false,
 *     "createdb": true, "replication": false, "bypassrls": false, "connection_limit": -1,
 *     "valid_until": null,                // or ISO 8601 / "infinity"
 *     "settings": ["work_mem=8MB"],       // ALTER ROLE .. SET, all databases (pg_db_role_setting's "name=value")
 *     "database_settings": [],            // ALTER ROLE .. IN DATABASE <this one> SET
 *     "referenced": ["owner"] }],         // why it is here: owner, privileges, policy, initial privileges,
 *                                         // database owner, database privileges, "member of X", "has member X"
 *   "memberships": [{ "role": "pg_read_all_data", "member": "pmt_worker", "admin_option": false }],
 *                                         // + inherit_option, set_option from PostgreSQL 16 on
 *   "database_level": {                   // the database itself (pg_dump leaves it out without --create)
 *     "owner": "postgres",
 *     "acl": [{ "grantee": null, "privilege": "CONNECT", "grantable": false }],  // null = PUBLIC; the whole
 *                                         // ACL, defaults included: what is not in it was revoked
 *     "settings": ["statement_timeout=5min"] },                                // ALTER DATABASE .. SET
 *   "sql": "..." }                        // globalsSql(): the same as SQL to read, or run with psql
 * ```
 * No password, hashed or not, is ever read (pg_roles, not pg_authid): a
 * re-created login role has none until someone sets one.
 *
 * Which roles: those pg_shdepend records for this database (owners, grantees
 * and grantors of privileges, policy roles), the database's own owner and
 * grantees, the bootstrap superuser when it owns objects here, in a database
 * pmt-worker serves (schema pmt_jobs) its group roles pmt_app and pmt_backup
 * (migrate needs both on the server, referenced or not), then, through
 * pg_auth_members, the groups they are members of (the privileges they
 * inherit) and their members (who logs in as them: pmt_write, member of
 * pmt_app). Predefined roles (pg_*) exist on every server: never created,
 * but memberships in them are kept (pmt_worker in pg_read_all_data).
 * Capture: globals-capture.ts; putting back: globals-apply.ts.
 */
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { z } from "zod/v3";
import { UserError, errorMessage } from "../errors.js";
import { sha256Of } from "../io/measure.js";
import { writeFileAtomic } from "./files.js";

export interface GlobalRole {
  name: string;
  superuser: boolean;
  login: boolean;
  inherit: boolean;
  createrole: boolean;
  createdb: boolean;
  replication: boolean;
  bypassrls: boolean;
  connection_limit: number;
  valid_until: string | null;
  /** `name=value`, as pg_db_role_setting holds them: ALTER ROLE .. SET, all databases. */
  settings: string[];
  /** ALTER ROLE .. IN DATABASE <the backed-up one> SET. */
  database_settings: string[];
  /** Why the role is in the file. */
  referenced: string[];
}

export interface GlobalMembership {
  role: string;
  member: string;
  admin_option: boolean;
  /** PostgreSQL 16 and later. */
  inherit_option?: boolean;
  set_option?: boolean;
}

export type DatabasePrivilege = "CREATE" | "TEMPORARY" | "CONNECT";

export interface DatabaseLevel {
  owner: string;
  /** The database's whole ACL (defaults included); grantee null is PUBLIC. */
  acl: { grantee: string | null; privilege: DatabasePrivilege; grantable: boolean }[];
  /** ALTER DATABASE .. SET, as `name=value`. */
  settings: string[];
}

export interface Globals {
  kind: "pmt-worker globals";
  version: 1;
  database: string;
  taken_at: string;
  server_version: string;
  roles: GlobalRole[];
  memberships: GlobalMembership[];
  database_level: DatabaseLevel;
  sql: string;
}

/** Reasons that make a role an owner: restoring its objects needs `ALTER .. OWNER TO` it. */
export const OWNER_REASONS = ["owner", "database owner"];

/** Predefined roles (pg_read_all_data, pg_database_owner...) exist on every server and are never created. */
export function isPredefined(role: string): boolean {
  return role.startsWith("pg_");
}

export function globalsPath(backupPath: string): string {
  return `${backupPath}.globals.json`;
}

const name = z.string().min(1).max(63);
const setting = z.string().regex(/^[^=]+=/, 'expected "name=value"');
const roleSchema = z.object({
  name,
  superuser: z.boolean(),
  login: z.boolean(),
  inherit: z.boolean(),
  createrole: z.boolean(),
  createdb: z.boolean(),
  replication: z.boolean(),
  bypassrls: z.boolean(),
  connection_limit: z.number().int(),
  valid_until: z.string().nullable(),
  settings: z.array(setting),
  database_settings: z.array(setting),
  referenced: z.array(z.string()),
});
const globalsSchema = z
  .object({
    kind: z.literal("pmt-worker globals"),
    version: z.literal(1),
    database: name,
    taken_at: z.string(),
    server_version: z.string(),
    roles: z.array(roleSchema),
    memberships: z.array(
      z.object({ role: name, member: name, admin_option: z.boolean(), inherit_option: z.boolean().optional(), set_option: z.boolean().optional() }),
    ),
    database_level: z.object({
      owner: name,
      acl: z.array(z.object({ grantee: name.nullable(), privilege: z.enum(["CREATE", "TEMPORARY", "CONNECT"]), grantable: z.boolean() })),
      settings: z.array(setting),
    }),
    sql: z.string(),
  })
  .superRefine((g, ctx) => {
    // Every role a statement names must be created from the file, or be predefined.
    const known = new Set(g.roles.map((r) => r.name));
    const check = (role: string, where: (string | number)[]) => {
      if (!known.has(role) && !isPredefined(role)) ctx.addIssue({ code: "custom", path: where, message: `role ${role} is not in roles` });
    };
    g.memberships.forEach((m, i) => {
      check(m.role, ["memberships", i, "role"]);
      check(m.member, ["memberships", i, "member"]);
    });
    check(g.database_level.owner, ["database_level", "owner"]);
    g.database_level.acl.forEach((a, i) => a.grantee !== null && check(a.grantee, ["database_level", "acl", i, "grantee"]));
  }) satisfies z.ZodType<Globals>;

/** A globals document read back (a file, an object of the offsite store): validated, or a UserError naming `label`. */
export function parseGlobals(text: string, label: string): Globals {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${label} is not a pmt-worker globals file: not JSON (${errorMessage(error)})`, { cause: error });
  }
  const parsed = globalsSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`);
    throw new UserError(`${label} is not a valid pmt-worker globals file (version 1): ${issues.join("; ")}`);
  }
  return parsed.data;
}

/** `<backup>.globals.json`, validated; a backup taken before globals were captured has none. */
export function readGlobals(backupPath: string): Globals {
  const file = globalsPath(backupPath);
  if (!fs.existsSync(file)) {
    throw new UserError(
      `${file} does not exist: backup ${path.basename(backupPath)} has no globals file (taken before pmt-worker captured roles, or not copied with it), so --with-roles cannot restore its roles. ` +
        `Restore without --with-roles, or create the roles first (pg_dumpall --roles-only from the old server)`,
    );
  }
  return parseGlobals(fs.readFileSync(file, "utf8"), file);
}

/** Writes `<backup>.globals.json` (tmp, fsync, rename; 0600); returns what the manifest records. */
export function writeGlobals(backupPath: string, globals: Globals): { file: string; bytes: number; sha256: string; roles: string[] } {
  const file = globalsPath(backupPath);
  const text = JSON.stringify(globals, null, 2) + "\n";
  writeFileAtomic(file, text);
  return { file: path.basename(file), bytes: Buffer.byteLength(text), sha256: sha256Of(text), roles: globals.roles.map((r) => r.name) };
}

// --- SQL: one set of statements, for people (globalsSql) and for the restore (globals-apply.ts) ---

const id = (s: string) => pg.escapeIdentifier(s);
/** escapeLiteral writes ` E'..'` (a leading space) for a string with a backslash. */
const lit = (s: string) => pg.escapeLiteral(s).trimStart();

/** GUCs whose value is a list of names, each quoted on its own (pg_dump's variable_is_guc_list_quote). */
const LIST_SETTINGS = new Set([
  "local_preload_libraries",
  "search_path",
  "session_preload_libraries",
  "shared_preload_libraries",
  "temp_tablespaces",
  "unix_socket_directories",
]);

/** pg_dump's SplitGUCList: `"$user", public` -> ["$user", "public"]; undefined when it does not parse. */
export function splitNameList(value: string): string[] | undefined {
  const names: string[] = [];
  let i = 0;
  const space = () => {
    while (i < value.length && /\s/.test(value[i]!)) i++;
  };
  space();
  if (i === value.length) return names;
  for (;;) {
    let current = "";
    if (value[i] === '"') {
      i++;
      for (;;) {
        const end = value.indexOf('"', i);
        if (end < 0) return undefined;
        current += value.slice(i, end);
        i = end + 1;
        if (value[i] !== '"') break;
        current += '"';
        i++;
      }
    } else {
      const start = i;
      while (i < value.length && value[i] !== "," && !/\s/.test(value[i]!)) i++;
      if (i === start) return undefined;
      current = value.slice(start, i);
    }
    names.push(current);
    space();
    if (i === value.length) return names;
    if (value[i] !== ",") return undefined;
    i++;
    space();
  }
}

/** `work_mem=8MB` -> `SET "work_mem" TO '8MB'` (as pg_dump's makeAlterConfigCommand). */
export function setClause(item: string): string {
  const eq = item.indexOf("=");
  const [guc, value] = [item.slice(0, eq), item.slice(eq + 1)];
  const list = LIST_SETTINGS.has(guc.toLowerCase()) ? splitNameList(value) : undefined;
  const values = list ? list.map((v) => lit(v)).join(", ") : lit(value);
  return `SET ${id(guc)} TO ${values || "''"}`;
}

/** CREATE ROLE with the captured attributes; `privileged` false leaves out what only a superuser may give (reported by the caller). */
export function createRoleStatement(role: GlobalRole, privileged = true): string {
  const flag = (on: boolean, word: string) => (on ? word : `NO${word}`);
  const parts = [
    `CREATE ROLE ${id(role.name)}`,
    flag(role.superuser && privileged, "SUPERUSER"),
    flag(role.login, "LOGIN"),
    flag(role.inherit, "INHERIT"),
    flag(role.createrole, "CREATEROLE"),
    flag(role.createdb, "CREATEDB"),
    flag(role.replication && privileged, "REPLICATION"),
    flag(role.bypassrls && privileged, "BYPASSRLS"),
  ];
  if (role.connection_limit !== -1) parts.push(`CONNECTION LIMIT ${role.connection_limit}`);
  if (role.valid_until !== null) parts.push(`VALID UNTIL ${lit(role.valid_until)}`);
  return parts.join(" ");
}

/** ALTER ROLE .. SET for every database: only for a role just created (an existing one is left as it is). */
export function roleSettingStatements(role: GlobalRole): string[] {
  return role.settings.map((s) => `ALTER ROLE ${id(role.name)} ${setClause(s)}`);
}

/** GRANT group TO member, with the options the catalog had (INHERIT and SET only where both servers know them: 16+). */
export function membershipStatement(m: GlobalMembership, withOptions16: boolean): string {
  const grant = `GRANT ${id(m.role)} TO ${id(m.member)}`;
  if (withOptions16 && m.inherit_option !== undefined) {
    return `${grant} WITH ADMIN ${m.admin_option ? "TRUE" : "FALSE"}, INHERIT ${m.inherit_option ? "TRUE" : "FALSE"}, SET ${m.set_option === false ? "FALSE" : "TRUE"}`;
  }
  return m.admin_option ? `${grant} WITH ADMIN OPTION` : grant;
}

const ALL_DATABASE_PRIVILEGES: DatabasePrivilege[] = ["CREATE", "TEMPORARY", "CONNECT"];

/**
 * The database itself, once it exists: owner, the captured ACL instead of the
 * defaults (PUBLIC's CONNECT and TEMPORARY revoked unless it had them), ALTER
 * DATABASE SET, and each role's settings in it. Privileges are granted by the
 * role running them, not by their original grantor.
 */
export function databaseStatements(globals: Globals, into: string): string[] {
  const { owner, acl, settings } = globals.database_level;
  const db = id(into);
  const out = [`ALTER DATABASE ${db} OWNER TO ${id(owner)}`, `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`];
  const grantees = [...new Set(acl.map((a) => a.grantee))];
  for (const grantee of grantees) {
    const mine = acl.filter((a) => a.grantee === grantee);
    // The owner holds every privilege unless it revoked some of its own.
    if (grantee === owner) {
      if (ALL_DATABASE_PRIVILEGES.every((p) => mine.some((a) => a.privilege === p && !a.grantable))) continue;
      out.push(`REVOKE ALL ON DATABASE ${db} FROM ${id(owner)}`);
    }
    const to = grantee === null ? "PUBLIC" : id(grantee);
    for (const grantable of [false, true]) {
      const privileges = mine.filter((a) => a.grantable === grantable).map((a) => a.privilege);
      if (privileges.length) out.push(`GRANT ${privileges.join(", ")} ON DATABASE ${db} TO ${to}${grantable ? " WITH GRANT OPTION" : ""}`);
    }
  }
  for (const s of settings) out.push(`ALTER DATABASE ${db} ${setClause(s)}`);
  for (const role of globals.roles) for (const s of role.database_settings) out.push(`ALTER ROLE ${id(role.name)} IN DATABASE ${db} ${setClause(s)}`);
  return out;
}

/** Text for a `--` comment: a name with a line break (quoted names may have one) must not end the comment. */
const comment = (s: string) => s.replace(/\p{Cc}|[\u2028\u2029]/gu, "?");

/** A dollar-quote tag that does not occur in `body`. */
function dollarTag(body: string): string {
  for (let n = 0; ; n++) {
    const tag = n === 0 ? "$pmt$" : `$pmt${n}$`;
    if (!body.includes(tag)) return tag;
  }
}

/**
 * What `backup restore --with-roles` does, as SQL for psql (run it as a
 * superuser): part 1 before pg_restore, part 2 once the database exists and
 * is restored. Roles are created only when missing; existing roles keep their
 * attributes, settings and password.
 */
export function globalsSql(globals: Globals, into: string): string {
  const lines = [
    `-- Roles, memberships and database settings of database ${comment(globals.database)}, captured ${comment(globals.taken_at)}`,
    `-- from PostgreSQL ${comment(globals.server_version)} by pmt-worker. Run as a superuser with psql -X -v ON_ERROR_STOP=1:`,
    `-- part 1 in any database before pg_restore; part 2 after pg_restore --exit-on-error -d ${comment(into)} (without --no-owner`,
    `-- and --no-privileges). Restoring under another name, replace ${comment(id(into))} in part 2. No passwords are kept.`,
    "",
    "-- Part 1: roles (created only when missing; an existing role is left as it is), then memberships.",
  ];
  for (const role of globals.roles) {
    const body = [createRoleStatement(role), ...roleSettingStatements(role)];
    const test = `SELECT FROM pg_catalog.pg_roles WHERE rolname = ${lit(role.name)}`;
    const text = body.map((s) => `    ${s};`).join("\n");
    const tag = dollarTag(text + test);
    lines.push(
      `-- ${comment(role.name)}: ${comment(role.referenced.join(", "))}${role.login ? "; can log in: set its password (ALTER ROLE ... PASSWORD)" : ""}`,
    );
    lines.push(`DO ${tag} BEGIN\n  IF NOT EXISTS (${test}) THEN\n${text}\n  END IF;\nEND ${tag};`);
  }
  for (const m of globals.memberships) lines.push(`${membershipStatement(m, true)};`);
  lines.push("", `-- Part 2: the database ${comment(into)} itself, after pg_restore.`);
  for (const s of databaseStatements(globals, into)) lines.push(`${s};`);
  return lines.join("\n") + "\n";
}
