/**
 * The SQL interface: PMT 2.0's filter semantics, pmt_filter_csv/iati's
 * validation (SQLSTATE 22023 naming the argument) and enqueueing in the
 * caller's transaction.
 */
import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { installSampleSchema } from "../../src/exports/demo.js";
import { createLogger } from "../../src/log.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { loadSampleData } from "./fixtures.js";

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  await installSampleSchema(db.pool);
  await loadSampleData(db.pool);
});

async function matches(filters: Record<string, unknown>): Promise<number[]> {
  const { rows } = await db.pool.query<{ activity_id: number }>("select activity_id from pmt_jobs.filter_activities(pmt_jobs.check_filters($1))", [filters]);
  return rows.map((r) => r.activity_id);
}

describe("PMT 2.0 filter (pmt_filter_projects' rules over the live tables)", () => {
  it.each([
    ["no filter: active activities with a location, a participation and a classification, by project", {}, [1, 2, 7, 3, 4]],
    ["one classification", { classification_ids: [11] }, [1, 7, 3]],
    ["classifications OR'd within a taxonomy", { classification_ids: [11, 12] }, [1, 2, 7, 3]],
    ["classifications AND'ed across taxonomies, per location", { classification_ids: [11, 21] }, [1, 7]],
    ["a location's classifications count only on that location", { classification_ids: [11, 22] }, []],
    ["a data group is a classification (here on the project)", { classification_ids: [31] }, [1, 2, 7]],
    ["data group and sector", { classification_ids: [31, 11] }, [1, 7]],
    ["a country from the activity's locations", { classification_ids: [21] }, [1, 7, 4]],
    ["a participation's role counts as a classification", { classification_ids: [41] }, [3, 4]],
    ["unassigned taxonomy alone: activities without a sector", { unassigned_tax_ids: [1] }, [4]],
    ["unassigned taxonomy widens the whole filter", { classification_ids: [12], unassigned_tax_ids: [1] }, [2, 7, 4]],
    ["a country plus unassigned Sector: the country's activities", { classification_ids: [21], unassigned_tax_ids: [1] }, [1, 7, 4]],
    ["unassigned Country: a location without country", { unassigned_tax_ids: [2] }, [3]],
    ["organization on the activity", { organization_ids: [1] }, [1]],
    ["organization on the project", { organization_ids: [2] }, [3, 4]],
    ["organizations OR'd", { organization_ids: [1, 2] }, [1, 3, 4]],
    ["dates strictly contain the activity's", { start_date: "2010-01-01", end_date: "2011-12-31" }, [2]],
    ["dates one day wider", { start_date: "2009-12-31", end_date: "2011-12-31" }, [1, 2]],
    ["one date alone is ignored", { start_date: "2012-06-01" }, [1, 2, 7, 3, 4]],
    ["everything together", { classification_ids: [11, 21], organization_ids: [1], start_date: "2009-01-01", end_date: "2011-01-01" }, [1]],
    ["no match", { classification_ids: [12], organization_ids: [2] }, []],
  ])("%s", async (_name, filters, expected) => {
    expect(await matches(filters)).toEqual(expected);
  });

  it("reads the live tables: a change is exported at once", async () => {
    await db.pool.query("update public.activity set active = false where activity_id = 4");
    try {
      expect(await matches({})).toEqual([1, 2, 7, 3]);
    } finally {
      await db.pool.query("update public.activity set active = true where activity_id = 4");
    }
  });
});

async function counts(): Promise<{ requests: number; jobs: number }> {
  const { rows } = await db.pool.query(`
    select (select count(*)::int from pmt_jobs.export_request) as requests,
           (select count(*)::int from graphile_worker.jobs where task_identifier = 'pmt_jobs.export') as jobs`);
  return rows[0];
}

describe("pmt_filter_csv / pmt_filter_iati", () => {
  it("records the request and enqueues its job, returning true", async () => {
    const before = await counts();
    const { rows } = await db.pool.query("select pmt_filter_csv('11','','',null,null,'ann@example.org') as ok");
    expect(rows[0].ok).toBe(true);
    expect(await counts()).toEqual({ requests: before.requests + 1, jobs: before.jobs + 1 });
    const request = await db.pool.query("select * from pmt_jobs.export_request order by id desc limit 1");
    expect(request.rows[0]).toMatchObject({
      format: "csv",
      recipient: "ann@example.org",
      filters: { classification_ids: [11], organization_ids: [], unassigned_tax_ids: [], start_date: null, end_date: null },
      instance: db.name,
      status: "queued",
    });
    const job = await db.pool.query("select payload, key from graphile_worker._private_jobs order by id desc limit 1");
    expect(job.rows[0]).toEqual({ payload: { requestId: Number(request.rows[0].id) }, key: `export:${request.rows[0].id}` });
    const iati = await db.pool.query("select pmt_filter_iati('','2','',null,null,'bob@example.org') as ok");
    expect(iati.rows[0].ok).toBe(true);
  });

  it("returns false and enqueues nothing when no activity matches", async () => {
    const before = await counts();
    const { rows } = await db.pool.query("select pmt_filter_csv('12','2','',null,null,'ann@example.org') as ok");
    expect(rows[0].ok).toBe(false);
    expect(await counts()).toEqual(before);
  });

  it("rolls back with the caller's transaction", async () => {
    const before = await counts();
    const client = await db.pool.connect();
    try {
      await client.query("begin");
      await client.query("select pmt_filter_csv('','','',null,null,'ann@example.org')");
      await client.query("rollback");
    } finally {
      client.release();
    }
    expect(await counts()).toEqual(before);
  });

  it.each([
    ["", "email: an email address is required"],
    ["ann example.org", "email: 'ann example.org' is not a single valid mailbox"],
    ["ann smith@example.org", "is not a single valid mailbox"],
    ['"ann"@example.org', "is not a single valid mailbox"],
    ["ann;rm -rf@example.org", "is not a single valid mailbox"],
    ["$(reboot)@example.org", "is not a single valid mailbox"],
    ["ann`id`@example.org", "is not a single valid mailbox"],
    ["../../etc/passwd@example.org", "is not a single valid mailbox"],
    ["ann/b@example.org", "is not a single valid mailbox"],
    ["ann@b@example.org", "is not a single valid mailbox"],
    ["ann@example", "is not a single valid mailbox"],
    ["ann@example.org\nBcc: eve@example.org", "is not a single valid mailbox"],
    [`${"a".repeat(250)}@example.org`, "email: is 262 characters long; an email address has at most 254"],
  ])("rejects the address %j with 22023", async (email, message) => {
    const before = await counts();
    await expect(db.pool.query("select pmt_filter_csv('','','',null,null,$1)", [email])).rejects.toMatchObject({
      code: "22023",
      message: expect.stringContaining(message),
    });
    expect(await counts()).toEqual(before);
  });

  it("rejects a null address", async () => {
    await expect(db.pool.query("select pmt_filter_csv('','','',null,null,null)")).rejects.toMatchObject({
      code: "22023",
      message: "email: an email address is required",
    });
  });

  it.each([
    ["'a,b','','',null,null", "classification_ids: 'a,b' is not a list of ids: expected whole numbers separated by commas, like '12,40'"],
    ["'','1.5','',null,null", "organization_ids: '1.5' is not a list of ids"],
    ["'','','-1',null,null", "unassigned_tax_ids: '-1' is not a list of ids"],
    ["'1;drop table activity','','',null,null", "classification_ids: '1;drop table activity' is not a list of ids"],
    ["'','','','2014-01-01','2013-01-01'", "end_date: 2013-01-01 is before start_date 2014-01-01"],
  ])("rejects bad arguments (%s) naming them", async (args, message) => {
    const before = await counts();
    await expect(db.pool.query(`select pmt_filter_iati(${args},'ann@example.org')`)).rejects.toMatchObject({
      code: "22023",
      message: expect.stringContaining(message),
    });
    expect(await counts()).toEqual(before);
  });

  it("rejects inactive ids, which PMT silently left out of the filter", async () => {
    await db.pool.query(`update public.classification set active = false where classification_id = 12;
                         update public.organization set active = false where organization_id = 3;
                         update public.taxonomy set active = false where taxonomy_id = 2`);
    try {
      for (const [args, message] of [
        ["'12','','',null,null", "classification_ids: the classification with the id 12 is inactive (or in an inactive taxonomy)"],
        ["'21,22','','',null,null", "classification_ids: the classifications with the ids 21, 22 are inactive"],
        ["'','3','',null,null", "organization_ids: the organization with the id 3 is inactive: expected ids of active organizations"],
        ["'','','2',null,null", "unassigned_tax_ids: the taxonomy with the id 2 is inactive: expected ids of active taxonomies"],
      ]) {
        await expect(db.pool.query(`select pmt_filter_csv(${args},'ann@example.org')`)).rejects.toMatchObject({
          code: "22023",
          message: expect.stringContaining(message!),
        });
      }
    } finally {
      await db.pool.query(`update public.classification set active = true where classification_id = 12;
                           update public.organization set active = true where organization_id = 3;
                           update public.taxonomy set active = true where taxonomy_id = 2`);
    }
  });

  it("accepts ids with spaces around commas", async () => {
    const { rows } = await db.pool.query("select pmt_filter_csv(' 11 , 12 ','','',null,null,'ann@example.org') as ok");
    expect(rows[0].ok).toBe(true);
  });

  it("request_export validates its format and filters", async () => {
    await expect(db.pool.query("select pmt_jobs.request_export('pdf', 'ann@example.org', '{}')")).rejects.toMatchObject({
      code: "22023",
      message: "format: 'pdf': expected 'csv' or 'iati'",
    });
    await expect(db.pool.query(`select pmt_jobs.request_export('csv', 'ann@example.org', '{"sector": [1]}')`)).rejects.toMatchObject({
      code: "22023",
      message: expect.stringContaining("filters: unknown key 'sector'"),
    });
    const { rows } = await db.pool.query(`select pmt_jobs.request_export('iati', 'ann@example.org', '{"organization_ids": [2]}') as id`);
    expect(Number(rows[0].id)).toBeGreaterThan(0);
  });

  it("needs no superuser: PMT's application role may only execute the functions", async () => {
    const role = `pmt_app_${db.name.slice(-6)}`;
    await db.pool.query(`create role ${role} login password 'app-secret'`);
    await db.pool.query(
      `grant execute on function public.pmt_filter_csv(character varying, character varying, character varying, date, date, text) to ${role}`,
    );
    const url = new URL(db.url);
    url.username = role;
    url.password = "app-secret";
    const app = new pg.Client({ connectionString: url.toString() });
    await app.connect();
    try {
      const { rows } = await app.query("select pmt_filter_csv('','','',null,null,'app@example.org') as ok");
      expect(rows[0].ok).toBe(true);
      await expect(app.query("select * from pmt_jobs.export_request")).rejects.toMatchObject({ code: "42501" });
      await expect(app.query("select graphile_worker.add_job('pmt_jobs.export', '{}')")).rejects.toMatchObject({ code: "42501" });
      await expect(app.query("select pmt_filter_iati('','','',null,null,'app@example.org')")).rejects.toMatchObject({ code: "42501" });
    } finally {
      await app.end();
      await db.pool.query(`drop owned by ${role}; drop role ${role}`);
    }
  });
});
