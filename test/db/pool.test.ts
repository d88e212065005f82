/** Every session of ours starts with the fixed search_path and row_security off, keeping the URL's own options. */
import { describe, expect, it } from "vitest";
import { createPool, withClient } from "../../src/db/pool.js";
import { createTestDatabase } from "../harness/db.js";

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
