/**
 * Every function and view of ours is defined once, in sql/functions/, and
 * re-applied by every `migrate` after the numbered migrations. The fixture
 * sql-definitions.json holds their definitions as the code before that move
 * left them (pg_get_functiondef, the views' columns and text, comments and
 * privileges); any change of a body, a SET clause, a comment or a grant fails
 * here until the fixture is written again on purpose:
 *   UPDATE_SQL_DEFINITIONS=1 npx vitest run test/db/sql-functions.test.ts
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runMigrations } from "graphile-worker";
import { describe, expect, it } from "vitest";
import { createMigrator, FUNCTIONS_DIR, migrate } from "../../src/db/migrate.js";
import { createLogger, graphileLogger } from "../../src/log.js";
import { ROOT } from "../harness/cli.js";
import { createTestDatabase } from "../harness/db.js";
import { normalize, readDefinitions, type Definitions } from "../harness/sql-definitions.js";

const FIXTURE = fileURLToPath(new URL("./sql-definitions.json", import.meta.url));
const logger = createLogger("silent");

function fixture(): Definitions {
  return JSON.parse(fs.readFileSync(FIXTURE, "utf8")) as Definitions;
}

describe("the SQL functions and views", () => {
  it("after migrate on a fresh database, are those of the fixture", async () => {
    const db = await createTestDatabase();
    await migrate(db.pool, logger);
    const now = await readDefinitions(db.pool);
    if (process.env.UPDATE_SQL_DEFINITIONS) {
      fs.writeFileSync(FIXTURE, JSON.stringify(now, null, 2) + "\n");
      console.log(`wrote ${path.relative(process.cwd(), FIXTURE)}: ${Object.keys(now).length} definitions`);
    }
    expect(Object.keys(now).length).toBeGreaterThan(30);
    expect(normalize(now)).toEqual(normalize(fixture()));
  });

  it("are each defined in exactly one file of sql/functions/ (PMT's two in sql/pmt_export_functions.sql)", async () => {
    const files = [...fs.readdirSync(FUNCTIONS_DIR).map((f) => path.join(FUNCTIONS_DIR, f)), path.join(ROOT, "sql/pmt_export_functions.sql")];
    const defined: string[] = [];
    for (const file of files.filter((f) => f.endsWith(".sql"))) {
      const text = fs.readFileSync(file, "utf8");
      for (const m of text.matchAll(/^create or replace (function|view) ([a-z_]+\.[a-z_]+)/gm)) defined.push(`${m[1]} ${m[2]}`);
      // Nothing else is created there: tables, columns and data belong to the numbered migrations.
      expect(text.match(/^\s*(create|alter|drop) (?!or replace (function|view) )[a-z ]+/gim) ?? [], file).toEqual([]);
    }
    const catalog = Object.keys(fixture()).map((name) => (name.startsWith("view ") ? name : `function ${name.replace(/\(.*$/, "")}`));
    expect([...defined].sort()).toEqual([...catalog].sort());
  });

  it("after migrations applied by the code before sql/functions/, are unchanged by migrate, twice", async () => {
    const db = await createTestDatabase();
    // What migrate did then: graphile-worker's schema, the numbered migrations, PMT's functions and the grants.
    await runMigrations({ pgPool: db.pool, logger: graphileLogger(logger) });
    const { error } = await createMigrator(db.pool).migrateToLatest();
    expect(error).toBeUndefined();
    for (const file of ["sql/pmt_export_functions.sql", "sql/pmt_grants.sql"]) await db.pool.query(fs.readFileSync(path.join(ROOT, file), "utf8"));
    // The numbered migrations alone end with the definitions of their time
    // (since migration 0016 the history's functions have changed in sql/functions/ only).
    const before = normalize(await readDefinitions(db.pool));
    const expected = normalize(fixture());
    expect(
      Object.keys(expected)
        .filter((name) => JSON.stringify(before[name]) !== JSON.stringify(expected[name]))
        .sort(),
    ).toEqual([
      "pmt_jobs.capture_job_attempt()",
      "pmt_jobs.job_run_event(pmt_jobs.job_run,text)",
      "pmt_jobs.job_run_notify()",
      "pmt_jobs.notify_events(text[])",
    ]);

    expect((await migrate(db.pool, logger)).applied).toEqual([]);
    expect(normalize(await readDefinitions(db.pool))).toEqual(normalize(fixture()));
    expect((await migrate(db.pool, logger)).applied).toEqual([]);
    expect(normalize(await readDefinitions(db.pool))).toEqual(normalize(fixture()));
  });

  it("are restored by migrate when changed by hand", async () => {
    const db = await createTestDatabase();
    await migrate(db.pool, logger);
    // A SET clause dropped, a body changed, a view's rule changed back to an old one, a comment gone.
    await db.pool.query("alter function pmt_jobs.check_mailbox(text, text) reset search_path");
    await db.pool.query(
      "create or replace function pmt_jobs.recipient_key(recipient text) returns text language sql immutable set search_path = pg_catalog, pg_temp as $$ select recipient $$",
    );
    await db.pool.query(
      "create or replace view pmt_jobs.backup_offsite_done as select c.backup_id, c.target from pmt_jobs.backup_copy c where c.status = 'verified'",
    );
    await db.pool.query("comment on function pmt_jobs.error_class(text) is null");
    const changed = normalize(await readDefinitions(db.pool));
    const expected = normalize(fixture());
    expect(
      Object.keys(changed)
        .filter((name) => JSON.stringify(changed[name]) !== JSON.stringify(expected[name]))
        .sort(),
    ).toEqual(["pmt_jobs.check_mailbox(text,text)", "pmt_jobs.error_class(text)", "pmt_jobs.recipient_key(text)", "view pmt_jobs.backup_offsite_done"]);

    expect((await migrate(db.pool, logger)).applied).toEqual([]);
    expect(normalize(await readDefinitions(db.pool))).toEqual(expected);
  });

  it("are all or none: a failing file leaves every definition as it was, naming the file", async () => {
    const db = await createTestDatabase();
    await migrate(db.pool, logger);
    await db.pool.query(
      "create or replace function pmt_jobs.recipient_key(recipient text) returns text language sql immutable set search_path = pg_catalog, pg_temp as $$ select recipient $$",
    );
    // A column the file's view does not have: CREATE OR REPLACE VIEW cannot drop it (a numbered migration must).
    await db.pool.query(
      "create or replace view pmt_jobs.backup_offsite_done as select c.backup_id, c.target, c.status from pmt_jobs.backup_copy c where c.status in ('verified', 'pruned')",
    );
    const before = await readDefinitions(db.pool);
    await expect(migrate(db.pool, logger)).rejects.toThrow(
      /^applying sql\/functions\/11_backup_views\.sql failed: cannot drop columns from view; none of the function files was applied$/,
    );
    // 08_export_limits.sql ran before 11 in the same transaction: rolled back with it.
    expect(await readDefinitions(db.pool)).toEqual(before);
    expect(before["pmt_jobs.recipient_key(text)"]!.definition).toMatch(/\$function\$ select recipient \$function\$/);
  });
});
