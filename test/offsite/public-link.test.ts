/**
 * S3_PUBLIC_ENDPOINT: download links are signed for the address recipients
 * reach the store at, not the worker's own (http://minio:9000 in compose).
 * Here the worker talks to the store as 127.0.0.1 and recipients as
 * localhost: the link names localhost, is served there, and its signature is
 * valid for that host only. s3rver does not check presigned signatures, so the
 * test checks them itself, by SigV4 as MinIO and S3 do.
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

const hmac = (key: crypto.BinaryLike, text: string) => crypto.createHmac("sha256", key).update(text).digest();
const rfc3986 = (v: string) => encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** The SigV4 signature a store computes for a presigned GET of `url` arriving with Host: `host`. */
function expectedSignature(url: URL, host: string): string {
  const q = [...url.searchParams].filter(([k]) => k !== "X-Amz-Signature");
  const query = q
    .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
    .sort()
    .join("&");
  expect(url.searchParams.get("X-Amz-SignedHeaders")).toBe("host");
  const canonical = ["GET", url.pathname, query, `host:${host}\n`, "host", "UNSIGNED-PAYLOAD"].join("\n");
  const [, date, region, service] = url.searchParams.get("X-Amz-Credential")!.split("/");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", url.searchParams.get("X-Amz-Date"), scope, crypto.createHash("sha256").update(canonical).digest("hex")].join("\n");
  const key = [date!, region!, service!, "aws4_request"].reduce<Buffer>(
    (k, part) => hmac(k, part),
    Buffer.from(`AWS4${S3RVER_CREDENTIALS.AWS_SECRET_ACCESS_KEY}`),
  );
  return hmac(key, toSign).toString("hex");
}

async function linkFrom(publicEndpoint: string | undefined): Promise<URL> {
  const client = createS3Client({ endpoint: s3.endpoint, publicEndpoint, region: "us-east-1", forcePathStyle: true });
  return new URL((await shareFile(client, "links", `e/${crypto.randomUUID()}.csv`, file, 1, "export.csv")).url);
}

describe("download links", () => {
  it("are signed for S3_PUBLIC_ENDPOINT when it is set: valid for that host, not the worker's, and served there", async () => {
    const url = await linkFrom(`http://localhost:${s3.port}`);
    expect(url.host).toBe(`localhost:${s3.port}`);
    expect(url.searchParams.get("X-Amz-Signature")).toBe(expectedSignature(url, `localhost:${s3.port}`));
    expect(url.searchParams.get("X-Amz-Signature")).not.toBe(expectedSignature(url, `127.0.0.1:${s3.port}`));
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(body);
  });

  it("name S3_ENDPOINT otherwise", async () => {
    const url = await linkFrom(undefined);
    expect(url.host).toBe(`127.0.0.1:${s3.port}`);
    expect(url.searchParams.get("X-Amz-Signature")).toBe(expectedSignature(url, `127.0.0.1:${s3.port}`));
    expect((await fetch(url)).status).toBe(200);
  });

  it("S3_PUBLIC_ENDPOINT must be an http(s) URL", () => {
    const load = () => loadConfig({ S3_PUBLIC_ENDPOINT: "minio:9000" }, "/nonexistent/.env");
    expect(load).toThrow(ConfigError);
    try {
      load();
    } catch (error) {
      expect((error as ConfigError).problems).toEqual([
        'S3_PUBLIC_ENDPOINT: expected the store\'s URL as recipients reach it, like https://s3.example.org or http://localhost:9000; got the unsupported scheme "minio:" (got "minio:9000")',
      ]);
    }
  });
});
