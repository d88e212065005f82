/** The MD5 forms an S3 ETag takes, computed from the file, and when an ETag proves a copy. */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { etagMatches, md5Digests } from "../../src/offsite/md5.js";

const md5 = (b: Buffer) => crypto.createHash("md5").update(b).digest();
const MiB = 2 ** 20;

function fileOf(bytes: Buffer): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-etag-"));
  const file = path.join(dir, "f");
  fs.writeFileSync(file, bytes);
  return file;
}

describe("md5Digests", () => {
  it.each([
    ["three parts, the last short", 12 * MiB + 3, 3],
    ["exactly two parts", 10 * MiB, 2],
    ["one short part", 1000, 1],
    ["an empty file", 0, 1],
  ])("computes the whole MD5 and AWS's multipart form for %s", async (_name, size, parts) => {
    const data = crypto.randomBytes(size);
    const d = await md5Digests(fileOf(data), 5 * MiB);
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
