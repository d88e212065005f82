/**
 * The drop-folder race (issue 12, point 1): a hostile writer swaps a
 * well-named entry between a regular file and a link to a secret (a 0640
 * file outside the folder, readable by the worker) as fast as it can, by
 * renameat2(RENAME_EXCHANGE) with a hidden symlink or hard link and by
 * renaming fresh links over the name, while the real drop folder scans it in
 * a tight loop and the real export job mails what was taken to an SMTP
 * server. No mail may carry a byte of the secret: every attachment is one of
 * the writer's regular files, whole, and the secret is never changed.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import type { WorkerHandle } from "../../src/worker/runner.js";
import { ROOT } from "../harness/cli.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { recordFault } from "../harness/faults.js";
import { SmtpSink } from "../harness/smtp.js";
import { until } from "../harness/wait.js";
import { startTestWorker } from "../harness/worker.js";

/** Long enough for thousands of scans on a loaded 2-core machine; bounded either way. */
const RACE_SECONDS = 15;
const MARKER = "SECRET-7f3a9c";

let db: TestDatabase;
let smtp: SmtpSink;
let worker: WorkerHandle;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-race-"));
const home = path.join(root, "home");
const dropDir = path.join(root, "drop");
const secret = path.join(root, "private", "pmt-worker.env");

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  smtp = await SmtpSink.start();
  fs.mkdirSync(dropDir);
  fs.mkdirSync(path.dirname(secret), { mode: 0o700 });
  fs.writeFileSync(secret, `SMTP_URL=smtp://pmt:${MARKER}@mail.example.org:587\n`, { mode: 0o640 });
  worker = await startTestWorker(db.url, {
    env: { SMTP_URL: smtp.url, PMT_HOME: home, DROP_DIR: dropDir, DROP_SCAN_SECONDS: "3600", WORKER_CONCURRENCY: "2" },
  });
});

afterAll(async () => {
  await worker?.stop();
  await smtp?.down();
});

interface RacerCounts {
  rounds: number;
  files: number;
  exchanges: number;
  replaces: number;
  renameat2: boolean;
}

function startRacer(): { done: Promise<RacerCounts> } {
  const child = spawn("python3", [path.join(ROOT, "test/fixtures/drop-racer.py"), dropDir, secret, String(RACE_SECONDS)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const done = new Promise<RacerCounts>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(JSON.parse(stdout) as RacerCounts) : reject(new Error(`the racer exited with ${code}: ${stderr}`))));
  });
  return { done };
}

/** Every text of a parsed mail that could carry the secret. */
function mailTexts(m: SmtpSink["messages"][number]): string[] {
  return [m.subject ?? "", m.text ?? "", typeof m.html === "string" ? m.html : "", ...m.attachments.map((a) => a.content.toString("latin1"))];
}

describe("drop folder under a symlink race", () => {
  it("never mails a byte of a file the name was swapped to, however the swap lands", async () => {
    const secretBefore = fs.statSync(secret);
    const racer = startRacer();
    let finished = false;
    const counts = racer.done.finally(() => (finished = true));
    let scans = 0;
    const taken: string[] = [];
    const rejected: string[] = [];
    while (!finished) {
      const result = await worker.dropFolder!.scan();
      taken.push(...result.taken);
      rejected.push(...result.rejected);
      scans++;
      await new Promise((resolve) => setImmediate(resolve)); // a scan without I/O would starve the racer's exit event
    }
    const racerCounts = await counts;
    // The writer's last file, if still there, is taken by the next two scans (links: rejected).
    for (let i = 0; i < 3; i++) {
      const result = await worker.dropFolder!.scan();
      taken.push(...result.taken);
      rejected.push(...result.rejected);
    }
    expect(
      fs
        .readdirSync(dropDir)
        .filter((n) => !n.startsWith("."))
        .sort(),
    ).toEqual(["rejected"]);

    // Every taken file is mailed (or its request failed for a stated reason): none is pending.
    const requests = await until(
      async () => {
        const { rows } = await db.pool.query<{ status: string; n: number }>("select status, count(*)::int as n from pmt_jobs.export_request group by status");
        const by = Object.fromEntries(rows.map((r) => [r.status, r.n]));
        return Object.keys(by).every((s) => s === "sent" || s === "failed") ? by : undefined;
      },
      "every taken file's request to finish",
      120_000,
    );
    expect(requests).toEqual(taken.length ? { sent: taken.length } : {});
    await smtp.waitForMessages(taken.length, 60_000);

    // The assertions the race is about.
    expect(taken.length, `scans: ${scans}, racer: ${JSON.stringify(racerCounts)}`).toBeGreaterThan(0);
    expect(smtp.messages).toHaveLength(taken.length);
    for (const m of smtp.messages) {
      for (const text of mailTexts(m)) expect(text).not.toContain(MARKER);
      expect(m.attachments).toHaveLength(1);
      expect(m.attachments[0]!.content.toString("utf8")).toMatch(/^legit,\d+\r\n$/);
    }
    // The links met were refused and moved as links; the secret was never changed (no chmod through a link).
    const rejectedDir = path.join(dropDir, "rejected");
    const kept = fs.readdirSync(rejectedDir).map((n) => fs.lstatSync(path.join(rejectedDir, n)));
    expect(rejected.length).toBeGreaterThan(0);
    expect(kept).toHaveLength(rejected.length);
    const secretAfter = fs.statSync(secret);
    expect(secretAfter.mode & 0o777).toBe(0o640);
    expect(secretAfter.mtimeMs).toBe(secretBefore.mtimeMs);
    expect(fs.readFileSync(secret, "utf8")).toContain(MARKER);
    // Nothing in the spool is a link or another name of the secret.
    for (const name of fs.readdirSync(path.join(home, "spool"))) {
      const stat = fs.lstatSync(path.join(home, "spool", name));
      expect(stat.isSymbolicLink(), name).toBe(false);
      expect(stat.ino, name).not.toBe(secretAfter.ino);
    }
    const links = kept.filter((s) => s.isSymbolicLink()).length;
    const hardLinks = kept.filter((s) => s.isFile() && s.ino === secretAfter.ino).length;
    expect(links + hardLinks).toBeGreaterThan(0);
    recordFault({
      scenario: "drop folder race",
      fault: `${RACE_SECONDS} s swapping a name for a ${racerCounts.renameat2 ? "symlink/hard link" : "symlink"} to a secret, ${Math.round(scans / 1000)}k scans`,
      outcome: `${taken.length} mailed, each a whole legitimate file; ${rejected.length} rejected (${links + hardLinks} links, as links); 0 bytes of the secret`,
      lost: 0,
    });
  }, 240_000);
});
