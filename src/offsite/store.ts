/**
 * Offsite storage behind one small interface (pgBackRest's storage/ idea):
 * S3 (any S3-compatible store) or a local directory (`file://`, the embedded
 * default's stand-in for a bucket). Uploads stream; integrity is our own
 * sha256, kept as object metadata (S3) and checked by reading back.
 */
import fs from "node:fs";
import path from "node:path";
import { Readable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { verifyingFileTap } from "../backups/files.js";
import { encryptStream } from "../io/age.js";
import { Measure, measureStream, measuringTap, sha256Of, type Measured } from "../io/measure.js";
import { etagMatches, PART_SIZE } from "./md5.js";
import { createS3Client, objectKey, parseOffsiteUrl, type S3Settings } from "./target.js";

export interface StoredObject {
  key: string;
  bytes: number;
  sha256?: string;
  /** The store's version tag of the object: S3's ETag; for a folder, its inode, size and change time. */
  etag?: string;
}

export interface OffsiteStore {
  /** "s3://bucket/prefix" or "file:///dir": where copies go (no credentials). */
  readonly description: string;
  readonly prefix: string;
  /**
   * Uploads a file, hashing it as it is read: when it is not `expected` (the
   * catalog's size and sha256) the upload fails with LocalFileMismatch and
   * never completes. `confirmed`: the store's own checksum of what it stored
   * (an MD5 ETag) equals ours of the file, so the bytes arrived intact;
   * false when the store gave none we can check (then read it back).
   * `etag`: what the store lists for the object now.
   */
  put(key: string, file: string, expected: Measured, options?: PutOptions): Promise<Put>;
  /** Upload of a stream of unknown length (OFFSITE_STREAM), in parts of PART_SIZE; the store's ETag, if any. */
  putStream(key: string, stream: Readable): Promise<{ etag?: string }>;
  putText(key: string, text: string): Promise<void>;
  read(key: string): Promise<Readable>;
  head(key: string): Promise<StoredObject | undefined>;
  list(prefix: string): Promise<StoredObject[]>;
  remove(key: string): Promise<void>;
}

export interface PutOptions {
  /** age recipients: the file's bytes (proven to be `expected` first) are encrypted to them on their way (io/age.ts). */
  encryptTo?: string[];
}

export interface Put {
  confirmed: boolean;
  etag?: string;
  /** What the store holds: `expected` itself, or the encrypted bytes' size and sha256. */
  stored: Measured;
}

/**
 * The bytes of `file` as they go to the store: hashed and refused at their end
 * unless they are `expected` (the catalog's), then encrypted when asked, then
 * measured (`sent`: the store's ETag forms, and the sha256 of what is stored
 * when that differs from the file). Nothing is buffered beyond a chunk or two.
 */
async function uploadBody(file: string, expected: Measured, sent: Measure, options: PutOptions = {}) {
  const verify = verifyingFileTap(file, expected);
  const body = measuringTap(sent);
  const plain = fs.createReadStream(file);
  // pipeline passes a read error or a mismatch on to the body, which fails the upload.
  if (!options.encryptTo) {
    pipeline(plain, verify, body).catch(() => {});
  } else {
    const encrypted = await encryptStream(verify, options.encryptTo);
    pipeline(plain, verify).catch(() => {});
    pipeline(encrypted, body).catch(() => {});
  }
  return { body, verify };
}

function storedOf(expected: Measured, sent: Measure, options: PutOptions = {}): Measured {
  return options.encryptTo ? sent.result() : expected;
}

/** sha256 and size of an object, by reading it back. */
export async function hashObject(store: OffsiteStore, key: string): Promise<Measured> {
  return measureStream(await store.read(key));
}

class S3Store implements OffsiteStore {
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

/** A folder's stand-in for an ETag: any rewrite (a new inode by rename, or bytes changed in place) changes it. */
function fileTag(stat: fs.BigIntStats): string {
  return `${stat.ino}-${stat.size}-${stat.ctimeNs}`;
}

class DirectoryStore implements OffsiteStore {
  readonly description: string;
  readonly prefix = "";
  constructor(private readonly dir: string) {
    this.description = `file://${dir}`;
  }

  private file(key: string): string {
    const resolved = path.resolve(this.dir, key);
    if (!resolved.startsWith(path.resolve(this.dir) + path.sep)) throw new Error(`object key ${key} leaves ${this.dir}`);
    return resolved;
  }

  private async write(key: string, source: Readable, through?: Transform): Promise<void> {
    const target = this.file(key);
    fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
    const tmp = `${target}.partial`;
    try {
      const out = fs.createWriteStream(tmp, { mode: 0o600 });
      await (through ? pipeline(source, through, out) : pipeline(source, out));
    } catch (error) {
      fs.rmSync(tmp, { force: true });
      throw error;
    }
    const fd = fs.openSync(tmp, "r");
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, target);
  }

  async put(key: string, file: string, expected: Measured, options: PutOptions = {}): Promise<Put> {
    const sent = new Measure({ sha256: !!options.encryptTo });
    const { body, verify } = await uploadBody(file, expected, sent, options);
    try {
      await this.write(key, body);
    } catch (error) {
      throw verify.mismatch ?? error;
    }
    return { confirmed: false, etag: (await this.head(key))?.etag, stored: storedOf(expected, sent, options) };
  }

  async putStream(key: string, stream: Readable): Promise<{ etag?: string }> {
    await this.write(key, stream);
    return {};
  }

  putText(key: string, text: string): Promise<void> {
    return this.write(key, Readable.from([Buffer.from(text)]));
  }

  async read(key: string): Promise<Readable> {
    return fs.createReadStream(this.file(key));
  }

  async head(key: string): Promise<StoredObject | undefined> {
    const stat = fs.statSync(this.file(key), { throwIfNoEntry: false, bigint: true });
    return stat?.isFile() ? { key, bytes: Number(stat.size), etag: fileTag(stat) } : undefined;
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    const walk = (dir: string) => {
      if (!fs.existsSync(dir)) return;
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile() && !e.name.endsWith(".partial")) {
          const key = path.relative(this.dir, p).split(path.sep).join("/");
          const stat = fs.statSync(p, { bigint: true });
          if (key.startsWith(prefix)) out.push({ key, bytes: Number(stat.size), etag: fileTag(stat) });
        }
      }
    };
    walk(this.dir);
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }

  async remove(key: string): Promise<void> {
    fs.rmSync(this.file(key), { force: true });
  }
}

export function openStore(offsiteUrl: string, s3: S3Settings): OffsiteStore {
  const target = parseOffsiteUrl(offsiteUrl);
  if (target.kind === "file") {
    fs.mkdirSync(target.dir, { recursive: true, mode: 0o700 });
    return new DirectoryStore(target.dir);
  }
  return new S3Store(createS3Client(s3), target.bucket, target.prefix);
}

export { objectKey };
