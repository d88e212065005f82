/**
 * Export by email end to end: pmt_filter_csv / pmt_filter_iati -> the real
 * graphile-worker -> a real SMTP server (smtp-server + mailparser).
 */
import crypto from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { installSampleSchema } from "../../src/exports/demo.js";
import { createPool } from "../../src/db/pool.js";
import { exportRows } from "../../src/exports/rows.js";
import { createLogger } from "../../src/log.js";
import type { WorkerHandle } from "../../src/worker/runner.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { iatiSchemaErrors } from "../harness/iati.js";
import { SmtpSink } from "../harness/smtp.js";
import { until } from "../harness/wait.js";
import { startTestWorker } from "../harness/worker.js";
import { parseCsv } from "./csv-parse.js";
import { loadSampleData } from "./fixtures.js";

let db: TestDatabase;
let smtp: SmtpSink;
let worker: WorkerHandle;
let log: JobEventLog;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  await installSampleSchema(db.pool);
  await loadSampleData(db.pool);
  smtp = await SmtpSink.start();
  worker = await startTestWorker(db.url, { env: { SMTP_URL: smtp.url, MAIL_FROM: "PMT <pmt@example.org>" } });
  log = await JobEventLog.listen(db.url);
});

afterAll(async () => {
  await log?.close();
  await worker?.stop();
  await smtp?.down();
});

async function request(id: number) {
  return (await db.pool.query("select * from pmt_jobs.export_request where id = $1", [id])).rows[0];
}

async function lastRequestId(): Promise<number> {
  return Number((await db.pool.query("select max(id) as id from pmt_jobs.export_request")).rows[0].id);
}

async function waitForStatus(id: number, status: string) {
  return until(async () => {
    const r = await request(id);
    return r.status === status ? r : undefined;
  }, `export request ${id} to be ${status}`);
}

describe("CSV export", () => {
  it("mails PMT's CSV report: RFC 4180, 18 fields a line, PMT's columns and values", async () => {
    const before = smtp.messages.length;
    await db.pool.query("select pmt_filter_csv('11','','','2009-01-01','2013-01-01','ann@example.org')");
    const id = await lastRequestId();
    await smtp.waitForMessages(before + 1);
    const row = await waitForStatus(id, "sent");
    const mail = smtp.messages[before]!;
    expect(mail.subject).toBe("Data Request");
    expect(mail.to).toMatchObject({ text: "ann@example.org" });
    expect(mail.from!.value).toEqual([{ address: "pmt@example.org", name: "PMT" }]);
    expect(mail.text).toContain(`Portfolio Mapping Tool (${db.name}): 2 activities, csv.`);
    expect(mail.text).toMatch(/^Filters: Sector=Education policy and administrative management \| DateRange=2009-01-01 to 2013-01-01$/m);
    const day = (await db.pool.query("select to_char(current_date, 'YYYY-MM-DD') as d")).rows[0].d;
    const [attachment] = mail.attachments;
    expect(attachment!.filename).toBe(`${db.name}_${new Date().toISOString().slice(0, 10).replace(/-/g, "")}.csv`);
    expect(crypto.createHash("sha256").update(attachment!.content).digest("hex")).toBe(row.sha256);
    expect(Number(row.bytes)).toBe(attachment!.content.length);
    expect(row).toMatchObject({ rows: 2, compressed: false, attachment: attachment!.filename, error: null });
    expect(row.message_id).toBe(mail.messageId);

    const records = parseCsv(attachment!.content.toString("utf8"));
    for (const r of records) expect(r).toHaveLength(18);
    expect(records[0]![0]).toBe(
      `PMT 2.0, Database Version 2.0.8.51, Retrieval Date:${day},Filters: Sector=Education policy and administrative management | DateRange=2009-01-01 to 2013-01-01 | `,
    );
    expect(records[1]![0]).toBe("Disclaimer: the data is provided as is, without warranty of any kind.");
    const kinds = records.slice(2).map((r) => r[0] || `${r[1]}`);
    expect(kinds).toEqual(["Project Data", "1", "Activity Data", "1", "Project Data", "2", "Activity Data", "3"]);
    expect(records[2]!.slice(0, 9)).toEqual([
      "Project Data",
      "PMT ProjectID",
      "Project Name",
      "Project Description",
      "Data Group",
      "Start Date",
      "End Date",
      "Total Budget",
      "",
    ]);
    expect(records[4]!.slice(0, 15)).toEqual([
      "Activity Data",
      "PMT ActivityID",
      "Activity Title",
      "Activity Description",
      "Sector - Name",
      "Sector - Code",
      "Latitude Longitude",
      "Country",
      "Funding Organization(s)",
      "Implementing Organization(s)",
      "Start Date",
      "End Date",
      "Total Budget",
      "Activity Status",
      "",
    ]);
    const [project1, , activity1] = records.slice(3, 6);
    expect(project1!.slice(0, 9)).toEqual(["", "1", "Project One", 'First, "quoted" project', "World Bank", "2010-01-01", "2011-12-31", "", ""]);
    expect(activity1!.slice(0, 15)).toEqual([
      "",
      "1",
      'Schools <rural> & "urban"',
      "Education, with commas",
      "Education policy and administrative management",
      "11110",
      "-6.173 35.741",
      "Tanzania",
      "",
      "Org One",
      "2010-01-01",
      "2010-12-31",
      "4000.50",
      "Implementation",
      "",
    ]);
    // project 2: its own (project-level) budget, not the sum of its activities'
    expect(records[7]!.slice(0, 8)).toEqual(["", "2", "Project Two", "Line one\nline two", "", "2012-01-01", "2013-12-31", "9000.00"]);
  });

  it("runs the export job through the history like any job", async () => {
    const id = await lastRequestId();
    const run = await until(async () => {
      const { rows } = await db.pool.query("select status, payload_summary from pmt_jobs.job_run where task = 'pmt_jobs.export' and payload_summary = $1", [
        { requestId: id },
      ]);
      return rows[0]?.status === "running" ? undefined : rows[0];
    }, "the export attempt to be recorded");
    expect(run).toEqual({ status: "succeeded", payload_summary: { requestId: id } });
    const metrics = await (await fetch(`http://127.0.0.1:${worker.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/pmt_worker_export_requests\{status="sent",database="[^"]+"\} [1-9]/);
  });
});

describe("the rows' reader", () => {
  it("gives its connection back outside any transaction when the reader stops early (a full disk, a render error)", async () => {
    const pool = createPool(db.url, { max: 1 });
    try {
      for await (const row of exportRows(pool, {})) {
        expect(row.activity_id).toBeGreaterThan(0);
        break; // what a failing pipeline does: return() on the generator
      }
      // max 1: the same session. Inside the reader's READ ONLY transaction a write would fail with 25006.
      const { rows } = await pool.query<{ ro: string; xact: string | null }>(
        "select current_setting('transaction_read_only') as ro, pg_current_xact_id_if_assigned()::text as xact",
      );
      expect(rows[0]).toEqual({ ro: "off", xact: null });
      await pool.query("create temporary table after_reader (x int)");
    } finally {
      await pool.end();
    }
  });
});

describe("IATI export", () => {
  it("mails an IATI 2.03 document that validates against the official schema", async () => {
    const before = smtp.messages.length;
    await db.pool.query("select pmt_filter_iati('','','',null,null,'bob@example.org')");
    const id = await lastRequestId();
    await smtp.waitForMessages(before + 1);
    await waitForStatus(id, "sent");
    const attachment = smtp.messages[before]!.attachments[0]!;
    expect(attachment.filename).toMatch(/\.xml$/);
    const xml = attachment.content.toString("utf8");
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<iati-activities version="2.03"')).toBe(true);
    expect(xml.match(/<iati-activity /g)).toHaveLength(5);
    expect(xml).toContain("<title>\n      <narrative>Schools &lt;rural&gt; &amp; &quot;urban&quot;</narrative>");
    expect(xml).toContain('<participating-org role="4">\n      <narrative>Org One</narrative>');
    expect(xml).toContain("<iati-identifier>XI-PMT-0000-7</iati-identifier>");
    expect(xml).toContain('<sector vocabulary="1" code="11110">');
    expect(xml).toContain('<recipient-country code="TZ"/>');
    expect(xml).toContain("<pos>-6.173 35.741</pos>");
    expect(xml).toContain('<value currency="USD" value-date="2010-01-01">1500.5</value>');
    expect(xml).toContain('<activity-date type="2" iso-date="2010-01-01"/>');

    const errors = await iatiSchemaErrors(xml);
    if (errors) expect(errors).toEqual([]);
  });
});

describe("delivery failures", () => {
  it("fails at once, without retries, when the server refuses the recipient (5xx)", async () => {
    smtp.refuse.set("gone@example.org", 550);
    const before = smtp.messages.length;
    await db.pool.query("select pmt_filter_csv('','','',null,null,'gone@example.org')");
    const id = await lastRequestId();
    const row = await waitForStatus(id, "failed");
    expect(row.error).toMatch(/refused it permanently.*550/);
    const job = await until(async () => {
      const { rows } = await db.pool.query("select attempts, max_attempts, locked_at from graphile_worker.jobs where key = $1", [`export:${id}`]);
      return rows[0]?.locked_at === null ? rows[0] : undefined;
    }, "the job to be released");
    expect(job).toMatchObject({ attempts: 1, max_attempts: 1 });
    const runs = await db.pool.query("select attempt, max_attempts, status from pmt_jobs.job_run where task = 'pmt_jobs.export' and payload_summary = $1", [
      { requestId: id },
    ]);
    expect(runs.rows).toEqual([{ attempt: 1, max_attempts: 1, status: "failed" }]);
    expect(smtp.messages.length).toBe(before);
  });

  it("retries while the server is down and delivers exactly once when it is back", async () => {
    await smtp.down();
    const before = smtp.messages.length;
    await db.pool.query("select pmt_filter_csv('','','',null,null,'carol@example.org')");
    const id = await lastRequestId();
    const jobId = Number((await db.pool.query("select id from graphile_worker.jobs where key = $1", [`export:${id}`])).rows[0].id);
    await log.waitFor((e) => e.job_id === jobId && e.status === "failed" && e.attempt === 1);
    const queued = await request(id);
    expect(queued.status).toBe("queued");
    expect(queued.error).toMatch(/the mail server could not be reached \((ECONNECTION|ESOCKET)/);
    await smtp.up();
    // Bring the backed-off retry forward once graphile-worker has released the job.
    await until(async () => {
      const { rowCount } = await db.pool.query(
        "update graphile_worker._private_jobs set run_at = now() where key = $1 and locked_at is null and run_at > now()",
        [`export:${id}`],
      );
      return rowCount === 1;
    }, "the job to be released for retry");
    await waitForStatus(id, "sent");
    await smtp.waitForMessages(before + 1);
    expect(smtp.messages.filter((m) => (m.to as { text: string }).text === "carol@example.org")).toHaveLength(1);
  });
});
