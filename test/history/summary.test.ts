/**
 * pmt_jobs.summarize_payload, the payload summary the capture trigger stores:
 * secrets removed, sizes bounded. Run in the real database.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
});

async function summarize(payload: unknown): Promise<Record<string, unknown>> {
  const { rows } = await db.pool.query("select pmt_jobs.summarize_payload($1::json) as s", [JSON.stringify(payload)]);
  return rows[0].s;
}

describe("pmt_jobs.summarize_payload", () => {
  it("removes secrets by key and inside URLs and key=value strings", async () => {
    expect(
      await summarize({
        email: "a@example.org",
        password: "hunter2",
        smtp: { authToken: "t0k3n", host: "mail", apiKey: "k" },
        target: "postgres://backup:s3cret@db:5432/pmt",
        dsn: "host=db password=s3cret",
      }),
    ).toEqual({
      email: "a@example.org",
      password: "***",
      smtp: { authToken: "***", host: "mail", apiKey: "***" },
      target: "postgres://backup:***@db:5432/pmt",
      dsn: "host=db password=***",
    });
  });

  it("bounds strings, arrays, depth and total size", async () => {
    const summary = await summarize({ long: "x".repeat(500), ids: Array.from({ length: 50 }, (_, i) => i), a: { b: { c: { d: { e: 1 } } } } });
    expect(summary.long).toMatch(/^x{200}… \(500 chars\)$/);
    expect(summary.ids).toHaveLength(21);
    expect((summary.ids as unknown[])[20]).toBe("… (+30 more)");
    expect(summary.a).toEqual({ b: { c: { d: "{…}" } } });
    const huge = await summarize(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, "v".repeat(100)])));
    expect(huge).toMatchObject({ truncated: true });
    expect((huge.keys as string[]).length).toBe(50);
    expect(JSON.stringify(huge).length).toBeLessThan(4000);
  });

  it("wraps payloads that are not objects", async () => {
    expect(await summarize(null)).toEqual({ value: null });
    expect(await summarize([1, "postgres://u:p@h/d"])).toEqual({ value: [1, "postgres://u:***@h/d"] });
    expect(await summarize("text")).toEqual({ value: "text" });
  });
});
