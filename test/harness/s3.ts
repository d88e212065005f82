/** A real S3 API server in-process (s3rver), with its buckets; it can be stopped and started again on the same port and data. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
// @ts-expect-error s3rver ships no types
import S3rver from "s3rver";
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
