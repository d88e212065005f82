/**
 * One worker serving two databases: the console shows each on its own (the
 * picker, ?db=), its history, its backups and its live events, never the
 * other's. Over HTTP, no browser needed.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { createPool, type Pool } from "../../src/db/pool.js";
import { createLogger } from "../../src/log.js";
import { startWorker, type WorkerHandle } from "../../src/worker/runner.js";
import { adminQuery as admin } from "../harness/db.js";
import { until } from "../harness/wait.js";
import { testConfig } from "../harness/worker.js";

const suffix = crypto.randomBytes(4).toString("hex");
const [A, B] = [`console_a_${suffix}`, `console_b_${suffix}`];
const adminUrl = inject("adminUrl");
const pools = new Map<string, Pool>();
const root = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-console-multi-"));
let worker: WorkerHandle;
let base: string;

const page = async (p: string) => {
  const res = await fetch(base + p);
  expect(res.status, p).toBe(200);
  return res.text();
};

/** Adds a job in `db` and waits for its history row. */
async function job(db: string, task: string): Promise<number> {
  const { rows } = await pools.get(db)!.query<{ id: number }>("select (graphile_worker.add_job($1)).id::int as id", [task]);
  await until(
    async () => (await pools.get(db)!.query("select 1 from pmt_jobs.job_run where job_id = $1 and status <> 'running'", [rows[0]!.id])).rowCount,
    `${task} in ${db}`,
  );
  return rows[0]!.id;
}

describe("the console of a worker serving two databases", () => {
  beforeAll(async () => {
    for (const name of [A, B]) {
      await admin(`create database ${name}`);
      const u = new URL(adminUrl);
      u.pathname = `/${name}`;
      pools.set(name, createPool(u.toString(), { max: 2, safeSearchPath: false }));
    }
    const config = testConfig({ DATABASE_URL: adminUrl, PMT_DATABASES: `${A},${B}`, BACKUP_DIR: path.join(root, "backups"), BACKUP_TEST_RESTORE_CRON: "off" });
    const ok = async () => {};
    worker = await startWorker({ config, databaseUrl: adminUrl, logger: createLogger(config.logLevel), extraTasks: { "test.a": ok, "test.b": ok } });
    base = `http://127.0.0.1:${worker.httpPort}`;
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    for (const p of pools.values()) await p.end();
    for (const name of [A, B]) await admin(`drop database if exists ${name} with (force)`).catch(() => {});
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("offers both in the picker and shows each one's history only", async () => {
    await job(A, "test.a");
    await job(B, "test.b");
    const overview = await page("/console/");
    expect(overview).toContain(`<option value="${A}" selected>`);
    expect(overview).toContain(`<option value="${B}"`);
    const jobsA = await page(`/console/jobs?db=${A}`);
    const jobsB = await page(`/console/jobs?db=${B}`);
    expect(jobsA).toContain("test.a");
    expect(jobsA).not.toContain("test.b");
    expect(jobsB).toContain("test.b");
    expect(jobsB).not.toContain("test.a");
    expect(await page(`/console/backups?db=${B}`)).toMatch(new RegExp(`name="database" value="${B}"`));
    expect(await page(`/console/?db=${B}`)).toContain(`backup:${B}`);
  });

  it("streams each database's events to its own page", async () => {
    const controller = new AbortController();
    const res = await fetch(`${base}/console/jobs/events?db=${B}`, { signal: controller.signal });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const read = async (until: RegExp) => {
      while (!until.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended before ${until}: ${text}`);
        text += decoder.decode(value);
      }
    };
    await read(/event: state\ndata: "live"/);
    const a = await job(A, "test.a");
    const b = await job(B, "test.b");
    await read(new RegExp(`"job_id":${b},"task":"test.b"[^\\n]*"status":"succeeded"`));
    controller.abort();
    expect(text).not.toContain(`"task":"test.a"`);
    expect(a).toBeGreaterThan(0);
  });
});
