/**
 * The private spool: rendered exports wait here (folder 0700, files 0600)
 * until they are sent. Writes stream through a sha256 and a byte count.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Readable, Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";

export interface SpoolFile {
  path: string;
  bytes: number;
  sha256: string;
}

export function spoolDir(pmtHome: string): string {
  const dir = path.join(pmtHome, "spool");
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  return dir;
}

function measure(): { transform: Transform; result: () => { bytes: number; sha256: string } } {
  const hash = crypto.createHash("sha256");
  let bytes = 0;
  const transform = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return { transform, result: () => ({ bytes, sha256: hash.digest("hex") }) };
}

/** Writes the text chunks to `file` (0600), replacing any earlier attempt's file. */
export async function writeSpool(file: string, chunks: AsyncIterable<string>): Promise<SpoolFile> {
  const m = measure();
  await pipeline(Readable.from(chunks, { objectMode: false }), m.transform, fs.createWriteStream(file, { mode: 0o600 }));
  return { path: file, ...m.result() };
}

/** gzip of `source` into `source.gz` (0600), streamed. */
export async function gzipSpool(source: string): Promise<SpoolFile> {
  const target = `${source}.gz`;
  const m = measure();
  await pipeline(fs.createReadStream(source), zlib.createGzip({ level: 9 }), m.transform, fs.createWriteStream(target, { mode: 0o600 }));
  return { path: target, ...m.result() };
}

/** Size and sha256 of a file already in the spool, streamed. */
export async function measureSpool(file: string): Promise<SpoolFile> {
  const m = measure();
  await pipeline(fs.createReadStream(file), m.transform, new Writable({ write: (_c, _e, done) => done() }));
  return { path: file, ...m.result() };
}

/**
 * Deletes spool files not modified for `hours` (leftovers of crashed or
 * failed exports, and sent files kept for audit). Returns how many went.
 */
export function pruneSpool(pmtHome: string, hours: number, now = Date.now()): number {
  const dir = spoolDir(pmtHome);
  let deleted = 0;
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    const stat = fs.lstatSync(file, { throwIfNoEntry: false });
    if (stat?.isFile() && now - stat.mtimeMs > hours * 3600_000) {
      fs.rmSync(file, { force: true });
      deleted++;
    }
  }
  return deleted;
}
