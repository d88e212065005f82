/** Durable file operations for backups: 0700 folders, fsync of files and folders, a directory dump's digest. */
import fs from "node:fs";
import path from "node:path";
import type { Transform } from "node:stream";
import { measureFile, sha256Of, verifyingTap, type Measured } from "../io/measure.js";

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

/** A file read for upload is not the one the catalog hashed (a flipped byte, a truncated or replaced file). */
export class LocalFileMismatch extends Error {
  constructor(
    readonly file: string,
    readonly actual: Measured,
    readonly expected: Measured,
  ) {
    super(
      `${file} is not the backup the catalog recorded: read ${actual.bytes} bytes sha256 ${actual.sha256}, expected ${expected.bytes} bytes sha256 ${expected.sha256}`,
    );
    this.name = "LocalFileMismatch";
  }
}

/** A pass-through that fails an upload of `file` at its end, before the last byte goes out, unless it read `expected` (the catalog's). */
export function verifyingFileTap(file: string, expected: Measured): Transform & { mismatch?: LocalFileMismatch } {
  return verifyingTap(expected, (actual) => new LocalFileMismatch(file, actual, expected));
}

/** Every file of a directory-format dump, hashed; the dump's sha256 is that of the sorted list. */
export async function hashDirectory(dir: string): Promise<{ bytes: number; sha256: string; files: { name: string; bytes: number; sha256: string }[] }> {
  const files = [];
  for (const name of fs.readdirSync(dir).sort()) {
    files.push({ name, ...(await measureFile(path.join(dir, name))) });
  }
  return { ...directoryDigest(files), files };
}

/** A directory-format dump's size and sha256 from its files' (the sha256 of the sorted "sha256  name" lines). */
export function directoryDigest(files: { name: string; bytes: number; sha256: string }[]): { bytes: number; sha256: string } {
  const sha256 = sha256Of(files.map((f) => `${f.sha256}  ${f.name}\n`).join(""));
  return { bytes: files.reduce((n, f) => n + f.bytes, 0), sha256 };
}

/** Writes `target` durably and at once: `<target>.partial` (0600), fsync, rename, fsync of the folder. */
export function writeFileAtomic(target: string, data: string): void {
  const tmp = `${target}.partial`;
  const fd = fs.openSync(tmp, "w", 0o600);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, target);
  fsyncDir(target);
}

export function removePath(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}
