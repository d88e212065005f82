/**
 * Fault: the worker is killed (SIGKILL) in the middle of an offsite upload.
 * After a restart the upload is retried and verified; the store holds exactly
 * the backup and its manifest, the catalog one verified copy, and the history
 * shows the abandoned attempt followed by the successful one.
 */
import net from "node:net";
import path from "node:path";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { recordFault, Workers } from "../harness/faults.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { JobEventLog } from "../harness/events.js";
import { S3RVER_CREDENTIALS, S3Sink } from "../harness/s3.js";
import { until } from "../harness/wait.js";

/** A TCP proxy in front of the store that can hold new connections without answering: an upload stalls mid-flight. */
class StallingProxy {
  stall = false;
  stalledBytes = 0;
  private readonly sockets = new Set<net.Socket>();
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<StallingProxy> {
    let proxy!: StallingProxy;
    const server = net.createServer((client) => {
      proxy.sockets.add(client);
      client.on("close", () => proxy.sockets.delete(client));
      client.on("error", () => {});
      if (proxy.stall) {
        client.on("data", (chunk) => (proxy.stalledBytes += chunk.length));
        return;
      }
      const upstream = net.connect(targetPort, "127.0.0.1");
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    proxy = new StallingProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  /** From now on new connections hang; open ones are cut so nothing slips through on keep-alive. */
  hold(): void {
    this.stall = true;
    for (const s of this.sockets) s.destroy();
  }

  release(): void {
    this.stall = false;
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

let db: TestDatabase;
let s3: S3Sink;
let proxy: StallingProxy;
const workers: Workers = new Workers(() => ({
  ...S3RVER_CREDENTIALS,
  DATABASE_URL: db.url,
  BACKUP_DIR: path.join(workers.home, "b"),
  OFFSITE_URL: "s3://fault/pmt",
  S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
  S3_FORCE_PATH_STYLE: "true",
}));

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  await db.pool.query("create table public.sample as select g as id, md5(g::text) as v from generate_series(1, 20000) g");
  s3 = await S3Sink.start(["fault"]);
  proxy = await StallingProxy.start(s3.port);
});

afterAll(async () => {
  await proxy?.close();
  await s3?.close();
});

describe("kill -9 during an offsite upload", () => {
  it("retries after the restart: one verified copy, nothing extra in the store", async () => {
    const first = await workers.start();

    const log = await JobEventLog.listen(db.url);
    proxy.hold();
    await db.pool.query("select graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', $1::text))", [db.name]);
    const upload = await log.waitFor((e) => e.task === "pmt_jobs.offsite_upload" && e.status === "running", 60_000, "the upload to start");
    await until(async () => {
      const { rows } = await db.pool.query("select status from pmt_jobs.backup_copy");
      return rows[0]?.status === "uploading" && proxy.stalledBytes > 0 ? true : undefined;
    }, "bytes of the upload to reach the store");

    // The crash, mid-upload.
    await Workers.crash(first);
    proxy.release();

    const second = await workers.start();
    await log.waitFor((e) => e.job_id === upload.job_id && e.status === "succeeded", 60_000, "the retried upload to succeed");

    const history = await db.pool.query("select attempt, status from pmt_jobs.job_run where job_id = $1 order by attempt", [upload.job_id]);
    expect(history.rows).toEqual([
      { attempt: 1, status: "abandoned" },
      { attempt: 2, status: "succeeded" },
    ]);
    const backup = (await db.pool.query("select id, sha256, bytes from pmt_jobs.backup where status = 'succeeded'")).rows;
    expect(backup).toHaveLength(1);
    const copies = (await db.pool.query("select backup_id, status, key, sha256, bytes, error from pmt_jobs.backup_copy")).rows;
    expect(copies).toEqual([
      { backup_id: backup[0].id, status: "verified", key: expect.any(String), sha256: backup[0].sha256, bytes: backup[0].bytes, error: null },
    ]);

    const client = new S3Client({
      endpoint: s3.endpoint,
      forcePathStyle: true,
      region: "us-east-1",
      credentials: { accessKeyId: S3RVER_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: S3RVER_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
    });
    const listed = await client.send(new ListObjectsV2Command({ Bucket: "fault" }));
    client.destroy();
    expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual([copies[0].key, `${copies[0].key}.globals.json`, `${copies[0].key}.json`]);

    expect(await Workers.stop(second)).toBe(0);
    await log.close();
    recordFault({
      scenario: "offsite upload",
      fault: "kill -9 of the worker mid-upload (store holding the bytes)",
      outcome: "upload retried: 1 verified copy, store holds only it and its manifest",
      lost: 0,
    });
  });
});
