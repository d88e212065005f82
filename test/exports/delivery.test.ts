/**
 * The hard delivery cases: a worker killed between the SMTP server accepting
 * the mail and the status update; exports too large to mail; the outbox.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { simpleParser } from "mailparser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { seedDemo } from "../../src/exports/demo.js";
import { createLogger } from "../../src/log.js";
import { ChildHandle, ROOT } from "../harness/cli.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { SmtpSink } from "../harness/smtp.js";
import { until } from "../harness/wait.js";
import { startTestWorker } from "../harness/worker.js";
import { S3RVER_CREDENTIALS, S3Sink } from "../harness/s3.js";
import { exported } from "./fixtures.js";

let db: TestDatabase;
let smtp: SmtpSink;
let all: { activities: number; projects: number };
const cleanup: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  await seedDemo(db.pool, 3000);
  all = await exported(db.pool);
  smtp = await SmtpSink.start();
});

afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
  await smtp?.down();
});

async function requestExport(filter: string, email: string): Promise<number> {
  await db.pool.query(`select pmt_filter_csv(${filter}, $1)`, [email]);
  return Number((await db.pool.query("select max(id) as id from pmt_jobs.export_request")).rows[0].id);
}

async function waitFor(id: number, status: string) {
  return until(async () => {
    const { rows } = await db.pool.query("select * from pmt_jobs.export_request where id = $1", [id]);
    return rows[0]?.status === status ? rows[0] : undefined;
  }, `export request ${id} to be ${status}`);
}

describe("a worker killed after the SMTP server accepted the mail", () => {
  it("does not send a second copy when the job is retried", async () => {
    const child = ChildHandle.spawn(path.join(ROOT, "test/fixtures/export-worker.mjs"), [], {
      DATABASE_URL: db.url,
      SMTP_URL: smtp.url,
      PMT_HOME: fs.mkdtempSync(path.join(os.tmpdir(), "pmt-crash-")),
      HTTP_PORT: "0",
      WORKER_DEAD_AFTER_SECONDS: "2",
      LOG_LEVEL: "warn",
    });
    cleanup.push(() => child.kill("SIGKILL"));
    await child.waitForOutput(/READY/);
    const id = await requestExport("'','1','',null,null", "dave@example.org");
    expect((await child.exited).signal).toBe("SIGKILL");
    expect(child.stdout).toContain("ACCEPTED");
    await smtp.waitForMessages(1);
    const stuck = (await db.pool.query("select status, send_started_at, sent_at from pmt_jobs.export_request where id = $1", [id])).rows[0];
    expect(stuck).toMatchObject({ status: "sending", sent_at: null });
    expect(stuck.send_started_at).toBeInstanceOf(Date);

    const worker = await startTestWorker(db.url, { env: { SMTP_URL: smtp.url, WORKER_DEAD_AFTER_SECONDS: "2" } });
    try {
      const done = await waitFor(id, "sent");
      expect(done.error).toMatch(/^delivery unconfirmed: .*not sent again/);
      // The attempt's success is recorded when graphile-worker completes the job, just after the request is sent.
      const runs = await until(async () => {
        const { rows } = await db.pool.query(
          "select attempt, status from pmt_jobs.job_run where task = 'pmt_jobs.export' and payload_summary = $1 order by attempt",
          [{ requestId: id }],
        );
        return rows.at(-1)?.status === "running" ? undefined : rows;
      }, "the retry to be recorded");
      expect(runs).toEqual([
        { attempt: 1, status: "abandoned" },
        { attempt: 2, status: "succeeded" },
      ]);
      expect(smtp.messages.filter((m) => (m.to as { text: string }).text === "dave@example.org")).toHaveLength(1);
    } finally {
      await worker.stop();
    }
  });
});

describe("large exports", () => {
  it("compresses an attachment above EXPORT_MAX_ATTACHMENT_MB", async () => {
    const worker = await startTestWorker(db.url, { env: { SMTP_URL: smtp.url, EXPORT_MAX_ATTACHMENT_MB: "0.4" } });
    try {
      const before = smtp.messages.length;
      const id = await requestExport("'','','',null,null", "erin@example.org");
      const row = await waitFor(id, "sent");
      await smtp.waitForMessages(before + 1);
      const attachment = smtp.messages[before]!.attachments[0]!;
      expect(attachment.filename).toMatch(/\.csv\.gz$/);
      expect(row).toMatchObject({ rows: all.activities, compressed: true, attachment: attachment.filename });
      expect(attachment.content.length).toBe(Number(row.bytes));
      expect(Number(row.bytes)).toBeLessThan(0.4 * 2 ** 20);
      const csv = zlib.gunzipSync(attachment.content).toString("utf8");
      expect(csv.length).toBeGreaterThan(0.4 * 2 ** 20);
      expect(csv.split("\r\n").filter((l) => l.startsWith(",")).length).toBe(all.activities + all.projects);
    } finally {
      await worker.stop();
    }
  });

  it("tells the recipient to narrow the filters when even compressed it is too large, and fails the request", async () => {
    const worker = await startTestWorker(db.url, { env: { SMTP_URL: smtp.url, EXPORT_MAX_ATTACHMENT_MB: "0.01" } });
    try {
      const before = smtp.messages.length;
      const id = await requestExport("'','','',null,null", "fred@example.org");
      const row = await waitFor(id, "failed");
      expect(row.error).toMatch(/^too large to mail: \d+(\.\d)? (KB|MB) compressed, the limit is 10\.2 KB; narrow the filters$/);
      await smtp.waitForMessages(before + 1);
      const mail = smtp.messages[before]!;
      expect(mail.attachments).toHaveLength(0);
      expect(mail.text).toContain(`matched ${all.activities} activities, which is too large to mail`);
    } finally {
      await worker.stop();
    }
  });
  it("puts an export too large even compressed on the S3 store and mails a presigned link", async () => {
    const s3 = await S3Sink.start(["pmt-offsite"]);
    Object.assign(process.env, S3RVER_CREDENTIALS);
    const worker = await startTestWorker(db.url, {
      env: {
        SMTP_URL: smtp.url,
        EXPORT_MAX_ATTACHMENT_MB: "0.01",
        OFFSITE_URL: "s3://pmt-offsite/server-1",
        S3_ENDPOINT: s3.endpoint,
        S3_FORCE_PATH_STYLE: "true",
        EXPORT_LINK_DAYS: "2",
      },
    });
    try {
      const before = smtp.messages.length;
      const id = await requestExport("'','','',null,null", "hank@example.org");
      const row = await waitFor(id, "sent");
      expect(row.offsite_key).toBe(`server-1/exports/${db.name}/${id}-${row.attachment}`);
      expect(row.link_expires_at.getTime() - Date.now()).toBeGreaterThan(47 * 3600_000);
      await smtp.waitForMessages(before + 1);
      const mail = smtp.messages[before]!;
      expect(mail.attachments).toHaveLength(0);
      const url = /Download it until .* UTC:\n(\S+)/.exec(mail.text ?? "")![1]!;
      expect(url).toContain("X-Amz-Signature=");
      const res = await fetch(url);
      expect(res.status).toBe(200);
      const body = Buffer.from(await res.arrayBuffer());
      expect(crypto.createHash("sha256").update(body).digest("hex")).toBe(row.sha256);
      expect(zlib.gunzipSync(body).toString("utf8")).toMatch(/^"PMT 2.0, Database Version/);
    } finally {
      await worker.stop();
      await s3.close();
    }
  });
});

describe("without SMTP_URL", () => {
  it("writes the message as an .eml file (0600) to the outbox (0700)", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-outbox-"));
    const worker = await startTestWorker(db.url, { env: { PMT_HOME: home } });
    try {
      const id = await requestExport("'','','','2009-01-01','2009-12-31'", "gina@example.org");
      const row = await waitFor(id, "sent");
      const outbox = path.join(home, "outbox");
      expect(fs.statSync(outbox).mode & 0o777).toBe(0o700);
      const [file] = fs.readdirSync(outbox);
      expect(fs.statSync(path.join(outbox, file!)).mode & 0o777).toBe(0o600);
      expect(row.smtp_response).toBe(`written to ${path.join(outbox, file!)}`);
      const mail = await simpleParser(fs.readFileSync(path.join(outbox, file!)));
      expect(mail.subject).toBe("Data Request");
      expect(mail.attachments[0]!.filename).toMatch(/\.csv$/);
      // The spool keeps nothing once sent.
      expect(fs.readdirSync(path.join(home, "spool"))).toEqual([]);
      expect(fs.statSync(path.join(home, "spool")).mode & 0o777).toBe(0o700);
    } finally {
      await worker.stop();
    }
  });
});
