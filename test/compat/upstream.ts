/**
 * PMT 2.0.8.51 as released, loaded unchanged into a PostGIS database, and
 * the original pmt_filter_csv re-created beside ours for side-by-side runs.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import { UPSTREAM_DIR } from "../harness/postgis.js";

/** The codelists PMTIATIStandards.sql loads, in its order. */
const CODELISTS = [
  "ActivityDateType",
  "AidType",
  "CollaborationType",
  "Country",
  "Currency",
  "FinanceType",
  "LocationType",
  "OrganisationIdentifier",
  "OrganisationRole",
  "OrganisationType",
  "Region",
  "ResultType",
  "Sector",
];

function upstreamFile(name: string): string {
  return fs.readFileSync(path.join(UPSTREAM_DIR, name), "utf8");
}

/** Replaces `from` in `text`, exactly `times` times, or throws (so a changed upstream fails loudly). */
export function patch(text: string, from: string, to: string, times = 1): string {
  const found = text.split(from).length - 1;
  if (found !== times) throw new Error(`expected ${times} occurrence(s) of ${JSON.stringify(from)}, found ${found}`);
  return text.split(from).join(to);
}

/**
 * PMTCreateDatabase.sql through psql as the README says, then the IATI
 * codelists through PMT's own loader (an INSERT INTO xml fires process_xml()),
 * then STEP 4 of PMTIATIStandards.sql. On PostgreSQL 10+ process_xml()
 * recognises nothing because xpath('name()') returns '' there: it is
 * re-created with xpath('name(/*)'), its only change.
 */
export async function loadUpstream(pool: pg.Pool, url: string): Promise<void> {
  await pool.query("create extension if not exists postgis");
  const out = execFileSync("psql", [url, "-X", "-q", "-v", "ON_ERROR_STOP=0", "-f", path.join(UPSTREAM_DIR, "PMTCreateDatabase.sql")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 64 * 2 ** 20,
  });
  void out;
  const { rows } = await pool.query<{ def: string }>("select pg_get_functiondef('public.process_xml()'::regprocedure) as def");
  await pool.query(patch(rows[0]!.def, "xpath('name()',NEW.xml)", "xpath('name(/*)',NEW.xml)"));
  for (const list of CODELISTS) {
    const xml = fs.readFileSync(path.join(UPSTREAM_DIR, "IATICodeLists", `${list}.xml`), "utf8");
    await pool.query("insert into xml (action, xml) values ('insert', $1::xml)", [xml]);
  }
  const standards = upstreamFile("PMTIATIStandards.sql");
  await pool.query(standards.slice(standards.indexOf("-- STEP 4")));
}

/**
 * The original pmt_filter_csv as upstream.pmt_filter_csv, writing into `dir`
 * (which the server must be able to write), with PMT's bugs fixed and
 * nothing else changed:
 *  - Sector name/code: `iati_name = 'Sector'` bound to the outer classification; now the taxonomy's name.
 *  - The header's DateRange printed the unassigned ids and the start date; now start to end.
 *  - The header said "Filters: none" when only the dates filtered; now the dates' own test.
 *  - Lists whose order PMT leaves to the planner are ordered: by id (classifications,
 *    locations, participations, organizations), taxonomies by name.
 */
export async function createUpstreamCsv(pool: pg.Pool, dir: string): Promise<void> {
  const all = upstreamFile("PMTCreateDatabase.sql");
  const start = all.indexOf("CREATE OR REPLACE FUNCTION pmt_filter_csv(");
  const end = all.indexOf("END;$$ LANGUAGE plpgsql;", start) + "END;$$ LANGUAGE plpgsql;".length;
  let fn = all.slice(start, end);
  fn = patch(fn, "CREATE OR REPLACE FUNCTION pmt_filter_csv(", "CREATE OR REPLACE FUNCTION upstream.pmt_filter_csv(");
  fn = patch(fn, "'''/usr/local/pmt_dir/'", `'''${dir}/'`);
  // the bugs
  fn = patch(fn, "(select taxonomy_id from taxonomy where iati_name = 'Sector')", "(select taxonomy_id from taxonomy where name = 'Sector')");
  fn = patch(fn, "'DateRange=' || $3 || ' to ' || $4", "'DateRange=' || $4 || ' to ' || $5");
  fn = patch(fn, "IF $3 is not null AND $4 is not null THEN", "IF $4 is not null AND $5 is not null THEN");
  fn = patch(fn, "AND ($3 is null OR $4 is null) THEN", "AND ($4 is null OR $5 is null) THEN");
  // the orders
  fn = patch(
    fn,
    "SELECT tc.taxonomy, array_to_string(array_agg(tc.classification), ',') AS classification FROM taxonomy_classifications tc \n\t  WHERE classification_id = ANY(filter_classids) GROUP BY tc.taxonomy)",
    "SELECT tc.taxonomy, array_to_string(array_agg(tc.classification ORDER BY tc.classification_id), ',') AS classification FROM taxonomy_classifications tc \n\t  WHERE classification_id = ANY(filter_classids) GROUP BY tc.taxonomy ORDER BY tc.taxonomy)",
  );
  fn = patch(fn, "array_to_string(array_agg(o.name), ',') as names", "array_to_string(array_agg(o.name ORDER BY o.organization_id), ',') as names");
  fn = patch(
    fn,
    "array_to_string(array_agg(c.name), ',') as name\n\t\tfrom project_taxonomy",
    "array_to_string(array_agg(c.name ORDER BY c.classification_id), ',') as name\n\t\tfrom project_taxonomy",
  );
  fn = patch(
    fn,
    "array_to_string(array_agg(c.code), ',') as code, array_to_string(array_agg(c.name), ',') as name",
    "array_to_string(array_agg(c.code ORDER BY c.classification_id), ',') as code, array_to_string(array_agg(c.name ORDER BY c.classification_id), ',') as name",
  );
  fn = patch(
    fn,
    "(select l.activity_id, array_to_string(array_agg(c.name), ',') as name",
    "(select l.activity_id, array_to_string(array_agg(c.name ORDER BY l.location_id, c.classification_id), ',') as name",
  );
  fn = patch(
    fn,
    "(select at.activity_id, array_to_string(array_agg(c.name), ',') as name",
    "(select at.activity_id, array_to_string(array_agg(c.name ORDER BY c.classification_id), ',') as name",
  );
  fn = patch(
    fn,
    "array_to_string(array_agg(o.name), ',') as implementing",
    "array_to_string(array_agg(o.name ORDER BY pp.participation_id), ',') as implementing",
  );
  fn = patch(fn, "array_to_string(array_agg(o.name), ',') as funding", "array_to_string(array_agg(o.name ORDER BY pp.participation_id), ',') as funding");
  await pool.query("create schema if not exists upstream");
  await pool.query(fn);
}
