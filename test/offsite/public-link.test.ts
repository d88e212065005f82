/**
 * S3_PUBLIC_ENDPOINT: download links are signed for the address recipients
 * reach the store at, not the worker's own (http://minio:9000 in compose).
 * Here the worker talks to the store as 127.0.0.1 and recipients as
 * localhost: the link names localhost and the store accepts its signature.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { shareFile } from "../../src/offsite/share.js";
import { createS3Client } from "../../src/offsite/target.js";
import { S3RVER_CREDENTIALS, S3Sink } from "../harness/s3.js";

let s3: S3Sink;
let file: { path: string; bytes: number; sha256: string };
const body = Buffer.from("activity_id,title\n1,Wells\n");

beforeAll(async () => {
  s3 = await S3Sink.start(["links"]);
  Object.assign(process.env, S3RVER_CREDENTIALS);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-link-"));
  file = { path: path.join(dir, "export.csv"), bytes: body.length, sha256: crypto.createHash("sha256").update(body).digest("hex") };
  fs.writeFileSync(file.path, body);
});
afterAll(async () => {
  await s3?.close();
  if (file) fs.rmSync(path.dirname(file.path), { recursive: true, force: true });
});

async function linkFrom(publicEndpoint: string | undefined): Promise<URL> {
  const client = createS3Client({ endpoint: s3.endpoint, publicEndpoint, region: "us-east-1", forcePathStyle: true });
  return new URL((await shareFile(client, "links", `e/${crypto.randomUUID()}.csv`, file, 1, "export.csv")).url);
}

describe("download links", () => {
  it("are signed for S3_PUBLIC_ENDPOINT when it is set, and the store accepts them there", async () => {
    const url = await linkFrom(`http://localhost:${s3.port}`);
    expect(url.host).toBe(`localhost:${s3.port}`);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(body);
  });

  it("name S3_ENDPOINT otherwise", async () => {
    const url = await linkFrom(undefined);
    expect(url.host).toBe(`127.0.0.1:${s3.port}`);
    expect((await fetch(url)).status).toBe(200);
  });

  it("S3_PUBLIC_ENDPOINT must be an http(s) URL", () => {
    const load = () => loadConfig({ S3_PUBLIC_ENDPOINT: "minio:9000" }, "/nonexistent/.env");
    expect(load).toThrow(ConfigError);
    try {
      load();
    } catch (error) {
      expect((error as ConfigError).problems).toEqual([
        'S3_PUBLIC_ENDPOINT: expected the store\'s URL as recipients reach it, like https://s3.example.org or http://localhost:9000 (got "minio:9000")',
      ]);
    }
  });
});
