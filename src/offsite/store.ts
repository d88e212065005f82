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
import { verifyingFileTap } from "../backups/files.js";
import { Measure, measureStream, measuringTap, type Measured } from "../io/measure.js";
import { objectKey, parseOffsiteUrl, type S3Settings } from "./url.js";

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
export async function uploadBody(file: string, expected: Measured, sent: Measure, options: PutOptions = {}) {
  const verify = verifyingFileTap(file, expected);
  const body = measuringTap(sent);
  const plain = fs.createReadStream(file);
  // pipeline passes a read error or a mismatch on to the body, which fails the upload.
  if (!options.encryptTo) {
    pipeline(plain, verify, body).catch(() => {});
  } else {
    const { encryptStream } = await import("../io/age.js");
    const encrypted = await encryptStream(verify, options.encryptTo);
    pipeline(plain, verify).catch(() => {});
    pipeline(encrypted, body).catch(() => {});
  }
  return { body, verify };
}

export function storedOf(expected: Measured, sent: Measure, options: PutOptions = {}): Measured {
  return options.encryptTo ? sent.result() : expected;
}

/** sha256 and size of an object, by reading it back. */
export async function hashObject(store: OffsiteStore, key: string): Promise<Measured> {
  return measureStream(await store.read(key));
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
  return lazyS3Store(target.bucket, target.prefix, s3);
}

/**
 * The S3 store (s3-store.ts), the AWS SDK loaded on its first request: a
 * command that never reaches the store does not pay for it.
 */
function lazyS3Store(bucket: string, prefix: string, settings: S3Settings): OffsiteStore {
  let loaded: Promise<OffsiteStore> | undefined;
  const store = () =>
    (loaded ??= Promise.all([import("./s3-store.js"), import("./target.js")]).then(
      ([{ S3Store }, { createS3Client }]) => new S3Store(createS3Client(settings), bucket, prefix),
    ));
  return {
    description: `s3://${bucket}/${prefix}`,
    prefix,
    put: async (...args) => (await store()).put(...args),
    putStream: async (...args) => (await store()).putStream(...args),
    putText: async (...args) => (await store()).putText(...args),
    read: async (...args) => (await store()).read(...args),
    head: async (...args) => (await store()).head(...args),
    list: async (...args) => (await store()).list(...args),
    remove: async (...args) => (await store()).remove(...args),
  };
}

export { objectKey };
