/**
 * One worker for three PMT databases on one server (PMT_DATABASES): exports
 * requested in each are mailed with that instance's body and attachment name
 * and recorded in its own history; each is backed up on schedule into its own
 * catalog; /metrics and /healthz name all three; a database dropped mid-run
 * does not stop the other two, and is served again once it is back.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { createPool, type Pool } from "../../src/db/pool.js";
import { installSampleSchema } from "../../src/exports/demo.js";
import { createLogger } from "../../src/log.js";
import { startWorker, type WorkerHandle } from "../../src/worker/runner.js";
import { runCli } from "../harness/cli.js";
import { adminQuery as admin, databaseUrl } from "../harness/db.js";
import { recordFault } from "../harness/faults.js";
import { SmtpSink } from "../harness/smtp.js";
import { until } from "../harness/wait.js";
import { testConfig } from "../harness/worker.js";
import { loadSampleData } from "../exports/fixtures.js";

const suffix = crypto.randomBytes(4).toString("hex");
const NAMES = [`bmgf_${suffix}`, `oam_${suffix}`, `pmt_dev_${suffix}`];
const [BMGF, OAM, DEV] = NAMES as [string, string, string];
const adminUrl = inject("adminUrl");
const pools = new Map<string, Pool>();
let smtp: SmtpSink;
let worker: WorkerHandle;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-multi-"));
const backupDir = path.join(root, "backups");
const dropDir = path.join(root, "drop");
fs.mkdirSync(dropDir, { mode: 0o700 });

/** A job that holds its slot until the test lets it go: what a busy instance's exports look like. */
const gate = { started: [] as number[], release: [] as (() => void)[] };
const gateTask = async (payload: unknown) => {
  gate.started.push((payload as { id: number }).id);
  await new Promise<void>((r) => gate.release.push(r));
};

/** A PMT database with the sample schema and data, and the pool PMT's application uses. */
async function createPmtDatabase(name: string): Promise<Pool> {
  await admin(`create database ${name}`);
  const pool = createPool(databaseUrl(adminUrl, name), { max: 3, safeSearchPath: false });
  await installSampleSchema(pool);
  await loadSampleData(pool);
  pools.set(name, pool);
  return pool;
}

const pool = (name: string) => pools.get(name)!;
const today = () => new Date().toISOString().slice(0, 10).replace(/-/g, "");

async function requestCsv(name: string, recipient: string): Promise<number> {
  await pool(name).query("select pmt_filter_csv('', '', '', null, null, $1)", [recipient]);
  return Number((await pool(name).query("select max(id) as id from pmt_jobs.export_request where recipient = $1", [recipient])).rows[0].id);
}

function mailTo(recipient: string) {
  return until(async () => smtp.messages.find((m) => m.to && "text" in m.to && m.to.text === recipient), `a mail to ${recipient}`, 90_000);
}

/** `pmt-worker status --json` as the operator runs it beside this worker. */
async function status(): Promise<{ code: number | null; stderr: string; rows: { database: string; workers: unknown[] }[] }> {
  const r = await runCli(["status", "--json"], { DATABASE_URL: adminUrl, PMT_DATABASES: NAMES.join(","), PMT_HOME: root });
  return { code: r.code, stderr: r.stderr, rows: r.stdout.trim() ? JSON.parse(r.stdout) : [] };
}

async function metrics(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${worker.httpPort}/metrics`)).text();
}

beforeAll(async () => {
  for (const name of NAMES) await createPmtDatabase(name);
  smtp = await SmtpSink.start();
  const config = testConfig({
    // Names on DATABASE_URL's server; its own database (postgres) is not served.
    DATABASE_URL: adminUrl,
    PMT_DATABASES: NAMES.join(","),
    SMTP_URL: smtp.url,
    MAIL_FROM: "PMT <pmt@example.org>",
    EXPORT_MAIL_BODIES: JSON.stringify({ [BMGF]: "Gates body for {instance}: {rows} activities.", [OAM]: "OAM body for {instance}: {rows} activities." }),
    EXPORT_MAIL_BODY: "Default body for {instance}.",
    BACKUP_CRON: "* * * * *",
    BACKUP_DIR: backupDir,
    BACKUP_TEST_RESTORE_CRON: "off",
    WORKER_CONCURRENCY: "2",
    DROP_DIR: dropDir,
    DROP_SCAN_SECONDS: "1",
  });
  worker = await startWorker({ config, databaseUrl: adminUrl, logger: createLogger(config.logLevel), extraTasks: { "test.gate": gateTask } });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await smtp?.down();
  for (const p of pools.values()) await p.end().catch(() => {});
  for (const name of NAMES) await admin(`drop database if exists ${name} with (force)`);
  while (gate.release.length) gate.release.shift()!();
  fs.rmSync(root, { recursive: true, force: true });
});

describe("one worker, three PMT databases", () => {
  it("migrates each database at start and runs one heartbeat per database", async () => {
    expect([...worker.instances().keys()].sort()).toEqual([...NAMES].sort());
    for (const name of NAMES) {
      const workers = (await pool(name).query("select id, tasks from pmt_jobs.worker")).rows;
      expect(workers).toHaveLength(1);
      expect(workers[0].id).toBe(worker.instances().get(name)!.workerId);
    }
    // status shows the three, each with this worker alive.
    const shown = await status();
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.rows.map((r) => r.database)).toEqual(NAMES);
    for (const r of shown.rows) expect(r.workers).toHaveLength(1);
  });

  it("mails an export requested in each with that instance's body and attachment name, recorded in its own history", async () => {
    const ids = new Map<string, number>();
    for (const name of NAMES) ids.set(name, await requestCsv(name, `reader@${name.replace(/_/g, "-")}.example.org`));
    const bodies = { [BMGF]: `Gates body for ${BMGF}:`, [OAM]: `OAM body for ${OAM}:`, [DEV]: `Default body for ${DEV}.` };
    for (const name of NAMES) {
      const mail = await mailTo(`reader@${name.replace(/_/g, "-")}.example.org`);
      expect(mail.text).toContain(bodies[name]);
      expect(mail.attachments[0]!.filename).toBe(`${name}_${today()}.csv`);
      const runs = await until(async () => {
        const rows = (await pool(name).query("select status, payload_summary from pmt_jobs.job_run where task = 'pmt_jobs.export'")).rows;
        return rows.every((r) => r.status !== "running") && rows;
      }, `the export attempt in ${name} to be recorded`);
      // Its own history holds its request and no other database's.
      expect(runs).toEqual([expect.objectContaining({ status: "succeeded", payload_summary: { requestId: ids.get(name) } })]);
      expect((await pool(name).query("select status from pmt_jobs.export_request where id = $1", [ids.get(name)])).rows[0].status).toBe("sent");
    }
    const text = await metrics();
    for (const name of NAMES) {
      expect(text).toContain(`pmt_worker_jobs_succeeded_total{task="pmt_jobs.export",database="${name}"} 1`);
      expect(text).toContain(`pmt_worker_database_up{database="${name}"} 1`);
    }
  });

  it("backs up each database on schedule into its own catalog", async () => {
    for (const name of NAMES) {
      const row = await until(
        async () => (await pool(name).query("select database, status, local_path from pmt_jobs.backup where status = 'succeeded'")).rows[0],
        `a scheduled backup of ${name}`,
        150_000,
        500,
      );
      expect(row.database).toBe(name);
      expect(path.basename(row.local_path)).toContain(name);
      // Only its own backups are in its catalog.
      expect((await pool(name).query("select count(*)::int as n from pmt_jobs.backup where database <> $1", [name])).rows[0].n).toBe(0);
    }
    const text = await metrics();
    for (const name of NAMES) expect(text).toMatch(new RegExp(`pmt_worker_backup_last_bytes\\{database="${name}"\\} [1-9]`));
  }, 180_000);

  it("shares the slots in turn: a busy database holds back another's export by one job at most, and never a backup", async () => {
    // BMGF fills both export slots (WORKER_CONCURRENCY=2) with jobs that do not end, four more behind them.
    await pool(BMGF).query("select graphile_worker.add_job('test.gate', json_build_object('id', i)) from generate_series(1, 6) i");
    await until(async () => gate.started.length === 2, "two of BMGF's jobs to hold the slots");
    await requestCsv(OAM, "fair@oam.example.org");
    // The slots are the process's: OAM's export waits for one (it is not run beside them).
    await until(
      async () => worker.slots().exports.waiting[OAM] === 1,
      () => `OAM's export to wait for a slot: ${JSON.stringify(worker.slots())}`,
    );
    expect(smtp.messages.some((m) => m.to && "text" in m.to && m.to.text === "fair@oam.example.org")).toBe(false);
    expect(await metrics()).toContain(`pmt_worker_jobs_waiting_for_slot{kind="exports",database="${OAM}"} 1`);

    // Backups have slots of their own: OAM's runs now, exports full or not.
    const before = (await pool(OAM).query("select count(*)::int as n from pmt_jobs.backup where status = 'succeeded'")).rows[0].n;
    await pool(OAM).query("select graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text))", [OAM]);
    await until(
      async () => (await pool(OAM).query("select count(*)::int as n from pmt_jobs.backup where status = 'succeeded'")).rows[0].n > before,
      "OAM's backup beside full export slots",
      90_000,
      200,
    );

    // One of BMGF's jobs ends: the slot goes to OAM, whose turn it is, not to BMGF's next job.
    gate.release.shift()!();
    await mailTo("fair@oam.example.org");
    expect(gate.started.length).toBeLessThanOrEqual(3);

    await until(async () => {
      while (gate.release.length) gate.release.shift()!();
      return gate.started.length === 6;
    }, "BMGF's jobs to run to the end");
    await until(
      async () => (await pool(BMGF).query("select count(*)::int as n from pmt_jobs.job_run where task = 'test.gate' and status = 'succeeded'")).rows[0].n === 6,
      "BMGF's jobs recorded",
      30_000,
      100,
    );
  }, 150_000);

  it("mails a drop-folder file through the database its name's instance names, and rejects an instance no database has", async () => {
    fs.writeFileSync(path.join(dropDir, `drop@example.org_${OAM}.csv`), "a,b\n1,2\n", { mode: 0o600 });
    fs.writeFileSync(path.join(dropDir, "stray@example.org_nosuchdb.csv"), "a,b\n", { mode: 0o600 });
    const mail = await mailTo("drop@example.org");
    expect(mail.text).toContain(`OAM body for ${OAM}:`);
    // The mail arrives a moment before the worker records it sent.
    await until(
      async () => (await pool(OAM).query("select status from pmt_jobs.export_request where recipient = 'drop@example.org'")).rows[0]?.status === "sent",
      "the drop-folder request to be recorded sent in OAM",
    );
    expect((await pool(OAM).query("select count(*)::int as n from pmt_jobs.export_request where recipient = 'drop@example.org'")).rows[0].n).toBe(1);
    for (const name of [BMGF, DEV])
      expect((await pool(name).query("select count(*)::int as n from pmt_jobs.export_request where recipient = 'drop@example.org'")).rows[0].n).toBe(0);
    const rejected = await until(
      async () =>
        fs.existsSync(path.join(dropDir, "rejected")) &&
        fs.readdirSync(path.join(dropDir, "rejected")).find((f) => f.endsWith("stray@example.org_nosuchdb.csv")),
      "the stray file to be rejected",
    );
    expect(rejected).toBeTruthy();
    expect(fs.existsSync(path.join(dropDir, "stray@example.org_nosuchdb.csv"))).toBe(false);
  });

  it("keeps serving two while the third refuses connections, and picks it up where it was once it accepts them again", async () => {
    await admin(`alter database ${OAM} allow_connections false`);
    await admin(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${OAM}' and pid <> pg_backend_pid()`);
    const health = await until(
      async () => {
        const body = (await (await fetch(`http://127.0.0.1:${worker.httpPort}/healthz`)).json()) as { status: string; databases: Record<string, string> };
        return body.status === "degraded" ? body : undefined;
      },
      "/healthz to name the database that refuses connections",
      60_000,
      200,
    );
    expect(health.databases[OAM]).toMatch(/not currently accepting connections/);
    for (const name of [BMGF, DEV]) await requestCsv(name, `while-closed@${name.replace(/_/g, "-")}.example.org`);
    for (const name of [BMGF, DEV]) await mailTo(`while-closed@${name.replace(/_/g, "-")}.example.org`);

    await admin(`alter database ${OAM} allow_connections true`);
    // The same instance goes on (not restarted): its export, requested now, is mailed.
    const before = worker.instances().get(OAM)!.workerId;
    await requestCsv(OAM, "reopened@oam.example.org");
    await mailTo("reopened@oam.example.org");
    expect(worker.instances().get(OAM)!.workerId).toBe(before);
    await until(
      async () => ((await (await fetch(`http://127.0.0.1:${worker.httpPort}/healthz`)).json()) as { status: string }).status === "ok",
      "/healthz ok again",
      30_000,
      200,
    );
    recordFault({
      scenario: "several databases",
      fault: "one of three served databases refuses connections (allow_connections false, sessions killed)",
      outcome: "the other two mailed their exports meanwhile; /healthz degraded naming it; once it accepts again the same instance mailed its export",
      lost: 0,
    });
  }, 180_000);

  it("keeps serving two when the third is dropped, says so on /healthz, and serves it again once it is back", async () => {
    await pools.get(DEV)!.end();
    pools.delete(DEV);
    await admin(`drop database ${DEV} with (force)`);

    for (const name of [BMGF, OAM]) await requestCsv(name, `after-drop@${name.replace(/_/g, "-")}.example.org`);
    for (const name of [BMGF, OAM]) await mailTo(`after-drop@${name.replace(/_/g, "-")}.example.org`);

    const health = await until(
      async () => {
        const res = await fetch(`http://127.0.0.1:${worker.httpPort}/healthz`);
        const body = (await res.json()) as { status: string; databases: Record<string, string> };
        return res.status === 200 && body.status === "degraded" ? body : undefined;
      },
      "/healthz to say degraded",
      60_000,
      200,
    );
    expect(health.databases[BMGF]).toBe("ok");
    expect(health.databases[OAM]).toBe("ok");
    expect(health.databases[DEV]).toMatch(/does not exist/);
    await until(async () => (await metrics()).includes(`pmt_worker_database_up{database="${DEV}"} 0`), "database_up 0 for the dropped one");
    // status shows the two it serves, names the third and exits 1.
    const shown = await status();
    expect(shown.code).toBe(1);
    expect(shown.rows.map((r) => r.database)).toEqual([BMGF, OAM]);
    expect(shown.stderr).toContain(DEV);

    await until(async () => !worker.instances().has(DEV), "the worker to let go of the dropped database", 60_000, 200);
    // Back (a new, empty PMT database under the same name): migrated and served again, without a restart.
    await createPmtDatabase(DEV);
    await until(async () => worker.instances().has(DEV), "the worker to serve the database again", 90_000, 200);
    await requestCsv(DEV, "after-return@dev.example.org");
    const mail = await mailTo("after-return@dev.example.org");
    expect(mail.attachments[0]!.filename).toBe(`${DEV}_${today()}.csv`);
    recordFault({
      scenario: "several databases",
      fault: "one of three served databases dropped mid-run, then created again",
      outcome:
        "the other two mailed their exports; /healthz 200 degraded, database_up 0, status exit 1 naming it; re-created: migrated and served without a restart",
      lost: 0,
    });
  }, 240_000);
});
