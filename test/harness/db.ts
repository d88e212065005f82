/**
 * A fresh database per test file on the run's PostgreSQL, dropped at the end.
 */
import crypto from "node:crypto";
import pg from "pg";
import { afterAll, inject } from "vitest";
import { createPool, type Pool } from "../../src/db/pool.js";

export interface TestDatabase {
  url: string;
  name: string;
  pool: Pool;
}

export function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject("adminUrl") });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** One statement as the run's admin role (create, drop or alter a database), on a connection of its own. */
export async function adminQuery(sql: string): Promise<void> {
  await admin((c) => c.query(sql));
}

/** Creates a database for this file; registers its drop in afterAll. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `pmt_test_${crypto.randomBytes(6).toString("hex")}`;
  await admin((c) => c.query(`create database ${name}`));
  const url = databaseUrl(inject("adminUrl"), name);
  // This pool plays PMT's application and psql (PostgreSQL's default
  // search_path, so tests may call pmt_filter_csv(...) unqualified); the
  // workers and CLIs under test open their own pools, with the fixed one.
  const pool = createPool(url, { max: 5, applicationName: "pmt-worker test", safeSearchPath: false });
  afterAll(async () => {
    await pool.end();
    await admin((c) => c.query(`drop database if exists ${name} with (force)`));
  });
  return { url, name, pool };
}

/** One query on a short-lived connection (for servers the harness does not own). */
export async function queryOnce<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/**
 * The guide's one-time DBA step: the group roles pmt_app and pmt_backup.
 * Roles are the whole server's, so another test file may create them at the
 * same moment: "already exists" is fine.
 */
export async function createGroupRoles(admin: Pick<pg.ClientBase, "query">): Promise<void> {
  for (const role of ["pmt_app", "pmt_backup"]) {
    await admin.query(`create role ${role} nologin`).catch((e: { code?: string }) => {
      if (e.code !== "42710" && e.code !== "23505") throw e;
    });
  }
}
