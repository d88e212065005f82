/**
 * Every session of ours starts with the fixed search_path and row_security
 * off, keeping the URL's own options; and survives the server ending it while
 * idle (a restart's FATAL "terminating connection due to administrator
 * command" makes pg emit 'error' on the client, and with no listener Node ends
 * the whole worker: CI saw a worker die so when PostgreSQL restarted while its
 * health ping's connection was closing). The failure must reach the next query.
 */
import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { clientConfig, createPool, openClient, withClient } from "../../src/db/pool.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";

describe("sessions of the worker and the CLI", () => {
  it("use search_path pg_catalog, pg_temp and row_security off, over the role's settings and beside the URL's options", async () => {
    const db = await createTestDatabase();
    // A role or database default must not win: startup options come after them.
    await db.pool.query(`alter database ${db.name} set search_path = public`);
    const url = new URL(db.url);
    url.searchParams.set("options", "-c statement_timeout=4321");
    const pool = createPool(url.toString(), { max: 1 });
    try {
      const { rows } = await pool.query(
        "select current_setting('search_path') as path, current_setting('row_security') as rls, current_setting('statement_timeout') as timeout",
      );
      expect(rows[0]).toEqual({ path: "pg_catalog, pg_temp", rls: "off", timeout: "4321ms" });
    } finally {
      await pool.end();
    }
    const single = await withClient(db.url, async (c) => (await c.query("select current_setting('search_path') as path")).rows[0].path);
    expect(single).toBe("pg_catalog, pg_temp");
    // The harness's own pool plays PMT's application: the database's default.
    const caller = await createTestDatabase();
    expect((await caller.pool.query("select current_setting('search_path') as path")).rows[0].path).toBe('"$user", public');
  });
});

let idle: TestDatabase;

async function terminate(pid: number): Promise<void> {
  const { rows } = await idle.pool.query<{ ok: boolean }>("select pg_terminate_backend($1) as ok", [pid]);
  expect(rows[0]?.ok).toBe(true);
}

/** Resolves once `client` has seen its session end (pg emits 'error', then 'end'). */
function ended(client: { once(event: "end", fn: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => client.once("end", () => resolve()));
}

describe("connections the server ends while idle", () => {
  beforeAll(async () => {
    idle = await createTestDatabase();
  });

  it("a client of our own survives and fails its next query", async () => {
    const client = openClient(clientConfig(idle.url));
    await client.connect();
    const pid = (await client.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid;
    const gone = ended(client);
    await terminate(pid);
    await gone;
    await expect(client.query("select 1")).rejects.toThrow();
    await client.end().catch(() => {});
  });

  it("a pool's checked-out client survives too", async () => {
    const pool = createPool(idle.url, { max: 1 });
    try {
      const client = await pool.connect();
      const pid = (await client.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid;
      const gone = ended(client);
      await terminate(pid);
      await gone;
      await expect(client.query("select 1")).rejects.toThrow();
      client.release(true);
      // The pool opens a new session for the next caller.
      expect((await pool.query<{ one: number }>("select 1 as one")).rows[0]!.one).toBe(1);
    } finally {
      await pool.end();
    }
  });

  it("src/ opens connections only through openClient or createPool", () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (file.endsWith(".ts") && file !== path.join("src", "db", "pool.ts")) {
          const text = fs.readFileSync(file, "utf8");
          if (/new\s+(pg\.)?(Client|Pool)\s*\(/.test(text)) offenders.push(file);
        }
      }
    };
    walk("src");
    expect(offenders).toEqual([]);
  });
});
