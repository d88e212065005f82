/**
 * The project's image, run by a real Docker engine: healthy on its HTTP_PORT,
 * tini as PID 1, a backup with its offsite copy, an export mailed, and a
 * `docker stop` in the middle of a backup that lets the backup finish and
 * exits 0. The image (PMT_CI_IMAGE) is built by .ci/container.
 *
 * The container uses the host's network: the run's PostgreSQL, the SMTP sink
 * and the S3 server are the harness's, on 127.0.0.1.
 */
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../../src/db/migrate.js";
import { seedDemo } from "../../../src/exports/demo.js";
import { createLogger } from "../../../src/log.js";
import { ChildHandle } from "../../harness/cli.js";
import { createTestDatabase, type TestDatabase } from "../../harness/db.js";
import { recordFault } from "../../harness/faults.js";
import { freePort } from "../../harness/net.js";
import { S3RVER_CREDENTIALS, S3Sink } from "../../harness/s3.js";
import { SmtpSink } from "../../harness/smtp.js";
import { until } from "../../harness/wait.js";

const IMAGE = process.env.PMT_CI_IMAGE ?? "pmt-worker:ci";
const NAME = `pmt-ci-worker-${process.pid}`;
const STOP_TIMEOUT = 120;
const run = promisify(execFile);

async function docker(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run("docker", args, { maxBuffer: 64 * 2 ** 20 });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number };
    if (typeof e.code !== "number") throw error;
    return { stdout: e.stdout ?? "", stderr: e.stderr ?? "", code: e.code };
  }
}

const inspect = async (format: string) => (await docker("inspect", "-f", format, NAME)).stdout.trim();
const logs = async () => {
  const { stdout, stderr } = await docker("logs", NAME);
  return (stdout + stderr).slice(-4000);
};

let db: TestDatabase;
let smtp: SmtpSink;
let s3: S3Sink;
let home: string;
let state: string;
let httpPort: number;

beforeAll(async () => {
  expect((await docker("image", "inspect", IMAGE)).code, `image ${IMAGE} (built by .ci/container)`).toBe(0);
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  await seedDemo(db.pool, 200);
  smtp = await SmtpSink.start();
  s3 = await S3Sink.start(["pmt-ci"]);
  httpPort = await freePort();
  // The container's state: its user is uid 1000 (node); private as on a server.
  home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-container-"));
  state = path.join(home, "state");
  fs.mkdirSync(state, { mode: 0o700 });
  fs.chownSync(state, 1000, 1000);
  // Secrets go in a 0600 file, not on docker's command line.
  const env = {
    DATABASE_URL: db.url,
    HTTP_PORT: String(httpPort),
    SMTP_URL: smtp.url,
    MAIL_FROM: "PMT <pmt@example.org>",
    BACKUP_DIR: "/var/lib/pmt-worker/backups",
    OFFSITE_URL: "s3://pmt-ci/pmt",
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: "true",
    ...S3RVER_CREDENTIALS,
    WORKER_POLL_INTERVAL_MS: "500",
  };
  fs.writeFileSync(
    path.join(home, "env"),
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(""),
    { mode: 0o600 },
  );
});

afterAll(async () => {
  await docker("rm", "-f", NAME);
  await smtp?.down();
  await s3?.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

describe("the container image", () => {
  it("says in one line that it needs DATABASE_URL", async () => {
    const result = await docker("run", "--rm", IMAGE);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe("pmt-worker: set DATABASE_URL (postgres://user:password@host:5432/dbname): the container has no embedded PostgreSQL\n");
  });

  it("keeps no npm cache", async () => {
    const result = await docker(
      "run",
      "--rm",
      "--user",
      "root",
      "--entrypoint",
      "sh",
      IMAGE,
      "-c",
      "ls -d /root/.npm /home/node/.npm /tmp/* 2>/dev/null; true",
    );
    expect(result.stdout).toBe("");
  });

  it("runs healthy on HTTP_PORT under tini, backs up with an offsite copy, mails an export", async () => {
    const started = await docker(
      "run",
      "-d",
      "--name",
      NAME,
      "--network",
      "host",
      "--stop-timeout",
      String(STOP_TIMEOUT),
      "--env-file",
      path.join(home, "env"),
      "-v",
      `${state}:/var/lib/pmt-worker`,
      IMAGE,
    );
    expect(started.code, started.stderr).toBe(0);
    // The image's own HEALTHCHECK (every 30 s): healthy only if it asks the port we chose.
    await until(
      async () => {
        const health = await inspect("{{.State.Health.Status}}");
        if (health === "unhealthy" || (await inspect("{{.State.Running}}")) !== "true") throw new Error(`container ${health}:\n${await logs()}`);
        return health === "healthy";
      },
      "the container to be healthy",
      120_000,
      1000,
    ).catch(async (error) => {
      throw new Error(`${(error as Error).message}; its log:\n${await logs()}`);
    });
    const checks = JSON.parse(await inspect("{{json .State.Health.Log}}")) as { ExitCode: number; Output: string }[];
    expect(checks.at(-1)).toMatchObject({ ExitCode: 0, Output: `healthz on port ${httpPort}: 200\n` });
    expect((await docker("exec", NAME, "cat", "/proc/1/comm")).stdout.trim()).toBe("tini");

    // doctor names the servers the image's pg_dump can back up.
    const dumpMajor = /\(PostgreSQL\) (\d+)/.exec((await docker("exec", NAME, "pg_dump", "--version")).stdout)![1];
    const doctor = await docker("exec", NAME, "pmt-worker", "doctor");
    expect(doctor.stdout).toMatch(new RegExp(`^OK\\s+backup range\\s+pg_dump ${dumpMajor}\\.\\d+ \\(\\S+\\) backs up PostgreSQL 9\\.2 to ${dumpMajor}$`, "m"));
    expect(doctor.stdout).toMatch(/^OK\s+offsite\s+/m);

    const backup = await docker("exec", NAME, "pmt-worker", "backup", "run");
    expect(backup.code, backup.stderr).toBe(0);
    const file = new RegExp(`^${db.name}: backup \\d+ succeeded, .* -> (\\S+), offsite copy verified$`, "m").exec(backup.stdout)?.[1];
    expect(file, backup.stdout).toBeDefined();
    expect(fs.existsSync(path.join(state, "backups", path.basename(file!)))).toBe(true);
    const stored = fs.readdirSync(s3.directory, { recursive: true }).map(String);
    expect(stored.some((f) => f.includes(path.basename(file!)))).toBe(true);

    await db.pool.query("select pmt_filter_csv('', '', '', null, null, 'ida@example.org')");
    await smtp.waitForMessages(1);
    const mail = smtp.messages[0]!;
    expect((mail.to as { text: string }).text).toBe("ida@example.org");
    expect(mail.attachments[0]!.filename).toMatch(/\.csv$/);
  });

  it("stops cleanly during a backup: the backup finishes within the stop timeout and the worker exits 0", async () => {
    expect(await inspect("{{.State.Running}}")).toBe("true");
    const follow = new ChildHandle(spawn("docker", ["logs", "-f", "--since", "0s", NAME]));
    // A lock pg_dump must wait for: it is surely mid-run when the stop arrives.
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query("begin; lock table public.activity in access exclusive mode");
    const { rows } = await db.pool.query<{ id: string }>("select id from graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text))", [
      db.name,
    ]);
    await until(
      async () => {
        const r = await db.pool.query("select pid from pg_stat_activity where application_name = 'pmt-worker backup' and wait_event_type = 'Lock'");
        return r.rows.length > 0;
      },
      "pg_dump to wait for the lock",
      60_000,
    );

    const t0 = Date.now();
    const stop = docker("stop", "-t", String(STOP_TIMEOUT), NAME);
    await follow.waitForOutput(/worker stopping; waiting for running jobs/, 60_000);
    // Signalled, and still waiting for the backup rather than killing it.
    expect(await inspect("{{.State.Running}}")).toBe("true");
    const held = await db.pool.query("select 1 from pg_stat_activity where application_name = 'pmt-worker backup' and wait_event_type = 'Lock'");
    expect(held.rowCount).toBeGreaterThan(0);
    await locker.query("rollback");
    await locker.end();

    expect((await stop).code).toBe(0);
    const seconds = (Date.now() - t0) / 1000;
    expect(seconds).toBeLessThan(STOP_TIMEOUT);
    expect(await inspect("{{.State.ExitCode}}")).toBe("0");
    expect(await inspect("{{.State.OOMKilled}}")).toBe("false");
    await follow.exited;
    expect(follow.stdout + follow.stderr).toMatch(/"msg":"worker stopped"/);

    const catalog = await db.pool.query("select status, file from pmt_jobs.backup order by id");
    expect(catalog.rows.map((r) => r.status)).toEqual(["succeeded", "succeeded"]);
    const history = await db.pool.query("select status from pmt_jobs.job_run where job_id = $1", [rows[0]!.id]);
    expect(history.rows).toEqual([{ status: "succeeded" }]);
    const files = fs.readdirSync(path.join(state, "backups"));
    expect(files.filter((f) => f.endsWith(".partial"))).toEqual([]);
    expect(files).toContain(catalog.rows[1].file);
    recordFault({
      scenario: "container",
      fault: `docker stop (SIGTERM, -t ${STOP_TIMEOUT}) while pg_dump is held by a table lock`,
      outcome: `tini passed SIGTERM to node, which waited: backup catalogued, no .partial, exit 0 after ${seconds.toFixed(0)} s`,
      lost: 0,
    });
  });
});
