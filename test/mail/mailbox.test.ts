/**
 * The mailbox rule lives twice: pmt_jobs.check_mailbox (the SQL functions)
 * and src/mail/mailbox.ts (drop-folder names, ALERT_EMAIL). One corpus runs
 * through both; they must accept and refuse the same addresses.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { mailboxProblem } from "../../src/mail/mailbox.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";

/** [address, accepted] */
const CORPUS: [string, boolean][] = [
  ["ann@example.org", true],
  ["ann.lee+exports@mail.example.org", true],
  ["a_b-c@example.co.uk", true],
  [`${"a".repeat(64)}@example.org`, true],
  ["ann%relay.example.net@example.org", false],
  ["%@example.org", false],
  ["ann%40example.net@example.org", false],
  ["ann@example%2eorg", false],
  ["ann.@example.org", false],
  ["ann@-example.org", false],
  ["ann@example", false],
  ["ann@b@example.org", false],
  ["ann example@example.org", false],
  [`${"a".repeat(65)}@example.org`, false],
  [`ann@${"a".repeat(250)}.org`, false],
];

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
});

async function sqlProblem(address: string): Promise<string | undefined> {
  return db.pool.query("select pmt_jobs.check_mailbox('email', $1)", [address]).then(
    () => undefined,
    (e: { code: string; message: string }) => {
      expect(e.code, address).toBe("22023");
      return e.message;
    },
  );
}

describe("the mailbox rule", () => {
  it.each(CORPUS)("%s: accepted %s, by SQL and TypeScript alike", async (address, accepted) => {
    const ts = mailboxProblem(address);
    const sql = await sqlProblem(address);
    expect({ ts: ts === undefined, sql: sql === undefined }).toEqual({ ts: accepted, sql: accepted });
  });

  it("says why a % before @ is refused, in both", async () => {
    const address = "ann%relay.example.net@example.org";
    expect(mailboxProblem(address)).toMatch(/% before @ \(relay routing, user%host@relay\) is not accepted/);
    expect(await sqlProblem(address)).toMatch(/^email: 'ann%relay\.example\.net@example\.org': % before @ \(relay routing, user%host@relay\) is not accepted/);
  });

  it("ALERT_EMAIL follows the same rule", () => {
    expect(loadConfig({ ALERT_EMAIL: "dba@example.org" }, "/nonexistent/.env").alerts.email).toBe("dba@example.org");
    expect(() => loadConfig({ ALERT_EMAIL: "dba%relay@example.org" }, "/nonexistent/.env")).toThrow(/ALERT_EMAIL: expected one mailbox/);
  });
});
