/**
 * Whether a store's ETag proves a copy intact without downloading it again
 * (OFFSITE_VERIFY = checksum), against the MD5s io/measure.ts took of the
 * bytes sent. Kept apart from store.ts: no AWS SDK here.
 */
import type { Md5Digests } from "../io/measure.js";

/** S3's smallest part size: the part size of streamed uploads. */
export const PART_SIZE = 5 * 1024 * 1024;

/**
 * Whether an ETag proves the store holds our bytes. Only a plain MD5 form
 * counts; anything else (SSE-KMS, SSE-C, clones with other ETags) is "cannot
 * tell", never a mismatch: the caller then reads the object back.
 */
export function etagMatches(etag: string | undefined, md5: Md5Digests): boolean {
  const value = etag?.replace(/^W\//, "").replace(/"/g, "").toLowerCase();
  return value === md5.whole || value === md5.multipart;
}
