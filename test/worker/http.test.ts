import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../src/db/pool.js";
import { startHttpServer } from "../../src/worker/http.js";
import { createMetrics } from "../../src/worker/metrics.js";
import type { WorkerHandle } from "../../src/worker/runner.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { until } from "../harness/wait.js";
import { startTestWorker } from "../harness/worker.js";

let db: TestDatabase;
let worker: WorkerHandle;
let log: JobEventLog;

beforeAll(async () => {
  db = await createTestDatabase();
  worker = await startTestWorker(db.url, {
    extraTasks: {
      "test.ok": async () => {},
      "test.fail": async () => {
        throw new Error("nope");
      },
    },
  });
  log = await JobEventLog.listen(db.url);
});
afterAll(async () => {
  await log?.close();
  await worker?.stop();
});

const get = (port: number, path: string) => fetch(`http://127.0.0.1:${port}${path}`);

describe("HTTP listener", () => {
  it("answers /healthz with 200 and a JSON body while the worker runs", async () => {
    const res = await get(worker.httpPort, "/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", database: "ok", worker: "running" });
  });

  it("counts jobs per task on /metrics, with durations and queue depth", async () => {
    const { rows } = await db.pool.query<{ id: number }>(
      `select (graphile_worker.add_job('test.ok')).id union all select (graphile_worker.add_job('test.fail', max_attempts => 1)).id`,
    );
    for (const { id } of rows) await log.waitFor((e) => e.job_id === id && e.status !== "running");
    // History is written before graphile-worker releases the failed job; wait for that too.
    await until(async () => (await db.pool.query("select 1 from graphile_worker.jobs where locked_at is not null")).rowCount === 0, "jobs to be released");
    await db.pool.query("select graphile_worker.add_job('test.ok', run_at => now() + interval '1 day')");
    const text = await (await get(worker.httpPort, "/metrics")).text();
    // Every figure names its database.
    const d = `database="${db.name}"`;
    expect(text).toContain(`pmt_worker_jobs_started_total{task="test.ok",${d}} 1`);
    expect(text).toContain(`pmt_worker_jobs_succeeded_total{task="test.ok",${d}} 1`);
    expect(text).toContain(`pmt_worker_jobs_failed_total{task="test.fail",${d},final="true"} 1`);
    expect(text).toContain(`pmt_worker_job_duration_seconds_count{task="test.ok",${d},status="succeeded"} 1`);
    expect(text).toContain(`pmt_worker_queue_depth{task="test.ok",state="scheduled",${d}} 1`);
    expect(text).toContain(`pmt_worker_queue_depth{task="test.fail",state="failed",${d}} 1`);
    expect(text).toContain("pmt_worker_process_resident_memory_bytes");
  });

  it("answers 404 for other paths", async () => {
    expect((await get(worker.httpPort, "/nope")).status).toBe(404);
  });

  it("answers 503 saying why when the database is unreachable or the worker is stopping", async () => {
    const pool = createPool("postgres://u:hunter2@127.0.0.1:1/db");
    let problem: string | null = null;
    const server = await startHttpServer(
      { databases: () => [{ name: "db", pool }], metrics: createMetrics(() => [{ database: "db", pool }]), workerProblem: () => problem },
      "127.0.0.1",
      0,
    );
    try {
      const res = await get(server.port, "/healthz");
      expect(res.status).toBe(503);
      const body = (await res.json()) as Record<string, string>;
      expect(body.status).toBe("unavailable");
      expect(body.database).toMatch(/ECONNREFUSED/);
      expect(body.worker).toBe("running");
      problem = "stopping: received SIGTERM";
      expect(await (await get(server.port, "/healthz")).json()).toMatchObject({ worker: "stopping: received SIGTERM" });
      // /metrics still answers without the database.
      expect((await get(server.port, "/metrics")).status).toBe(200);
    } finally {
      await server.close();
      await pool.end();
    }
  });
});
