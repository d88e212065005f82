/**
 * The offsite store on S3 (any S3-compatible store): streamed multipart
 * uploads confirmed by the store's MD5 ETag, our sha256 kept as object
 * metadata. Loaded by store.ts on the first request, with the AWS SDK.
 */
import fs from "node:fs";
import type { Readable } from "node:stream";
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { Measure, sha256Of, type Measured } from "../io/measure.js";
import { etagMatches, PART_SIZE } from "./md5.js";
import { storedOf, uploadBody, type OffsiteStore, type Put, type PutOptions, type StoredObject } from "./store.js";

export class S3Store implements OffsiteStore {
  readonly description: string;
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    readonly prefix: string,
  ) {
    this.description = `s3://${bucket}/${prefix}`;
  }

  async put(key: string, file: string, expected: Measured, options: PutOptions = {}): Promise<Put> {
    const bytes = fs.statSync(file).size;
    // S3 allows 10,000 parts: 5 MiB parts (bounded memory, small resends) up to 48 GiB, larger beyond
    // (an age file is 16 bytes per 64 KiB larger than its plaintext, plus its header).
    const partSize = Math.max(PART_SIZE, Math.ceil((Math.max(bytes, expected.bytes) * 1.001 + 65_536) / 10_000));
    // sha256 and MD5s of the bytes as they go (the file is read once): the sha256 must be the
    // catalog's before the upload may complete, the MD5s are compared with the store's ETag.
    const sent = new Measure({ sha256: !!options.encryptTo, md5PartSize: partSize });
    const { body, verify } = await uploadBody(file, expected, sent, options);
    try {
      const out = await new Upload({
        client: this.s3,
        params: {
          Bucket: this.bucket,
          Key: key,
          Body: body,
          Metadata: options.encryptTo ? { plaintext_sha256: expected.sha256 } : { sha256: expected.sha256 },
        },
        queueSize: 2,
        partSize,
        leavePartsOnError: false,
      }).done();
      const etag = "ETag" in out ? out.ETag : undefined;
      const stored = storedOf(expected, sent, options);
      return { confirmed: sent.bytes === stored.bytes && etagMatches(etag, sent.md5()), etag, stored };
    } catch (error) {
      throw verify.mismatch ?? error;
    }
  }

  async putStream(key: string, stream: Readable): Promise<{ etag?: string }> {
    const out = await new Upload({
      client: this.s3,
      params: { Bucket: this.bucket, Key: key, Body: stream },
      queueSize: 2,
      partSize: PART_SIZE,
      leavePartsOnError: false,
    }).done();
    return { etag: "ETag" in out ? out.ETag : undefined };
  }

  async putText(key: string, text: string): Promise<void> {
    const body = Buffer.from(text);
    const sha256 = sha256Of(body);
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, Metadata: { sha256 }, ContentType: "application/json" }));
  }

  async read(key: string): Promise<Readable> {
    const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return out.Body as Readable;
  }

  async head(key: string): Promise<StoredObject | undefined> {
    try {
      const h = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, bytes: h.ContentLength ?? 0, sha256: h.Metadata?.sha256, etag: h.ETag };
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw error;
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) out.push({ key: o.Key!, bytes: o.Size ?? 0, etag: o.ETag });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async remove(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }
}
