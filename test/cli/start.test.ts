/**
 * `pmt-worker start` with no DATABASE_URL: the embedded PostgreSQL comes up,
 * /healthz answers, SIGTERM lets the running job finish and exits 0, and the
 * data survives a restart.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { embeddedUrl, readEmbeddedConnection } from "../../src/db/embedded.js";
import { BIN, ChildHandle, runCli } from "../harness/cli.js";
import { queryOnce as query } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { freePort } from "../harness/net.js";
import { until } from "../harness/wait.js";
import { EXPORTED_SQL } from "../exports/fixtures.js";

const home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-start-"));
// As root the embedded server runs as "postgres", which must be able to pass through.
fs.chmodSync(home, 0o711);
const children: ChildHandle[] = [];

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  fs.rmSync(home, { recursive: true, force: true });
});

/** Starts `pmt-worker start` and waits for /healthz to answer 200 (a bound for a hung start on a loaded machine, not a speed target: first start is measured in the README). */
async function startWorker(env: Record<string, string>): Promise<{ child: ChildHandle }> {
  const child = ChildHandle.spawn(BIN, ["start"], env);
  children.push(child);
  await until(
    async () => {
      const res = await fetch(`http://127.0.0.1:${env.HTTP_PORT}/healthz`).catch(() => undefined);
      return res?.status === 200;
    },
    () => `/healthz to answer 200 (output so far: ${child.stdout}${child.stderr})`,
    90_000,
    100,
  );
  return { child };
}

describe("pmt-worker start on the embedded default", () => {
  it("comes up with demo data, stops cleanly on SIGTERM after the running job, keeps its data, mails exports to the outbox", async () => {
    const env = { PMT_HOME: path.join(home, "state"), EMBEDDED_PG_PORT: String(await freePort()), HTTP_PORT: String(await freePort()) };
    const first = await startWorker(env);
    const health = await (await fetch(`http://127.0.0.1:${env.HTTP_PORT}/healthz`)).json();
    expect(health).toEqual({ status: "ok", database: "ok", worker: "running" });

    const conn = readEmbeddedConnection(env.PMT_HOME)!;
    expect(fs.statSync(path.join(env.PMT_HOME, "embedded.json")).mode & 0o777).toBe(0o600);
    expect(fs.statSync(env.PMT_HOME).mode & 0o077).toBe(0o011);
    const url = embeddedUrl(conn);
    expect(first.child.stdout).not.toContain(conn.password);

    const log = await JobEventLog.listen(url);
    const id = (await query<{ id: number }>(url, `select id::int from graphile_worker.add_job('pmt_jobs.noop', '{"sleepMs": 1500}')`))[0]!.id;
    await log.waitFor((e) => e.job_id === id && e.status === "running", 30_000, "the job to start");
    first.child.kill("SIGTERM");
    const succeeded = log.waitFor((e) => e.job_id === id && e.status === "succeeded", 30_000, "the job to finish");
    await expect(succeeded).resolves.toMatchObject({ attempt: 1 });
    await log.close().catch(() => {});
    const pgLog = () => fs.readFileSync(path.join(env.PMT_HOME, "pg", "postgres.log"), "utf8");
    const exit = await first.child.exited;
    expect(exit, exit.code === 0 ? "" : first.child.stdout + first.child.stderr + pgLog()).toEqual({ code: 0, signal: null });
    expect(first.child.stdout).toContain('"msg":"embedded PostgreSQL stopped"');
    // The server went down with the worker.
    await expect(query(url, "select 1")).rejects.toThrow(/ECONNREFUSED/);

    const second = await startWorker(env);
    // The first worker deregistered when it stopped: only the second is alive (once it stayed for WORKER_DEAD_AFTER_SECONDS).
    expect(await query<{ pid: number }>(url, "select pid from pmt_jobs.worker")).toEqual([{ pid: second.child.child.pid }]);
    const rows = await query<{ status: string }>(url, `select status from pmt_jobs.job_run where job_id = ${id}`);
    expect(rows).toEqual([{ status: "succeeded" }]);
    // Its completion reached the queue before the shutdown: it will not run again.
    expect(await query(url, `select id from graphile_worker.jobs where id = ${id}`)).toEqual([]);
    // The demo data answers PMT's export call: one mail in the outbox, the request sent.
    await query(url, "select pmt_filter_csv('','','',null,null,'someone@example.org')");
    const sent = await until(async () => {
      const rows = await query<{ status: string; rows: number; attachment: string }>(url, "select status, rows, attachment from pmt_jobs.export_request");
      return rows[0]?.status === "sent" ? rows[0] : undefined;
    }, "the demo export to be sent");
    const [all] = await query<{ activities: number }>(url, EXPORTED_SQL);
    expect(all!.activities).toBeGreaterThan(800);
    expect(sent).toMatchObject({ rows: all!.activities, attachment: expect.stringMatching(/^pmt_\d{8}\.csv$/) });
    const outbox = fs.readdirSync(path.join(env.PMT_HOME, "outbox"));
    expect(outbox).toHaveLength(1);
    expect(fs.readFileSync(path.join(env.PMT_HOME, "outbox", outbox[0]!), "utf8")).toContain("Subject: Data Request");
    second.child.kill("SIGINT");
    expect(await second.child.exited).toEqual({ code: 0, signal: null });

    // With the server stopped, status and doctor start it like every other command (doctor once said FAIL),
    // and a cleanly stopped worker is not shown alive.
    const status = await runCli(["status", "--json"], env);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).workers).toEqual([]);
    const doctor = await runCli(["doctor", "--json"], env);
    const checks = doctor.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { name: string; verdict: string });
    expect(
      checks.find((c) => c.name === "database"),
      doctor.stdout + doctor.stderr,
    ).toMatchObject({ verdict: "OK" });
    expect(checks.find((c) => c.name === "migrations")).toMatchObject({ verdict: "OK" });
    await expect(query(url, "select 1")).rejects.toThrow(/ECONNREFUSED/);
  }, 300_000);
});
