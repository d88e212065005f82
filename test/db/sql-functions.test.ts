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
import { describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
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
});
