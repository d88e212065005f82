/** The globals file's SQL (backups/globals.ts): settings as pg_dump writes them, roles, memberships, the database's ACL. */
import { describe, expect, it } from "vitest";
import {
  createRoleStatement,
  databaseStatements,
  globalsSql,
  membershipStatement,
  setClause,
  splitNameList,
  type GlobalRole,
  type Globals,
} from "../../src/backups/globals.js";

const role = (name: string, extra: Partial<GlobalRole> = {}): GlobalRole => ({
  name,
  superuser: false,
  login: false,
  inherit: true,
  createrole: false,
  createdb: false,
  replication: false,
  bypassrls: false,
  connection_limit: -1,
  valid_until: null,
  settings: [],
  database_settings: [],
  referenced: ["owner"],
  ...extra,
});

describe("settings", () => {
  it("splits a list setting as pg_dump's SplitGUCList does, and quotes each element as a literal", () => {
    expect(splitNameList('"$user", public, "Odd ""x"" Schema"')).toEqual(["$user", "public", 'Odd "x" Schema']);
    expect(splitNameList('""')).toEqual([""]);
    expect(splitNameList("")).toEqual([]);
    expect(splitNameList('"open')).toBeUndefined();
    expect(setClause('search_path="$user", public')).toBe(`SET "search_path" TO '$user', 'public'`);
    expect(setClause("work_mem=8MB")).toBe(`SET "work_mem" TO '8MB'`);
    expect(setClause("application_name=it's a \\ test")).toBe(`SET "application_name" TO E'it''s a \\\\ test'`);
    expect(setClause("pmt.note=a=b")).toBe(`SET "pmt.note" TO 'a=b'`);
  });
});

describe("roles and memberships", () => {
  it("gives what only a superuser may give only when asked to", () => {
    const admin = role("dba", { superuser: true, login: true, replication: true, connection_limit: 3, valid_until: "infinity" });
    expect(createRoleStatement(admin)).toBe(
      `CREATE ROLE "dba" SUPERUSER LOGIN INHERIT NOCREATEROLE NOCREATEDB REPLICATION NOBYPASSRLS CONNECTION LIMIT 3 VALID UNTIL 'infinity'`,
    );
    expect(createRoleStatement(admin, false)).toBe(
      `CREATE ROLE "dba" NOSUPERUSER LOGIN INHERIT NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 3 VALID UNTIL 'infinity'`,
    );
  });

  it("writes INHERIT and SET only where both servers know them (16 and later)", () => {
    expect(membershipStatement({ role: "pmt_app", member: "pmt_write", admin_option: false }, true)).toBe(`GRANT "pmt_app" TO "pmt_write"`);
    expect(membershipStatement({ role: "g", member: "m", admin_option: true, inherit_option: false, set_option: true }, true)).toBe(
      `GRANT "g" TO "m" WITH ADMIN TRUE, INHERIT FALSE, SET TRUE`,
    );
    expect(membershipStatement({ role: "g", member: "m", admin_option: true, inherit_option: false, set_option: true }, false)).toBe(
      `GRANT "g" TO "m" WITH ADMIN OPTION`,
    );
  });
});

describe("the database's own statements", () => {
  const globals = (acl: Globals["database_level"]["acl"]): Globals => ({
    kind: "pmt-worker globals",
    version: 1,
    database: "pmt",
    taken_at: "2026-01-01T00:00:00.000Z",
    server_version: "15.18",
    roles: [role("dba"), role("pmt_app", { database_settings: ["work_mem=16MB"] })],
    memberships: [],
    database_level: { owner: "dba", acl, settings: ["statement_timeout=5min"] },
    sql: "",
  });
  const owner = (["CREATE", "TEMPORARY", "CONNECT"] as const).map((privilege) => ({ grantee: "dba", privilege, grantable: false }));

  it("replaces the defaults with the captured ACL: PUBLIC's privileges revoked unless it had them", () => {
    expect(databaseStatements(globals([...owner, { grantee: "pmt_app", privilege: "CONNECT", grantable: false }]), "pmt_new")).toEqual([
      `ALTER DATABASE "pmt_new" OWNER TO "dba"`,
      `REVOKE ALL ON DATABASE "pmt_new" FROM PUBLIC`,
      `GRANT CONNECT ON DATABASE "pmt_new" TO "pmt_app"`,
      `ALTER DATABASE "pmt_new" SET "statement_timeout" TO '5min'`,
      `ALTER ROLE "pmt_app" IN DATABASE "pmt_new" SET "work_mem" TO '16MB'`,
    ]);
    const defaults = globals([
      { grantee: null, privilege: "TEMPORARY", grantable: false },
      { grantee: null, privilege: "CONNECT", grantable: false },
      ...owner,
    ]);
    expect(databaseStatements(defaults, "x").slice(1, 3)).toEqual([
      `REVOKE ALL ON DATABASE "x" FROM PUBLIC`,
      `GRANT TEMPORARY, CONNECT ON DATABASE "x" TO PUBLIC`,
    ]);
  });

  it("revokes from the owner what it had revoked from itself, and keeps grant options", () => {
    const acl = [
      { grantee: "dba", privilege: "CONNECT" as const, grantable: false },
      { grantee: "pmt_app", privilege: "CONNECT" as const, grantable: true },
    ];
    expect(databaseStatements(globals(acl), "x").slice(1, 5)).toEqual([
      `REVOKE ALL ON DATABASE "x" FROM PUBLIC`,
      `REVOKE ALL ON DATABASE "x" FROM "dba"`,
      `GRANT CONNECT ON DATABASE "x" TO "dba"`,
      `GRANT CONNECT ON DATABASE "x" TO "pmt_app" WITH GRANT OPTION`,
    ]);
  });

  it("keeps a name with a line break inside its comment line", () => {
    const g = globals(owner);
    g.roles.push(role("evil\nDROP DATABASE pmt;"));
    const sql = globalsSql(g, "pmt");
    expect(sql).toContain("-- evil?DROP DATABASE pmt;: owner\n");
    expect(sql.split("\n").filter((l) => l.startsWith("DROP"))).toEqual([
      // Inside the literal and the quoted identifier: the line break is the name's.
      "DROP DATABASE pmt;') THEN",
      `DROP DATABASE pmt;" NOSUPERUSER NOLOGIN INHERIT NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS;`,
    ]);
  });
});
