/**
 * `backup restore --with-roles`: puts a backup's globals (globals.ts) back on
 * the server it is restored to. Before pg_restore: the roles that are
 * missing, with their attributes and settings (never a password: login roles
 * are reported so that someone sets one), and the memberships that are
 * missing, all in one transaction. After it: the database's owner, ACL and
 * settings, and the roles' settings in it. Roles that exist are left exactly
 * as they are.
 *
 * pg_restore then keeps owners and grants, which needs more than the worker's
 * role has: creating roles needs CREATEROLE, and giving an object to another
 * role (ALTER .. OWNER TO) needs a superuser or a member of that role. Both
 * are checked before anything is created, so that a restore that cannot work
 * says so at once ("run it as postgres on the new server").
 */
import type pg from "pg";
import { UserError, errorMessage } from "../errors.js";
import {
  OWNER_REASONS,
  createRoleStatement,
  databaseStatements,
  isPredefined,
  membershipStatement,
  roleSettingStatements,
  type GlobalRole,
  type Globals,
} from "./globals.js";

export interface RolesApplied {
  /** Roles created from the globals file. */
  created: string[];
  /** Roles that were already there: left as they are. */
  existing: string[];
  /** Created roles that can log in and have no password yet. */
  withoutPassword: string[];
  /** Memberships granted (those already there are not counted). */
  memberships: number;
  /** What was not applied, each with why. */
  skipped: string[];
}

interface Restorer {
  name: string;
  superuser: boolean;
  createrole: boolean;
  v16: boolean;
}

async function restorer(client: pg.ClientBase): Promise<Restorer> {
  const { rows } = await client.query<Omit<Restorer, "v16"> & { num: string }>(
    `select rolname as name, rolsuper as superuser, rolcreaterole as createrole, current_setting('server_version_num') as num
       from pg_catalog.pg_roles where rolname = current_user`,
  );
  const { num, ...me } = rows[0]!;
  return { ...me, v16: Number(num) >= 160000 };
}

const RUN_AS_SUPERUSER = "run the restore as a superuser, e.g. as postgres on the new server (DATABASE_URL=postgres://postgres@/<database>)";

/** What --with-roles needs and this role lacks, found before anything is created. */
async function checkRestorer(client: pg.ClientBase, me: Restorer, globals: Globals, missing: GlobalRole[]): Promise<void> {
  if (me.superuser) return;
  if (missing.length && !me.createrole) {
    throw new UserError(
      `--with-roles must create the roles ${missing.map((r) => r.name).join(", ")}, missing on this server, and role ${me.name} may not create roles: ` +
        `--with-roles needs a superuser or a role with CREATEROLE; ${RUN_AS_SUPERUSER}. Nothing was created`,
    );
  }
  // ALTER .. OWNER TO needs membership in the new owner (SET from 16 on); a role created now is not one of ours.
  const owners = globals.roles.filter((r) => r.referenced.some((why) => OWNER_REASONS.includes(why))).map((r) => r.name);
  const { rows } = await client.query<{ name: string }>(
    `select o.name from unnest($1::text[]) o(name)
      where not exists (select from pg_catalog.pg_roles r where r.rolname = o.name and pg_catalog.pg_has_role(current_user, r.oid, $2))`,
    [owners, me.v16 ? "SET" : "MEMBER"],
  );
  if (rows.length) {
    throw new UserError(
      `--with-roles gives the restored objects back to their owners, and only a superuser or a member of the owning role may (ALTER ... OWNER TO): ` +
        `role ${me.name} is neither for ${rows.map((r) => r.name).join(", ")}; ${RUN_AS_SUPERUSER}. Nothing was created`,
    );
  }
}

async function exists(client: pg.ClientBase, role: string): Promise<boolean> {
  return (await client.query("select from pg_catalog.pg_roles where rolname = $1", [role])).rowCount! > 0;
}

async function isMember(client: pg.ClientBase, role: string, member: string): Promise<boolean> {
  const { rowCount } = await client.query(
    `select from pg_catalog.pg_auth_members a
       join pg_catalog.pg_roles g on g.oid = a.roleid join pg_catalog.pg_roles m on m.oid = a.member
      where g.rolname = $1 and m.rolname = $2`,
    [role, member],
  );
  return rowCount! > 0;
}

/** Attributes only a superuser may give, left out (and reported) when the restoring role is not one. */
function privilegedAttributes(role: GlobalRole): string[] {
  return [role.superuser && "SUPERUSER", role.replication && "REPLICATION", role.bypassrls && "BYPASSRLS"].filter((a): a is string => !!a);
}

/**
 * Before pg_restore, on any database of the new server: the missing roles
 * and memberships, in one transaction (all or nothing). Fails with a
 * UserError, creating nothing, when this role cannot do what --with-roles
 * needs.
 */
export async function applyRoles(client: pg.ClientBase, globals: Globals): Promise<RolesApplied> {
  const me = await restorer(client);
  const present = new Set(
    (await client.query<{ rolname: string }>("select rolname from pg_catalog.pg_roles where rolname = any($1)", [globals.roles.map((r) => r.name)])).rows.map(
      (r) => r.rolname,
    ),
  );
  const missing = globals.roles.filter((r) => !present.has(r.name));
  await checkRestorer(client, me, globals, missing);

  const result: RolesApplied = { created: [], existing: [...present].sort(), withoutPassword: [], memberships: 0, skipped: [] };
  await client.query("begin");
  try {
    for (const role of missing) {
      await client.query(createRoleStatement(role, me.superuser));
      for (const statement of roleSettingStatements(role)) await client.query(statement);
      result.created.push(role.name);
      if (role.login) result.withoutPassword.push(role.name);
      const left = me.superuser ? [] : privilegedAttributes(role);
      if (left.length) result.skipped.push(`${role.name}: created without ${left.join(", ")} (only a superuser may give it)`);
    }
    for (const m of globals.memberships) {
      // A predefined role of a newer server may not exist here; every other role does by now.
      const absent = [];
      for (const r of [m.role, m.member].filter(isPredefined)) if (!(await exists(client, r))) absent.push(r);
      if (absent.length) {
        result.skipped.push(`${m.member} member of ${m.role}: role ${absent.join(", ")} does not exist on this server`);
        continue;
      }
      if (await isMember(client, m.role, m.member)) continue;
      await client.query(membershipStatement(m, me.v16));
      result.memberships++;
    }
    await client.query("commit");
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw new UserError(`could not create the roles of the backup (nothing was created: one transaction): ${errorMessage(error)}`, { cause: error });
  }
  return result;
}

/**
 * After pg_restore: the database's owner, ACL and settings, and the roles'
 * settings in it, in one transaction. The caller drops the database when
 * this fails.
 */
export async function applyDatabaseLevel(client: pg.ClientBase, globals: Globals, into: string): Promise<void> {
  await client.query("begin");
  try {
    for (const statement of databaseStatements(globals, into)) await client.query(statement);
    await client.query("commit");
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw new Error(`could not set the owner, privileges and settings of database ${into}: ${errorMessage(error)}`, { cause: error });
  }
}
