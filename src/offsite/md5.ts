/**
 * The MD5 forms an S3 ETag takes, computed on our side, so that a store's
 * ETag can prove a copy intact without downloading it again (OFFSITE_VERIFY
 * = checksum). Kept apart from store.ts: no AWS SDK here.
 */
import crypto from "node:crypto";
import { Transform } from "node:stream";

/** S3's smallest part size: the part size of streamed uploads. */
export const PART_SIZE = 5 * 1024 * 1024;

export interface Md5Digests {
  /** MD5 of the whole file: a single PUT's ETag (and s3rver's for any upload). */
  whole: string;
  /** MD5 of the parts' binary MD5s and their count: AWS's and MinIO's multipart ETag. */
  multipart: string;
}

/** MD5s of a byte stream, whole and per part of `partSize` bytes, fed as it flows. */
export class Md5Parts {
  private readonly whole = crypto.createHash("md5");
  private readonly parts: Buffer[] = [];
  private part = crypto.createHash("md5");
  private inPart = 0;
  bytes = 0;
  constructor(private readonly partSize: number) {}

  update(chunk: Buffer): void {
    this.whole.update(chunk);
    this.bytes += chunk.length;
    for (let offset = 0; offset < chunk.length; ) {
      const take = Math.min(this.partSize - this.inPart, chunk.length - offset);
      this.part.update(chunk.subarray(offset, offset + take));
      this.inPart += take;
      offset += take;
      if (this.inPart === this.partSize) {
        this.parts.push(this.part.digest());
        this.part = crypto.createHash("md5");
        this.inPart = 0;
      }
    }
  }

  /** Call once, at the end. */
  digests(): Md5Digests {
    if (this.inPart > 0 || this.parts.length === 0) this.parts.push(this.part.digest());
    return { whole: this.whole.digest("hex"), multipart: `${crypto.createHash("md5").update(Buffer.concat(this.parts)).digest("hex")}-${this.parts.length}` };
  }
}

/** A pass-through that feeds every chunk to `md5` on its way (the upload's body). */
export function md5Tap(md5: Md5Parts): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      md5.update(chunk);
      callback(null, chunk);
    },
  });
}

/**
 * Whether an ETag proves the store holds our bytes. Only a plain MD5 form
 * counts; anything else (SSE-KMS, SSE-C, clones with other ETags) is "cannot
 * tell", never a mismatch: the caller then reads the object back.
 */
export function etagMatches(etag: string | undefined, md5: Md5Digests): boolean {
  const value = etag?.replace(/^W\//, "").replace(/"/g, "").toLowerCase();
  return value === md5.whole || value === md5.multipart;
}

