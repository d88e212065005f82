/** A real S3 API server in-process (s3rver), with its buckets; it can be stopped and started again on the same port and data. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
// @ts-expect-error s3rver ships no types
import S3rver from "s3rver";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { createTestDatabase, type TestDatabase } from "./db.js";
import { freePort } from "./net.js";

export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" };

export class S3Sink {
  private server: { run(): Promise<unknown>; close(): Promise<unknown> } | undefined;
  private constructor(
    readonly port: number,
    readonly directory: string,
    private readonly buckets: string[],
  ) {}

  static async start(buckets: string[]): Promise<S3Sink> {
    const sink = new S3Sink(await freePort(), fs.mkdtempSync(path.join(os.tmpdir(), "pmt-s3-")), buckets);
    await sink.up();
    return sink;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    this.server = new S3rver({
      port: this.port,
      address: "127.0.0.1",
      silent: true,
      directory: this.directory,
      configureBuckets: this.buckets.map((name) => ({ name })),
    });
    await this.server!.run();
  }

  async down(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  async close(): Promise<void> {
    await this.down();
    fs.rmSync(this.directory, { recursive: true, force: true });
  }
}

/**
 * A migrated test database with a table of about 19 MB uncompressed (more
 * than three 5 MiB parts in tar format, for multipart uploads) and an S3
 * server with the bucket `pmt-backups`; the SDK's credentials set for s3rver.
 */
export async function bigDatabaseAndStore(): Promise<{ db: TestDatabase; s3: S3Sink }> {
  Object.assign(process.env, S3RVER_CREDENTIALS);
  const db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  await db.pool.query("create table public.big as select g as id, md5(g::text) || md5((g * 7)::text) as v from generate_series(1, 300000) g");
  return { db, s3: await S3Sink.start(["pmt-backups"]) };
}
