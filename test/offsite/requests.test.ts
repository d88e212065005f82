/**
 * What an upload and a sync cost a store far away: the requests and
 * connections they open. Every part on a kept-alive connection, none waiting for a
 * `100 Continue` (each had a connection of its own, a handshake and a round
 * trip more); the globals file alongside the dump; the manifest last.
 * A sync lists the server's folder once. Counted by a TCP relay in front of
 * s3rver.
 */
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup } from "../../src/backups/run.js";
import { backupTargets } from "../../src/backups/target.js";
import type { Config } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { syncOffsite } from "../../src/jobs/offsite-sync.js";
import { uploadBackup } from "../../src/offsite/copies.js";
import type { TestDatabase } from "../harness/db.js";
import { S3Sink, bigDatabaseAndStore } from "../harness/s3.js";
import { testConfig } from "../harness/worker.js";

/** Relays to 127.0.0.1:`port`, counting connections and keeping each request line with its headers. */
async function relay(port: number) {
  const seen = { connections: 0, requests: [] as string[] };
  const server = net.createServer((client) => {
    seen.connections++;
    const upstream = net.connect(port, "127.0.0.1");
    let head = "";
    client.on("data", (chunk: Buffer) => {
      // Request heads: enough of each chunk that starts with a method to read its headers.
      const text = chunk.subarray(0, 4096).toString("latin1");
      if (/^(GET|PUT|POST|HEAD|DELETE) /.test(text)) head = text.slice(0, text.indexOf("\r\n\r\n") + 1 || undefined);
      if (head) seen.requests.push(head);
      head = "";
    });
    client.pipe(upstream).pipe(client);
    for (const s of [client, upstream]) s.on("error", () => (s === client ? upstream : client).destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { seen, port: (server.address() as net.AddressInfo).port, close: () => new Promise((resolve) => server.close(resolve)) };
}

const logger = createLogger("silent");
let db: TestDatabase;
let s3: S3Sink;
let front: Awaited<ReturnType<typeof relay>>;
let config: Config;

beforeAll(async () => {
  ({ db, s3 } = await bigDatabaseAndStore());
  front = await relay(s3.port);
  config = testConfig({
    BACKUP_DIR: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-requests-")), "b"),
    OFFSITE_URL: "s3://pmt-backups/pmt",
    OFFSITE_SERVER_ID: "db-1",
    S3_ENDPOINT: `http://127.0.0.1:${front.port}`,
    S3_FORCE_PATH_STYLE: "true",
    BACKUP_MIN_FREE_MB: "0",
  });
});

afterAll(async () => {
  await front?.close();
  await s3?.close();
});

describe("an upload's requests", () => {
  it("sends every part on a kept-alive connection without Expect: 100-continue, the globals beside the dump, the manifest last", async () => {
    const backup = await runBackup({ config, pool: db.pool, logger }, backupTargets(db.url, { databases: [] })[0]!, { format: "tar" });
    expect(Number(backup.bytes)).toBeGreaterThan(15 * 2 ** 20);
    const key = await uploadBackup({ config, pool: db.pool, logger, databaseUrl: db.url }, backup);

    const puts = front.seen.requests.filter((r) => r.startsWith("PUT "));
    const parts = puts.filter((r) => /[?&]partNumber=/.test(r.split("\r\n")[0]!));
    expect(parts.length).toBeGreaterThanOrEqual(4);
    for (const r of front.seen.requests) expect(r.toLowerCase(), r.split("\r\n")[0]).not.toContain("expect: 100-continue");
    // At most three requests are ever in flight (two parts, the globals file): about as many connections, reused.
    // (Not exactly 3: an idle connection the server closes under load is opened again; a part per connection is the fault.)
    expect(front.seen.connections).toBeLessThan(parts.length);
    // The manifest, which records the dump and globals as stored, goes after both.
    const order = puts.map((r) => r.split(" ")[1]!);
    const manifest = order.findIndex((u) => u.includes(`${path.basename(key)}.json`));
    expect(manifest).toBe(order.length - 1);
    expect(order.some((u) => u.includes(".globals.json"))).toBe(true);
  });

  it("proves the copies and finds unknown objects from one listing of the server's folder", async () => {
    const deps = { config, pool: db.pool, logger, databaseUrl: db.url };
    await syncOffsite(deps);
    front.seen.requests.length = 0;
    const result = await syncOffsite(deps);
    expect(result).toMatchObject({ uploaded: [], failed: [], lost: [] });
    expect(result.reverified.length).toBeGreaterThan(0);
    const lists = front.seen.requests.filter((r) => /^GET [^ ]*[?&]list-type=2/.test(r));
    expect(lists, front.seen.requests.map((r) => r.split("\r\n")[0]).join("\n")).toHaveLength(1);
    expect(lists[0]).toMatch(/[?&]prefix=pmt%2Fdb-1%2F[& ]/);
  });
});
