/** The MD5 forms an S3 ETag takes, computed as the bytes go by, and when an ETag proves a copy. */
import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { Md5Parts } from "../../src/io/measure.js";
import { etagMatches } from "../../src/offsite/md5.js";

const md5 = (b: Buffer) => crypto.createHash("md5").update(b).digest();
const MiB = 2 ** 20;

describe("Md5Parts", () => {
  it.each([
    ["three parts, the last short", 12 * MiB + 3, 3, 700_001],
    ["exactly two parts", 10 * MiB, 2, 700_001],
    ["one short part", 1000, 1, 700_001],
    ["an empty file", 0, 1, 700_001],
    ["exactly one part, chunks ending on its boundary", 5 * MiB, 1, MiB],
    ["two parts and a byte, in one chunk", 10 * MiB + 1, 3, 11 * MiB],
    ["a part and a half, chunks ending on the boundary", 7 * MiB + 512, 2, MiB / 2],
  ])("computes the whole MD5 and AWS's multipart form for %s", (_name, size, parts, chunk) => {
    const data = crypto.randomBytes(size);
    // Fed in chunks that straddle (or end on) the part boundaries, as a file stream does.
    const parts5 = new Md5Parts(5 * MiB);
    for (let offset = 0; offset < data.length; offset += chunk) parts5.update(data.subarray(offset, offset + chunk));
    expect(parts5.bytes).toBe(size);
    const d = parts5.digests();
    expect(d.whole).toBe(md5(data).toString("hex"));
    const partMd5s: Buffer[] = [];
    for (let i = 0; i < Math.max(parts, 1); i++) partMd5s.push(md5(data.subarray(i * 5 * MiB, (i + 1) * 5 * MiB)));
    expect(d.multipart).toBe(`${md5(Buffer.concat(partMd5s)).toString("hex")}-${parts}`);
  });
});

describe("etagMatches", () => {
  const d = { whole: "0123456789abcdef0123456789abcdef", multipart: "fedcba9876543210fedcba9876543210-3" };
  it("accepts either form, quoted or not, any case", () => {
    expect(etagMatches('"0123456789ABCDEF0123456789ABCDEF"', d)).toBe(true);
    expect(etagMatches("fedcba9876543210fedcba9876543210-3", d)).toBe(true);
    expect(etagMatches('W/"0123456789abcdef0123456789abcdef"', d)).toBe(true);
  });
  it("cannot tell (so the copy is read back) for other ETags or none", () => {
    expect(etagMatches(undefined, d)).toBe(false);
    expect(etagMatches('"ffffffffffffffffffffffffffffffff"', d)).toBe(false);
    expect(etagMatches("fedcba9876543210fedcba9876543210-4", d)).toBe(false);
  });
});
