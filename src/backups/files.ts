/** Durable file operations for backups: 0700 folders, fsync of files and folders, hashing. */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { Transform, Writable } from "node:stream";

export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

export function fsyncFile(file: string): void {
  const fd = fs.openSync(file, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync of the folder holding `file`, so a rename survives a crash. */
export function fsyncDir(file: string): void {
  fsyncFile(path.dirname(file));
}

export function sha256File(file: string): Promise<{ bytes: number; sha256: string }> {
  return hashStream(fs.createReadStream(file));
}

/** Size and sha256 of everything a stream yields. */
export async function hashStream(stream: NodeJS.ReadableStream): Promise<{ bytes: number; sha256: string }> {
  const hash = crypto.createHash("sha256");
  let bytes = 0;
  await pipeline(
    stream,
    new Writable({
      write(chunk: Buffer, _e, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done();
      },
    }),
  );
  return { bytes, sha256: hash.digest("hex") };
}

/** A file read for upload is not the one the catalog hashed (a flipped byte, a truncated or replaced file). */
export class LocalFileMismatch extends Error {
  constructor(
    readonly file: string,
    readonly actual: { bytes: number; sha256: string },
    readonly expected: { bytes: number; sha256: string },
  ) {
    super(`${file} is not the backup the catalog recorded: read ${actual.bytes} bytes sha256 ${actual.sha256}, expected ${expected.bytes} bytes sha256 ${expected.sha256}`);
    this.name = "LocalFileMismatch";
  }
}

/**
 * A pass-through that hashes the bytes on their way and fails the stream at
 * its end, before the last byte is handed on, when they are not `expected`:
 * an upload fed by it never completes with other bytes than the catalog's.
 * `mismatch` is set then (an upload library may wrap the error).
 */
export function verifyingTap(file: string, expected: { bytes: number; sha256: string }): Transform & { mismatch?: LocalFileMismatch } {
  const hash = crypto.createHash("sha256");
  let bytes = 0;
  let held: Buffer | undefined;
  const tap: Transform & { mismatch?: LocalFileMismatch } = new Transform({
    // One chunk is held back, so that the end of the data goes out only once it is proven.
    transform(chunk: Buffer, _e, done) {
      hash.update(chunk);
      bytes += chunk.length;
      const previous = held;
      held = chunk;
      done(null, previous);
    },
    flush(done) {
      const actual = { bytes, sha256: hash.digest("hex") };
      if (actual.bytes !== expected.bytes || actual.sha256 !== expected.sha256) {
        tap.mismatch = new LocalFileMismatch(file, actual, expected);
        done(tap.mismatch);
        return;
      }
      done(null, held);
    },
  });
  return tap;
}

/** Every file of a directory-format dump, hashed; the dump's sha256 is that of the sorted list. */
export async function hashDirectory(dir: string): Promise<{ bytes: number; sha256: string; files: { name: string; bytes: number; sha256: string }[] }> {
  const files = [];
  for (const name of fs.readdirSync(dir).sort()) {
    files.push({ name, ...(await sha256File(path.join(dir, name))) });
  }
  return { ...directoryDigest(files), files };
}

/** A directory-format dump's size and sha256 from its files' (the sha256 of the sorted "sha256  name" lines). */
export function directoryDigest(files: { name: string; bytes: number; sha256: string }[]): { bytes: number; sha256: string } {
  const sha256 = crypto.createHash("sha256").update(files.map((f) => `${f.sha256}  ${f.name}\n`).join("")).digest("hex");
  return { bytes: files.reduce((n, f) => n + f.bytes, 0), sha256 };
}

export function removePath(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}
