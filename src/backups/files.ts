/** Durable file operations for backups: 0700 folders, fsync of files and folders, hashing. */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";

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

/** Every file of a directory-format dump, hashed; the dump's sha256 is that of the sorted list. */
export async function hashDirectory(dir: string): Promise<{ bytes: number; sha256: string; files: { name: string; bytes: number; sha256: string }[] }> {
  const files = [];
  for (const name of fs.readdirSync(dir).sort()) {
    files.push({ name, ...(await sha256File(path.join(dir, name))) });
  }
  const sha256 = crypto.createHash("sha256").update(files.map((f) => `${f.sha256}  ${f.name}\n`).join("")).digest("hex");
  return { bytes: files.reduce((n, f) => n + f.bytes, 0), sha256, files };
}

export function removePath(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}
