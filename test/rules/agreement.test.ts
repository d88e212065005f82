/**
 * Two rules have a TypeScript form and a SQL form, each defined once:
 * - the mailbox rule: src/mail/mailbox.ts (MAILBOX, mailboxProblem: drop-folder
 *   names, ALERT_EMAIL) and pmt_jobs.check_mailbox (sql/functions/02_mailbox.sql:
 *   every export request);
 * - the secret-key list and the password patterns: src/redact.ts (logs, errors,
 *   history errors) and pmt_jobs.redact_json (sql/functions/03_redact.sql: the
 *   job payloads history keeps).
 * The SQL forms hold the TypeScript patterns character for character, and one
 * corpus (plain, edge and hostile values) runs through both: they must agree.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { MAILBOX, mailboxProblem } from "../../src/mail/mailbox.js";
import { KV_PASSWORD, SECRET_KEY, URL_PASSWORD, isSecretKey, redactText } from "../../src/redact.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";

/** [address, accepted] */
const ADDRESSES: [string, boolean][] = [
  ["ann@example.org", true],
  ["ann.lee+exports@mail.example.org", true],
  ["a_b-c@example.co.uk", true],
  ["Ann@Example.ORG", true],
  ["ann@xn--exmple-cua.org", true],
  ["1@2.io", true],
  [`${"a".repeat(64)}@example.org`, true],
  // 254 characters, the most: 64 before @, labels of at most 63
  [`${"a".repeat(64)}@${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(57)}.org`, true],
  [`${"a".repeat(64)}@${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(58)}.org`, false],
  [`ann@${"a".repeat(64)}.org`, false],
  ["ann%relay.example.net@example.org", false],
  ["%@example.org", false],
  ["ann%40example.net@example.org", false],
  ["ann@example%2eorg", false],
  ["ann.@example.org", false],
  [".ann@example.org", false],
  ["a..b@example.org", false],
  ["ann@-example.org", false],
  ["ann@example-.org", false],
  ["ann@example", false],
  ["ann@example.org.", false],
  ["ann@123.45", false],
  ["ann@b@example.org", false],
  ["ann example@example.org", false],
  [`${"a".repeat(65)}@example.org`, false],
  [`ann@${"a".repeat(250)}.org`, false],
  ["", false],
  ["   ", false],
  ["@example.org", false],
  ["ann@", false],
  // hostile (test/faults/hostile.test.ts)
  ["ann;rm -rf ~@example.org", false],
  ["$(reboot)@example.org", false],
  ["ann`id`@example.org", false],
  ["ann|mail@example.org", false],
  ["ann&&id@example.org", false],
  ["ann>x@example.org", false],
  ["*@example.org", false],
  ["{ann,bob}@example.org", false],
  ["~root@example.org", false],
  ["'ann'@example.org", false],
  ['"ann"@example.org', false],
  ["ann'; drop table activity; --@example.org", false],
  ["ann@example.org\nBcc: eve@example.org", false],
  ["ann@example.org\r\nSubject: hi", false],
  ["ann@example.org\n", false],
  ["\nann@example.org", false],
  ["ann@example.org%0aBcc:eve@example.org", false],
  ["ann@example.org, eve@example.org", false],
  ["Ann <ann@example.org>", false],
  ["../../etc/passwd@example.org", false],
  ["ann@../../etc", false],
  ["ann@example.org ", false],
  ["ann\u202e@example.org", false],
  ["ann\uff20example.org", false],
  ["ann@exämple.org", false],
  ["ann@ex\u0430mple.org", false],
  ["ann\u00a0@example.org", false],
  ["ann\u0000@example.org", false],
];

/** [object key, secret] */
const KEYS: [string, boolean][] = [
  ["password", true],
  ["PASSWORD", true],
  ["pass", true],
  ["passwd", true],
  ["db_pass", true],
  ["passage", true],
  ["compass", true],
  ["secret", true],
  ["clientSecret", true],
  ["AWS_SECRET_ACCESS_KEY", true],
  ["token", true],
  ["accessToken", true],
  ["credential", true],
  ["Credentials", true],
  ["api_key", true],
  ["apiKey", true],
  ["API-KEY", true],
  ["access_key", true],
  ["accessKeyId", true],
  ["private_key", true],
  ["privateKey", true],
  ["authorization", true],
  ["author", true],
  ["Cookie", true],
  ["set-cookie", true],
  ["session", true],
  ["sessionId", true],
  ["requestId", false],
  ["backupId", false],
  ["email", false],
  ["recipient", false],
  ["filters", false],
  ["key", false],
  ["keys", false],
  ["api", false],
  ["private", false],
  ["access", false],
  ["pas", false],
  ["", false],
  ["p\u0430ssword", false],
  ["pass\u200bword", true],
  ["to\u00adken", false],
];

/** Texts: their redacted form is the same in both. */
const TEXTS: string[] = [
  "no secret here",
  "postgres://pmt:hunter2@db.example.org:5432/pmt",
  "connect to postgresql://pmt:s3cr%40t@h:5432/pmt failed: timeout",
  "smtp://mailer:p4ss@smtp.example.org:587 and smtps://u:v@h:465",
  "s3://AKIA:secretkey@bucket/prefix",
  "x_postgres://u:hunter2@h/db",
  "9postgres://u:hunter2@h/db",
  "postgres://u:@h/db",
  "postgres://:pw@h/db",
  "postgres://u:pw/x@h",
  "postgres://u:p w@h",
  "host=h password=hunter2 dbname=x",
  "PGPASSWORD=hunter2 pg_dump pmt",
  "db_password=hunter2",
  "?user=u&password=p&x=1",
  "Password=Abc;next=1",
  "pwd=abc pwd=def",
  "passwd=",
  "password =x",
  "user@example.org wrote http://example.org/a@b",
  "mailto:ann@example.org",
  "a:b@c",
  "HTTP://U:P@H",
];

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
});

async function sqlMailboxProblem(address: string): Promise<string | undefined> {
  return db.pool.query("select pmt_jobs.check_mailbox('email', $1)", [address]).then(
    () => undefined,
    (e: { code: string; message: string }) => {
      // A NUL cannot reach the function: PostgreSQL's text refuses it first.
      expect(e.code, JSON.stringify(address)).toBe(address.includes("\u0000") ? "22021" : "22023");
      return e.message;
    },
  );
}

async function functionSource(name: string): Promise<string> {
  const { rows } = await db.pool.query<{ src: string }>("select prosrc as src from pg_proc where oid = $1::regprocedure", [name]);
  return rows[0]!.src;
}

describe("the mailbox rule", () => {
  it("is the same pattern in SQL as in TypeScript", async () => {
    expect(await functionSource("pmt_jobs.check_mailbox(text, text)")).toContain(`mailbox constant text := '${MAILBOX.source}';`);
  });

  it.each(ADDRESSES)("%j: accepted %s, by SQL and TypeScript alike", async (address, accepted) => {
    const ts = mailboxProblem(address);
    const sql = await sqlMailboxProblem(address);
    expect({ ts: ts === undefined, sql: sql === undefined }).toEqual({ ts: accepted, sql: accepted });
  });

  it("says why a % before @ is refused, in both", async () => {
    const address = "ann%relay.example.net@example.org";
    expect(mailboxProblem(address)).toMatch(/% before @ \(relay routing, user%host@relay\) is not accepted/);
    expect(await sqlMailboxProblem(address)).toMatch(
      /^email: 'ann%relay\.example\.net@example\.org': % before @ \(relay routing, user%host@relay\) is not accepted/,
    );
  });

  it("ALERT_EMAIL follows the same rule, lengths included", () => {
    const alertEmail = (value: string) => loadConfig({ ALERT_EMAIL: value }, "/nonexistent/.env").alerts.email;
    expect(alertEmail("dba@example.org")).toBe("dba@example.org");
    expect(alertEmail(" dba@example.org ")).toBe("dba@example.org");
    expect(() => alertEmail("dba%relay@example.org")).toThrow(/ALERT_EMAIL: expected one mailbox/);
    expect(() => alertEmail(`${"a".repeat(65)}@example.org`)).toThrow(/ALERT_EMAIL: expected one mailbox/);
    expect(() => alertEmail(`ann@${"a".repeat(250)}.org`)).toThrow(/ALERT_EMAIL: expected one mailbox/);
  });
});

describe("the secret-key list and the password patterns", () => {
  it("are the same patterns in SQL as in TypeScript", async () => {
    const src = await functionSource("pmt_jobs.redact_json(jsonb, integer)");
    // POSIX classes where JavaScript has escapes; the same characters.
    const posix = (re: RegExp) => re.source.replace(/\\\//g, "/").replace(/\\s/g, "[:space:]");
    expect(src).toContain(`key ~* '${SECRET_KEY.source}'`);
    expect(SECRET_KEY.flags).toBe("i");
    expect(src).toContain(`'${posix(URL_PASSWORD)}', '\\1:***@', 'gi'`);
    expect(src).toContain(`'${posix(KV_PASSWORD)}', '\\1=***', 'gi'`);
    expect([URL_PASSWORD.flags, KV_PASSWORD.flags]).toEqual(["gi", "gi"]);
  });

  it.each(KEYS)("key %j: secret %s, in SQL and TypeScript alike", async (key, secret) => {
    const { rows } = await db.pool.query<{ hidden: boolean }>("select pmt_jobs.redact_json(jsonb_build_object($1::text, 'v'), 0) -> $1 = '\"***\"' as hidden", [
      key,
    ]);
    expect({ ts: isSecretKey(key), sql: rows[0]!.hidden }).toEqual({ ts: secret, sql: secret });
  });

  it.each(TEXTS)("text %j: redacted alike", async (text) => {
    const { rows } = await db.pool.query<{ redacted: string }>("select pmt_jobs.redact_json(to_jsonb($1::text), 0) #>> '{}' as redacted", [text]);
    expect(rows[0]!.redacted).toBe(redactText(text));
    expect(redactText(text)).not.toMatch(/hunter2|s3cr|p4ss|secretkey/);
  });
});
