import { Kysely, PostgresDialect } from "kysely";
import type pg from "pg";
import type { PmtJobsDatabase } from "./schema.js";

/** A Kysely instance over an existing pool; destroying it does not end the pool. */
export function createDb(pool: pg.Pool): Kysely<PmtJobsDatabase> {
  const shared = {
    connect: () => pool.connect(),
    end: async () => {},
  } as unknown as pg.Pool;
  return new Kysely<PmtJobsDatabase>({ dialect: new PostgresDialect({ pool: shared }) });
}
