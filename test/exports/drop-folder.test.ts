/**
 * The legacy drop folder: good names are mailed exactly as dropped, once
 * complete; hostile names, symlinks and folders are moved to rejected/ and
 * never mailed.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import type { WorkerHandle } from "../../src/worker/runner.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { SmtpSink } from "../harness/smtp.js";
import { until } from "../harness/wait.js";
import { startTestWorker } from "../harness/worker.js";

let db: TestDatabase;
let smtp: SmtpSink;
let worker: WorkerHandle;
let dropDir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  smtp = await SmtpSink.start();
  dropDir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-drop-"));
  worker = await startTestWorker(db.url, { env: { SMTP_URL: smtp.url, DROP_DIR: dropDir, DROP_SCAN_SECONDS: "3600" } });
});

afterAll(async () => {
  await worker?.stop();
  await smtp?.down();
});

const drop = (name: string, content: string) => fs.writeFileSync(path.join(dropDir, name), content);

describe("the drop folder", () => {
  it("mails complete, well-named files as they were dropped and rejects everything else", async () => {
    const secret = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-secret-"));
    fs.writeFileSync(path.join(secret, "passwd"), "root:x:0:0");
    drop("ann@example.org_pmt.csv", "a,b\r\n1,2\r\n");
    drop("bob.smith@example.org_bmgf.xml", "<iati-activities/>\n");
    drop("$(reboot)@example.org_pmt.csv", "x");
    drop("a b@example.org_pmt.csv", "x");
    drop("report.csv", "x");
    fs.symlinkSync(path.join(secret, "passwd"), path.join(dropDir, "eve@example.org_pmt.csv"));
    fs.mkdirSync(path.join(dropDir, "dir@example.org_pmt.csv"));
    drop("slow@example.org_pmt.csv", "first half,");

    const first = await worker.dropFolder!.scan();
    expect(first.taken).toEqual([]);
    expect(first.rejected.sort()).toEqual(
      ["$(reboot)@example.org_pmt.csv", "a b@example.org_pmt.csv", "dir@example.org_pmt.csv", "eve@example.org_pmt.csv", "report.csv"].sort(),
    );
    fs.appendFileSync(path.join(dropDir, "slow@example.org_pmt.csv"), "second half\r\n");
    const second = await worker.dropFolder!.scan();
    expect(second.taken.sort()).toEqual(["ann@example.org_pmt.csv", "bob.smith@example.org_bmgf.xml"]);
    const third = await worker.dropFolder!.scan();
    expect(third.taken).toEqual(["slow@example.org_pmt.csv"]);

    await smtp.waitForMessages(3);
    const byRecipient = Object.fromEntries(smtp.messages.map((m) => [(m.to as { text: string }).text, m]));
    expect(Object.keys(byRecipient).sort()).toEqual(["ann@example.org", "bob.smith@example.org", "slow@example.org"]);
    expect(byRecipient["ann@example.org"]!.attachments[0]!.content.toString()).toBe("a,b\r\n1,2\r\n");
    expect(byRecipient["bob.smith@example.org"]!.attachments[0]!.filename).toMatch(/^bmgf_\d{8}\.xml$/);
    expect(byRecipient["slow@example.org"]!.attachments[0]!.content.toString()).toBe("first half,second half\r\n");

    const requests = await until(async () => {
      const { rows } = await db.pool.query("select recipient, instance, status, requested_by from pmt_jobs.export_request order by recipient");
      return rows.every((r) => r.status === "sent") ? rows : undefined;
    }, "the dropped files to be sent");
    expect(requests).toEqual([
      { recipient: "ann@example.org", instance: "pmt", status: "sent", requested_by: "drop folder" },
      { recipient: "bob.smith@example.org", instance: "bmgf", status: "sent", requested_by: "drop folder" },
      { recipient: "slow@example.org", instance: "pmt", status: "sent", requested_by: "drop folder" },
    ]);

    // The folder is empty but for rejected/, which holds the refused entries, the symlink still a symlink.
    expect(fs.readdirSync(dropDir)).toEqual(["rejected"]);
    const rejected = fs.readdirSync(path.join(dropDir, "rejected"));
    expect(rejected).toHaveLength(5);
    const link = rejected.find((n) => n.endsWith("eve@example.org_pmt.csv"))!;
    expect(fs.lstatSync(path.join(dropDir, "rejected", link)).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(secret, "passwd"), "utf8")).toBe("root:x:0:0");
  });
});

describe("the drop folder's own checks", () => {
  it("refuses a file with a second hard link, and never moves entries through a planted rejected/ link", async () => {
    const { startDropFolder } = await import("../../src/exports/drop-folder.js");
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-drop-own-"));
    const dir = path.join(root, "drop");
    const elsewhere = path.join(root, "elsewhere");
    fs.mkdirSync(dir);
    fs.mkdirSync(elsewhere);
    const folder = startDropFolder({ dir, pmtHome: path.join(root, "home"), pool: db.pool, logger: createLogger("silent"), scanIntervalMs: 3_600_000 });
    try {
      fs.writeFileSync(path.join(root, "secret"), "root:x:0:0");
      fs.linkSync(path.join(root, "secret"), path.join(dir, "eve@example.org_pmt.csv"));
      expect(await folder.scan()).toEqual({ taken: [], rejected: ["eve@example.org_pmt.csv"] });
      const [moved] = fs.readdirSync(path.join(dir, "rejected"));
      expect(fs.statSync(path.join(dir, "rejected", moved!)).ino).toBe(fs.statSync(path.join(root, "secret")).ino);

      fs.rmSync(path.join(dir, "rejected"), { recursive: true });
      fs.symlinkSync(elsewhere, path.join(dir, "rejected"));
      fs.writeFileSync(path.join(dir, "report.csv"), "x");
      await folder.scan();
      expect(fs.readdirSync(elsewhere)).toEqual([]);
      expect(fs.readdirSync(dir).sort()).toEqual(["rejected", "report.csv"]);
    } finally {
      await folder.stop();
    }
  });
});

describe("pruneSpool", () => {
  it("deletes spool files older than the given hours and keeps newer ones", async () => {
    const { pruneSpool, spoolDir } = await import("../../src/exports/spool.js");
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-spool-"));
    const dir = spoolDir(home);
    fs.writeFileSync(path.join(dir, "old.csv"), "x");
    fs.writeFileSync(path.join(dir, "new.csv"), "y");
    const old = new Date(Date.now() - 25 * 3600_000);
    fs.utimesSync(path.join(dir, "old.csv"), old, old);
    expect(pruneSpool(home, 24)).toBe(1);
    expect(fs.readdirSync(dir)).toEqual(["new.csv"]);
  });
});
