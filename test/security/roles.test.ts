/**
 * The worker runs as a plain role that owns its schemas (no superuser, no
 * CREATEROLE), and PMT's application role can export and read the status
 * views but nothing else: not other requests' recipients, not add_job, not
 * the history.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { runBackup } from "../../src/backups/run.js";
import { backupTargets } from "../../src/backups/target.js";
import { createPool, type Pool } from "../../src/db/pool.js";
import { migrate } from "../../src/db/migrate.js";
import { seedDemo } from "../../src/exports/demo.js";
import { createLogger } from "../../src/log.js";
import type { WorkerHandle } from "../../src/worker/runner.js";
import { createGroupRoles } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { startTestWorker, testConfig } from "../harness/worker.js";

const logger = createLogger("silent");
const suffix = crypto.randomBytes(4).toString("hex");
const WORKER_ROLE = `pmt_worker_${suffix}`;
const WEB_ROLE = `pmt_web_${suffix}`;
const DB = `pmt_roles_${suffix}`;
let admin: pg.Client;
let workerUrl: string;
let webUrl: string;
let workerPool: Pool;
let worker: WorkerHandle;

function urlAs(user: string, password: string, database: string): string {
  const u = new URL(inject("adminUrl"));
  u.username = user;
  u.password = password;
  u.pathname = `/${database}`;
  return u.toString();
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: inject("adminUrl") });
  await admin.connect();
  // The guide's roles: the worker without CREATEROLE; the group roles are the DBA's one-time step.
  await admin.query(`create role ${WORKER_ROLE} login password 'worker-pw'`);
  await createGroupRoles(admin);
  await admin.query(`create role ${WEB_ROLE} login password 'web-pw'`);
  await admin.query(`create database ${DB} owner ${WORKER_ROLE}`);
  workerUrl = urlAs(WORKER_ROLE, "worker-pw", DB);
  webUrl = urlAs(WEB_ROLE, "web-pw", DB);
  workerPool = createPool(workerUrl);
  // Everything below runs as the worker's role, which is not a superuser.
  expect((await workerPool.query("select rolsuper from pg_roles where rolname = current_user")).rows[0].rolsuper).toBe(false);
  await migrate(workerPool, logger);
  await seedDemo(workerPool, 50);
  await admin.query(`grant pmt_app to ${WEB_ROLE}`);
  worker = await startTestWorker(workerUrl, {
    env: { BACKUP_DIR: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-roles-")), "b") },
  });
});

afterAll(async () => {
  await worker?.stop();
  await workerPool?.end();
  await admin.query(`drop database if exists ${DB} with (force)`);
  await admin.query(`drop role if exists ${WEB_ROLE}`);
  await admin.query(`drop role if exists ${WORKER_ROLE}`);
  await admin.end();
});

describe("least privilege", () => {
  it("the worker, a plain role owning its schemas, runs exports and backups", async () => {
    const log = await JobEventLog.listen(workerUrl);
    await workerPool.query("select public.pmt_filter_csv('','','',null,null,'ann@example.org')");
    await log.waitFor((e) => e.task === "pmt_jobs.export" && e.status === "succeeded");
    await log.close();
    const backup = await runBackup(
      { config: testConfig({ BACKUP_DIR: path.join(os.tmpdir(), `pmt-roles-b-${suffix}`) }), pool: workerPool, logger },
      backupTargets(workerUrl, { databases: [] })[0]!,
    );
    expect(backup.status).toBe("succeeded");
  });

  it("PMT's application role may export and read the status views, and nothing more", async () => {
    const web = new pg.Client({ connectionString: webUrl });
    await web.connect();
    try {
      expect((await web.query("select pmt_filter_csv('','','',null,null,'web@example.org') as ok")).rows[0].ok).toBe(true);
      expect((await web.query("select pmt_filter_iati('','','',null,null,'web@example.org') as ok")).rows[0].ok).toBe(true);
      await web.query("table pmt_jobs.job_status");
      await web.query("table pmt_jobs.backup_status");
      const denied = async (sql: string) => expect(web.query(sql)).rejects.toMatchObject({ code: "42501" });
      await denied("select recipient from pmt_jobs.export_request");
      await denied("select graphile_worker.add_job('pmt_jobs.export', '{\"requestId\": 1}')");
      await denied("update pmt_jobs.job_run set status = 'succeeded'");
      await denied("delete from pmt_jobs.job_run");
      await denied("select pmt_jobs.request_export('csv', 'web@example.org', '{}')");
      await denied("select * from pmt_jobs.job_history");
    } finally {
      await web.end();
    }
  });
});
