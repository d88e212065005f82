/**
 * The private spool: rendered exports wait here (folder 0700, files 0600)
 * until they are sent. Writes stream through a sha256 and a byte count.
 */
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import { Measure, measureStream, measuringTap } from "../io/measure.js";

export interface SpoolFile {
  path: string;
  bytes: number;
  sha256: string;
}

/**
 * How files that someone else could have named are opened: never through a
 * symbolic link (O_NOFOLLOW: ELOOP), never blocking on a FIFO (O_NONBLOCK),
 * never taking a terminal (O_NOCTTY). Only the opened descriptor is checked
 * and read afterwards, so swapping the name cannot change what is read.
 */
const READ_NO_FOLLOW = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY;

/** A new private file: created here and now (never an existing name or link), 0600. */
const CREATE_PRIVATE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

/** A file that must not be read or mailed; `message` says why. */
export class UnsafeFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsafeFileError";
  }
}

/** Why a (l)stat is not a plain file we may read, or undefined when it is one. */
export function plainFileProblem(stat: fs.Stats): string | undefined {
  if (stat.isSymbolicLink()) return "a symbolic link is never followed";
  if (!stat.isFile()) return "not a regular file";
  // A second name for the inode could be a hard link to a file outside the folder.
  if (stat.nlink !== 1) return `it has ${stat.nlink} hard links; only a file with exactly one name is taken`;
  return undefined;
}

export interface PlainFile {
  fd: number;
  stat: fs.Stats;
}

/**
 * Opens `file` for reading without following a link, and checks the opened
 * descriptor (regular file, one link). Throws UnsafeFileError with the reason
 * when it is not one; the caller closes `fd`.
 */
export function openPlainFile(file: string): PlainFile {
  let fd: number;
  try {
    fd = fs.openSync(file, READ_NO_FOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw new UnsafeFileError("a symbolic link is never followed");
    if (code === "ENXIO") throw new UnsafeFileError("not a regular file"); // a socket
    if (code === "EACCES") throw new UnsafeFileError("the worker may not read it");
    throw error;
  }
  try {
    const stat = fs.fstatSync(fd);
    const problem = plainFileProblem(stat);
    if (problem) throw new UnsafeFileError(problem);
    return { fd, stat };
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
}

/** A stream of an open file's bytes from the start; it closes `fd` when it ends or is destroyed. */
export function streamPlainFile(file: PlainFile): Readable {
  return fs.createReadStream("", { fd: file.fd, start: 0, autoClose: true });
}

/** A plain file opened and streamed, for a reader that must see exactly the file measured earlier. */
export function readSpool(file: SpoolFile): Readable {
  const opened = openPlainFile(file.path);
  if (opened.stat.size !== file.bytes) {
    fs.closeSync(opened.fd);
    throw new Error(`${path.basename(file.path)} has ${opened.stat.size} bytes, ${file.bytes} were measured: it changed in the spool`);
  }
  return streamPlainFile(opened);
}

/**
 * Copies the opened file into `target`, a new 0600 file, reading from the
 * descriptor only. `bytes`: the size the file had when it was judged
 * complete; any other size means it changed meanwhile (UnsafeFileError, and
 * no target is left behind).
 */
export async function copyPlainFile(source: PlainFile, bytes: number, target: string): Promise<SpoolFile> {
  const m = new Measure();
  const out = fs.createWriteStream("", { fd: fs.openSync(target, CREATE_PRIVATE, 0o600) }); // EEXIST: never overwritten
  try {
    // end is inclusive: one byte more than expected shows a file that grew.
    await pipeline(fs.createReadStream("", { fd: source.fd, start: 0, end: bytes, autoClose: false }), measuringTap(m), out);
    const copied = m.result();
    if (copied.bytes !== bytes) throw new UnsafeFileError(`it changed while it was taken (${bytes} bytes when complete, ${copied.bytes} read)`);
    return { path: target, ...copied };
  } catch (error) {
    fs.rmSync(target, { force: true });
    throw error;
  }
}

export function spoolDir(pmtHome: string): string {
  const dir = path.join(pmtHome, "spool");
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  return dir;
}

/** Writes the text chunks to `file` (0600), replacing any earlier attempt's file. */
export async function writeSpool(file: string, chunks: AsyncIterable<string>): Promise<SpoolFile> {
  const m = new Measure();
  await pipeline(Readable.from(chunks, { objectMode: false }), measuringTap(m), fs.createWriteStream(file, { mode: 0o600 }));
  return { path: file, ...m.result() };
}

/** gzip of `source` into `source.gz` (0600), streamed. */
export async function gzipSpool(source: SpoolFile): Promise<SpoolFile> {
  const target = `${source.path}.gz`;
  const m = new Measure();
  await pipeline(readSpool(source), zlib.createGzip({ level: 9 }), measuringTap(m), fs.createWriteStream(target, { mode: 0o600 }));
  return { path: target, ...m.result() };
}

/** Size and sha256 of a file already in the spool, streamed from a checked descriptor. */
export async function measureSpool(file: string): Promise<SpoolFile> {
  return { path: file, ...(await measureStream(streamPlainFile(openPlainFile(file)))) };
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
    // Links too (a drop-folder entry refused while spooled, left by a crash): removed as links, never followed.
    if ((stat?.isFile() || stat?.isSymbolicLink()) && now - stat.mtimeMs > hours * 3600_000) {
      fs.rmSync(file, { force: true });
      deleted++;
    }
  }
  return deleted;
}
