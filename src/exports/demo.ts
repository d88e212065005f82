/**
 * The PMT 2.0 sample schema and deterministic demo data (sql/), for the
 * embedded demo, the tests and the benchmarks.
 */
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import { createPool } from "../db/pool.js";
import type { Logger } from "../log.js";

const SQL_DIR = fileURLToPath(new URL("../../sql/", import.meta.url));

/** Creates PMT's tables the exports read (idempotent) and the pmt_demo_seed function. */
export async function installSampleSchema(pool: pg.Pool): Promise<void> {
  await pool.query(fs.readFileSync(`${SQL_DIR}pmt_sample_schema.sql`, "utf8"));
  await pool.query(fs.readFileSync(`${SQL_DIR}pmt_demo_data.sql`, "utf8"));
}

/** True when PMT's activity table exists and holds rows. */
export async function hasPmtData(pool: pg.Pool): Promise<boolean> {
  const exists = await pool.query("select to_regclass('public.activity') is not null as e");
  if (!exists.rows[0].e) return false;
  const { rowCount } = await pool.query("select 1 from public.activity limit 1");
  return (rowCount ?? 0) > 0;
}

/** Fills empty PMT tables with `activities` synthetic activities (ten per project). */
export async function seedDemo(pool: pg.Pool, activities: number): Promise<void> {
  await installSampleSchema(pool);
  await pool.query("select public.pmt_demo_seed($1)", [activities]);
}

/**
 * The embedded demo: PMT's sample tables with synthetic data, the first time;
 * later, the sample schema brought up to date (idempotent).
 */
export async function loadDemo(url: string, activities: number, logger: Logger): Promise<void> {
  const pool = createPool(url, { max: 1 });
  try {
    if (await hasPmtData(pool)) return void (await installSampleSchema(pool));
    await seedDemo(pool, activities);
    logger.info({ activities }, "PMT sample schema created and filled with demo data");
  } finally {
    await pool.end();
  }
}
