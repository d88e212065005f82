/**
 * Hostile input: what PMT's web API (or anyone who can call the SQL
 * functions or write to the drop folder) might pass. Every entry gets a
 * clear error naming what is wrong, or is rejected; nothing is enqueued or
 * mailed that should not be, and no file appears outside the spool and
 * rejected/.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { seedDemo } from "../../src/exports/demo.js";
import { createLogger } from "../../src/log.js";
import type { WorkerHandle } from "../../src/worker/runner.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { recordFault } from "../harness/faults.js";
import { SmtpSink } from "../harness/smtp.js";
import { until } from "../harness/wait.js";
import { startTestWorker } from "../harness/worker.js";

let db: TestDatabase;
let smtp: SmtpSink;
let worker: WorkerHandle;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-hostile-"));
const home = path.join(root, "home");
const dropDir = path.join(root, "drop");
const secret = path.join(root, "secret");

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  await seedDemo(db.pool, 2000); // its CSV is more than 0.01 MB (EXPORT_MAX_ATTACHMENT_MB) gzipped
  smtp = await SmtpSink.start();
  fs.mkdirSync(dropDir);
  fs.mkdirSync(secret);
  fs.writeFileSync(path.join(secret, "passwd"), "root:x:0:0\n");
  // 10 kB: the one export that passes validation here is too large to mail even compressed.
  worker = await startTestWorker(db.url, {
    env: { SMTP_URL: smtp.url, PMT_HOME: home, DROP_DIR: dropDir, DROP_SCAN_SECONDS: "3600", EXPORT_MAX_ATTACHMENT_MB: "0.01" },
  });
});

afterAll(async () => {
  await worker?.stop();
  await smtp?.down();
});

async function counts(): Promise<{ requests: number; jobs: number }> {
  const { rows } = await db.pool.query(`
    select (select count(*)::int from pmt_jobs.export_request) as requests,
           (select count(*)::int from graphile_worker.jobs where task_identifier = 'pmt_jobs.export') as jobs`);
  return rows[0];
}

type Args = [string | null, string | null, string | null, string | null, string | null, string | null];
const call = (fn: string, args: Args) => db.pool.query(`select ${fn}($1, $2, $3, $4::date, $5::date, $6) as ok`, args);
const ids = (n: number) => Array.from({ length: n }, (_, i) => i + 1).join(",");
const email = (address: string | null): Args => ["", "", "", null, null, address];

/** [what, arguments, SQLSTATE, message expected] */
const SQL_CASES: [string, Args, string, string | RegExp][] = [
  ["empty address", email(""), "22023", "email: an email address is required"],
  ["null address", email(null), "22023", "email: an email address is required"],
  ["blank address", email("   "), "22023", "is not a single valid mailbox"],
  ["space inside", email("ann example.org"), "22023", "is not a single valid mailbox"],
  ["shell ;", email("ann;rm -rf ~@example.org"), "22023", "is not a single valid mailbox"],
  ["shell $()", email("$(reboot)@example.org"), "22023", "is not a single valid mailbox"],
  ["shell backticks", email("ann`id`@example.org"), "22023", "is not a single valid mailbox"],
  ["shell pipe", email("ann|mail@example.org"), "22023", "is not a single valid mailbox"],
  ["shell &&", email("ann&&id@example.org"), "22023", "is not a single valid mailbox"],
  ["shell redirect >", email("ann>x@example.org"), "22023", "is not a single valid mailbox"],
  ["shell redirect <", email("ann<x@example.org"), "22023", "is not a single valid mailbox"],
  ["shell glob *", email("*@example.org"), "22023", "is not a single valid mailbox"],
  ["shell glob ?", email("ann?@example.org"), "22023", "is not a single valid mailbox"],
  ["shell history !", email("ann!x@example.org"), "22023", "is not a single valid mailbox"],
  ["shell braces", email("{ann,bob}@example.org"), "22023", "is not a single valid mailbox"],
  ["shell tilde", email("~root@example.org"), "22023", "is not a single valid mailbox"],
  ["single quotes", email("'ann'@example.org"), "22023", "is not a single valid mailbox"],
  ["double quotes", email('"ann"@example.org'), "22023", "is not a single valid mailbox"],
  ["SQL in the address", email("ann'; drop table activity; --@example.org"), "22023", "is not a single valid mailbox"],
  ["header injection \\n", email("ann@example.org\nBcc: eve@example.org"), "22023", "is not a single valid mailbox"],
  ["header injection \\r\\n", email("ann@example.org\r\nSubject: hi"), "22023", "is not a single valid mailbox"],
  ["header injection encoded", email("ann@example.org%0aBcc:eve@example.org"), "22023", "is not a single valid mailbox"],
  ["two recipients", email("ann@example.org, eve@example.org"), "22023", "is not a single valid mailbox"],
  ["display name", email("Ann <ann@example.org>"), "22023", "is not a single valid mailbox"],
  ["path traversal", email("../../etc/passwd@example.org"), "22023", "is not a single valid mailbox"],
  ["path in domain", email("ann@../../etc"), "22023", "is not a single valid mailbox"],
  ["no top-level domain", email("ann@example"), "22023", "is not a single valid mailbox"],
  ["two @", email("ann@b@example.org"), "22023", "is not a single valid mailbox"],
  ["trailing space", email("ann@example.org "), "22023", "is not a single valid mailbox"],
  ["right-to-left override", email("ann\u202e@example.org"), "22023", "is not a single valid mailbox"],
  ["fullwidth @", email("ann\uff20example.org"), "22023", "is not a single valid mailbox"],
  ["NUL byte", email("ann\u0000@example.org"), "22021", /invalid byte sequence/],
  ["address too long", email(`${"a".repeat(250)}@example.org`), "22023", "an email address has at most 254"],
  ["% relay routing", email("ann%evil.example.net@example.org"), "22023", "% before @ (relay routing, user%host@relay) is not accepted"],
  ["% encoded @", email("ann%40evil.example.net@example.org"), "22023", "% before @ (relay routing, user%host@relay) is not accepted"],
  [
    "SQL in ids ;",
    ["1;drop table activity", "", "", null, null, "ann@example.org"],
    "22023",
    "classification_ids: '1;drop table activity' is not a list of ids",
  ],
  ["SQL in ids or", ["", "1) or (1=1", "", null, null, "ann@example.org"], "22023", "organization_ids: '1) or (1=1' is not a list of ids"],
  ["SQL in ids union", ["", "", "1 union select 1", null, null, "ann@example.org"], "22023", "unassigned_tax_ids: '1 union select 1' is not a list of ids"],
  ["SQL comment in ids", ["1--", "", "", null, null, "ann@example.org"], "22023", "classification_ids: '1--' is not a list of ids"],
  ["SQL block comment in ids", ["1/**/,2", "", "", null, null, "ann@example.org"], "22023", "is not a list of ids"],
  ["quoted id", ["'1'", "", "", null, null, "ann@example.org"], "22023", "is not a list of ids"],
  ["the word null as an id", ["null", "", "", null, null, "ann@example.org"], "22023", "is not a list of ids"],
  ["NaN as an id", ["", "NaN", "", null, null, "ann@example.org"], "22023", "is not a list of ids"],
  ["negative id", ["-1", "", "", null, null, "ann@example.org"], "22023", "is not a list of ids"],
  ["fractional id", ["1.5", "", "", null, null, "ann@example.org"], "22023", "is not a list of ids"],
  ["hexadecimal id", ["0x10", "", "", null, null, "ann@example.org"], "22023", "is not a list of ids"],
  ["exponent id", ["1e3", "", "", null, null, "ann@example.org"], "22023", "is not a list of ids"],
  ["id beyond integer", ["99999999999999999999", "", "", null, null, "ann@example.org"], "22023", "is not a list of ids"],
  ["empty list element", ["1,,2", "", "", null, null, "ann@example.org"], "22023", "is not a list of ids"],
  ["trailing comma", ["1,", "", "", null, null, "ann@example.org"], "22023", "is not a list of ids"],
  ["newline between ids", ["1\n2", "", "", null, null, "ann@example.org"], "22023", "is not a list of ids"],
  ["huge list: 20,000 ids", [ids(20_000), "", "", null, null, "ann@example.org"], "22023", "classification_ids: has 20000 ids; at most 10000 are accepted"],
  [
    "huge string: 300,000 characters",
    ["1,".repeat(150_000) + "1", "", "", null, null, "ann@example.org"],
    "22023",
    "classification_ids: is 300001 characters long",
  ],
  ["reversed dates", ["", "", "", "2014-01-01", "2013-01-01", "ann@example.org"], "22023", "end_date: 2013-01-01 is before start_date 2014-01-01"],
  ["local part over 64 characters", email(`${"a".repeat(65)}@example.org`), "22023", "the part before @ has 65 characters; at most 64"],
  [
    "unknown classification id",
    ["999999", "", "", null, null, "ann@example.org"],
    "22023",
    "classification_ids: no classification has the id 999999: expected ids from public.classification",
  ],
  ["unknown organization id", ["", "123456789", "", null, null, "ann@example.org"], "22023", "organization_ids: no organization has the id 123456789"],
  ["unknown taxonomy id", ["", "", "424242", null, null, "ann@example.org"], "22023", "unassigned_tax_ids: no taxonomy has the id 424242"],
  [
    "many unknown ids",
    [ids(5000).replace(/^1,2,3,/, "") + ",900001,900002", "", "", null, null, "ann@example.org"],
    "22023",
    /^classification_ids: no classification has the id .* \(and \d+ more\)/,
  ],
  ["impossible date", ["", "", "", "2014-02-30", null, "ann@example.org"], "22008", /out of range/],
  ["text as a date", ["", "", "", "soon", null, "ann@example.org"], "22007", /invalid input syntax for type date/],
];

/** Well-formed, matching nothing: false, and nothing enqueued. */
const UNKNOWN: [string, Args][] = [
  ["dates that contain no activity", ["", "", "", "1900-01-01", "1900-12-31", "ann@example.org"]],
  ["dates in the next century", ["", "", "", "2100-01-01", "2100-12-31", "ann@example.org"]],
];

/** request_export, the function behind both (callable by the worker's role only). */
const REQUEST_CASES: [string, string, string, string][] = [
  ["unknown format", "pdf", "{}", "format: 'pdf': expected 'csv' or 'iati'"],
  ["unknown filter key", "csv", '{"sector": [1]}', "filters"],
  ["SQL in a filter value", "csv", '{"classification_ids": "1;drop table activity"}', "classification_ids"],
];

/** Drop-folder entries: [what, name, make it]; every one is moved to rejected/ and never mailed. */
const DROP_CASES: [string, string, (p: string) => void][] = [
  ["shell $() in the name", "$(reboot)@example.org_pmt.csv", (p) => fs.writeFileSync(p, "x")],
  ["space in the name", "a b@example.org_pmt.csv", (p) => fs.writeFileSync(p, "x")],
  ["shell ; in the name", "ann@example.org;id_pmt.csv", (p) => fs.writeFileSync(p, "x")],
  ["backticks in the name", "ann`id`@example.org_pmt.csv", (p) => fs.writeFileSync(p, "x")],
  ["quotes in the name", "'ann'@example.org_pmt.csv", (p) => fs.writeFileSync(p, "x")],
  ["dot-dot local part", "ann..lee@example.org_pmt.csv", (p) => fs.writeFileSync(p, "x")],
  ["dot-dot instance", "ann@example.org_...csv", (p) => fs.writeFileSync(p, "x")],
  ["header injection in the name", "ann@example.org\nBcc: eve@example.org_pmt.csv", (p) => fs.writeFileSync(p, "x")],
  ["no address", "report.csv", (p) => fs.writeFileSync(p, "x")],
  ["wrong extension", "ann@example.org_pmt.exe", (p) => fs.writeFileSync(p, "x")],
  ["% relay routing in the name", "ann%evil.example.net@example.org_pmt.csv", (p) => fs.writeFileSync(p, "x")],
  ["name of 250 bytes", `${"a".repeat(230)}@example.org_pmt.csv`, (p) => fs.writeFileSync(p, "x")],
  ["symlink to a secret", "eve@example.org_pmt.csv", (p) => fs.symlinkSync(path.join(secret, "passwd"), p)],
  ["symlink to a folder", "dirlink@example.org_pmt.csv", (p) => fs.symlinkSync(secret, p)],
  ["dangling symlink", "gone@example.org_pmt.csv", (p) => fs.symlinkSync(path.join(secret, "nothing"), p)],
  ["a folder", "dir@example.org_pmt.csv", (p) => fs.mkdirSync(p)],
  ["a FIFO (would block a reader)", "fifo@example.org_pmt.csv", (p) => expect(spawnSync("mkfifo", [p]).status).toBe(0)],
];

const HIDDEN = [".ann@example.org_pmt.csv", "..@example.org_pmt.csv"];

describe("hostile input", () => {
  it(`the SQL functions reject ${SQL_CASES.length} malformed calls with an error naming the argument, enqueueing nothing`, async () => {
    const before = await counts();
    for (const [i, [what, args, code, message]] of SQL_CASES.entries()) {
      const fn = i % 2 ? "pmt_filter_iati" : "pmt_filter_csv";
      const error = await call(fn, args).then(
        () => undefined,
        (e: { code: string; message: string }) => e,
      );
      expect(error, what).toBeDefined();
      expect(error!.code, `${what}: ${error!.message}`).toBe(code);
      if (typeof message === "string") expect(error!.message, what).toContain(message);
      else expect(error!.message, what).toMatch(message);
      // Never the raw input echoed at length (a 300 kB list would flood the API's log).
      expect(error!.message.length, what).toBeLessThan(400);
    }
    for (const [what, args] of UNKNOWN) {
      expect((await call("pmt_filter_csv", args)).rows[0].ok, what).toBe(false);
    }
    for (const [what, format, filters, message] of REQUEST_CASES) {
      await expect(db.pool.query("select pmt_jobs.request_export($1, 'ann@example.org', $2::jsonb)", [format, filters]), what).rejects.toMatchObject({
        code: "22023",
        message: expect.stringContaining(message),
      });
    }
    expect(await counts()).toEqual(before);
    recordFault({
      scenario: "hostile SQL input",
      fault: `${SQL_CASES.length} bad calls (shell, quotes, header injection, SQL in ids, NUL, huge lists, bad dates), ${UNKNOWN.length} filters matching nothing, ${REQUEST_CASES.length} bad requests`,
      outcome: "each: SQLSTATE error naming the argument, or false; 0 requests, 0 jobs",
      lost: 0,
    });
  });

  it(`the drop folder rejects ${DROP_CASES.length} hostile entries, mails none, follows no link`, async () => {
    for (const [, name, make] of DROP_CASES) make(path.join(dropDir, name));
    // A name that is not UTF-8 at all: rejected too.
    fs.writeFileSync(Buffer.concat([Buffer.from(dropDir + "/"), Buffer.from([0x61, 0xff, 0xfe]), Buffer.from("@example.org_pmt.csv")]), "x");
    // Hidden names (an uploader's temporary, like rsync's .name.XXXXXX) are left alone, never mailed.
    for (const name of HIDDEN) fs.writeFileSync(path.join(dropDir, name), "x");
    const before = await counts();
    const first = await worker.dropFolder!.scan();
    const second = await worker.dropFolder!.scan();
    expect(first.taken).toEqual([]);
    expect(second).toEqual({ taken: [], rejected: [] });
    expect(first.rejected, JSON.stringify(fs.readdirSync(dropDir))).toHaveLength(DROP_CASES.length + 1);
    expect(fs.readdirSync(dropDir).sort()).toEqual([...HIDDEN, "rejected"].sort());
    const rejected = fs.readdirSync(path.join(dropDir, "rejected"));
    expect(rejected).toHaveLength(DROP_CASES.length + 1);
    // Links were moved as links, never followed or copied; the secret is untouched.
    expect(
      fs
        .lstatSync(
          path.join(
            dropDir,
            "rejected",
            rejected.find((n) => n.endsWith("_eve@example.org_pmt.csv"))!,
          ),
        )
        .isSymbolicLink(),
    ).toBe(true);
    expect(fs.readFileSync(path.join(secret, "passwd"), "utf8")).toBe("root:x:0:0\n");
    expect(fs.readdirSync(secret)).toEqual(["passwd"]);
    expect(await counts()).toEqual(before);
    recordFault({
      scenario: "hostile drop folder",
      fault: `${DROP_CASES.length + 1 + HIDDEN.length} entries: shell/quote/newline names, dot-dots, long names, non-UTF-8, symlinks, folder, FIFO, hidden`,
      outcome: `${DROP_CASES.length + 1} moved to rejected/ (links as links), ${HIDDEN.length} hidden left alone; 0 mailed`,
      lost: 0,
    });
  });

  it("an export too large even compressed is refused by mail with a reason, and no file is left outside the spool", async () => {
    expect((await call("pmt_filter_csv", email("ann@example.org"))).rows[0].ok).toBe(true);
    const request = await until(async () => {
      const { rows } = await db.pool.query("select status, error from pmt_jobs.export_request");
      return rows[0]?.status === "failed" ? rows[0] : undefined;
    }, "the oversized export to be refused");
    expect(request.error).toMatch(/too large/);
    await smtp.waitForMessages(1);
    expect(smtp.messages).toHaveLength(1);
    expect(smtp.messages[0]!.text).toMatch(/narrow/i);
    expect(smtp.messages[0]!.attachments).toEqual([]);

    // Every file under the test's folders is in the spool, rejected/, or the planted secret.
    const stray: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory() && !e.isSymbolicLink()) walk(p);
        else if (
          ![path.join(home, "spool"), path.join(dropDir, "rejected"), secret].some((d) => p.startsWith(d + path.sep)) &&
          !HIDDEN.some((h) => p === path.join(dropDir, h))
        )
          stray.push(p);
      }
    };
    walk(root);
    expect(stray).toEqual([]);
    recordFault({
      scenario: "oversized export",
      fault: "an export above EXPORT_MAX_ATTACHMENT_MB even gzipped, no S3 store",
      outcome: "request failed 'too large'; 1 mail asking to narrow the filters, no attachment; no stray file",
      lost: 0,
    });
  });
});
