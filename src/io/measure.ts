/**
 * Bytes measured on their way, in one place: size and sha256 (what the
 * catalog, manifests and export rows record), and the MD5 forms an S3 ETag
 * takes (so a store's ETag can prove a copy without reading it back). A
 * measuring tap passes the bytes on unchanged and may feed a second
 * destination (OFFSITE_STREAM) at the pace of the slower one, without letting
 * that one fail the first.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import { Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";

export interface Measured {
  bytes: number;
  sha256: string;
}

export interface Md5Digests {
  /** MD5 of the whole file: a single PUT's ETag (and s3rver's for any upload). */
  whole: string;
  /** MD5 of the parts' binary MD5s and their count: AWS's and MinIO's multipart ETag. */
  multipart: string;
}

/** sha256 (hex) of bytes already in memory. */
export function sha256Of(data: Buffer | string): string {
  return crypto.createHash("sha256").update(data).digest("hex");
}

/**
 * MD5s of a byte stream, whole and per part of `partSize` bytes, fed as it
 * flows. The first part's MD5 is the whole hash's state at the part's end
 * (hash.copy()), so a file of one part is hashed once, not twice.
 */
export class Md5Parts {
  private readonly whole = crypto.createHash("md5");
  private readonly parts: Buffer[] = [];
  private part = crypto.createHash("md5");
  private inPart = 0;
  bytes = 0;
  constructor(private readonly partSize: number) {}

  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    let offset = 0;
    if (this.parts.length === 0) {
      // Still in the first part: the whole file's hash is its hash too.
      offset = Math.min(this.partSize - this.inPart, chunk.length);
      this.whole.update(chunk.subarray(0, offset));
      this.inPart += offset;
      if (this.inPart < this.partSize) return;
      this.parts.push(this.whole.copy().digest());
      this.inPart = 0;
      if (offset === chunk.length) return;
    }
    this.whole.update(offset === 0 ? chunk : chunk.subarray(offset));
    while (offset < chunk.length) {
      const take = Math.min(this.partSize - this.inPart, chunk.length - offset);
      this.part.update(chunk.subarray(offset, offset + take));
      this.inPart += take;
      offset += take;
      if (this.inPart === this.partSize) {
        this.parts.push(this.part.digest());
        this.part = crypto.createHash("md5");
        this.inPart = 0;
      }
    }
  }

  /** Call once, at the end. */
  digests(): Md5Digests {
    if (this.parts.length === 0) this.parts.push(this.whole.copy().digest());
    else if (this.inPart > 0) this.parts.push(this.part.digest());
    return { whole: this.whole.digest("hex"), multipart: `${crypto.createHash("md5").update(Buffer.concat(this.parts)).digest("hex")}-${this.parts.length}` };
  }
}

export interface MeasureOptions {
  /** Off where only the MD5s are wanted (the same bytes' sha256 is taken elsewhere): sha256 costs CPU. Default on. */
  sha256?: boolean;
  /** Also the MD5s, whole and per part of this many bytes (S3's multipart ETag). */
  md5PartSize?: number;
}

/** Size, sha256 and (if asked) MD5s of the bytes it is fed. */
export class Measure {
  bytes = 0;
  private readonly sha: crypto.Hash | undefined;
  private readonly md5Parts: Md5Parts | undefined;

  constructor(options: MeasureOptions = {}) {
    this.sha = options.sha256 === false ? undefined : crypto.createHash("sha256");
    this.md5Parts = options.md5PartSize ? new Md5Parts(options.md5PartSize) : undefined;
  }

  update(chunk: Buffer): void {
    this.sha?.update(chunk);
    this.md5Parts?.update(chunk);
    this.bytes += chunk.length;
  }

  /** Size and sha256 of everything fed; call once, at the end. */
  result(): Measured {
    if (!this.sha) throw new Error("this measure takes no sha256");
    return { bytes: this.bytes, sha256: this.sha.digest("hex") };
  }

  /** The MD5 forms of everything fed; call once, at the end. */
  md5(): Md5Digests {
    if (!this.md5Parts) throw new Error("this measure takes no MD5s");
    return this.md5Parts.digests();
  }
}

/**
 * A second destination of a measuring tap (OFFSITE_STREAM) that may fail
 * without failing the first: from its failure on it is fed no more, and
 * `onFailure` hears why (once). `done` settles when the destination has all
 * of it (or failed).
 */
export class Tee {
  failed = false;

  constructor(
    readonly stream: Writable,
    readonly done: Promise<unknown>,
    onFailure: (error: unknown) => void,
  ) {
    done.catch((error) => {
      this.failed = true;
      stream.destroy(); // wakes a write waiting for "drain"
      onFailure(error);
    });
    stream.on("error", () => (this.failed = true));
  }

  /** The first destination failed: the second must not complete with part of the bytes. */
  abort(reason: Error): void {
    if (!this.failed) this.stream.destroy(reason);
  }

  /** Waits for the destination to finish, failed or not (its failure was reported by onFailure). */
  async settled(): Promise<void> {
    await this.done.catch(() => {});
  }
}

/**
 * A pass-through that feeds every chunk to `measure` (and `onProgress`), and
 * to `tee` when there is one: a tee slower than the first destination is
 * waited for rather than buffered without bound, until it fails.
 */
export function measuringTap(measure: Measure, options: { onProgress?: (bytes: number) => void; tee?: Tee } = {}): Transform {
  const { onProgress, tee } = options;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      measure.update(chunk);
      onProgress?.(measure.bytes);
      // A destination closed without an error (a child's stdin, closed as the child exits) is fed no more either:
      // a write to it would wait for events it has already sent.
      if (tee && !tee.failed && !tee.stream.destroyed && !tee.stream.write(chunk)) {
        const stream = tee.stream;
        const resume = () => {
          stream.off("drain", resume).off("close", resume).off("error", resume);
          done(null, chunk);
        };
        if (stream.destroyed) return resume();
        stream.once("drain", resume).once("close", resume).once("error", resume);
        return;
      }
      done(null, chunk);
    },
    flush(done) {
      if (tee && !tee.failed && !tee.stream.destroyed) tee.stream.end();
      done();
    },
  });
}

/**
 * A pass-through that measures the bytes on their way and fails the stream at
 * its end, before the last byte is handed on, when they are not `expected`:
 * an upload fed by it never completes with other bytes. `mismatch` is set
 * then, to the error `mismatch(actual)` made (an upload library may wrap it).
 */
export function verifyingTap<E extends Error>(expected: Measured, mismatch: (actual: Measured) => E): Transform & { mismatch?: E } {
  const measure = new Measure();
  let held: Buffer | undefined;
  const tap: Transform & { mismatch?: E } = new Transform({
    // One chunk is held back, so that the end of the data goes out only once it is proven.
    transform(chunk: Buffer, _e, done) {
      measure.update(chunk);
      const previous = held;
      held = chunk;
      done(null, previous);
    },
    flush(done) {
      const actual = measure.result();
      if (actual.bytes !== expected.bytes || actual.sha256 !== expected.sha256) {
        tap.mismatch = mismatch(actual);
        done(tap.mismatch);
        return;
      }
      done(null, held);
    },
  });
  return tap;
}

/** Size and sha256 (and MD5s, if asked: `measure.md5()`) of everything a stream yields. */
export async function measureStream(stream: NodeJS.ReadableStream, measure = new Measure()): Promise<Measured> {
  await pipeline(
    stream,
    new Writable({
      write(chunk: Buffer, _e, done) {
        measure.update(chunk);
        done();
      },
    }),
  );
  return measure.result();
}

export function measureFile(file: string): Promise<Measured> {
  return measureStream(fs.createReadStream(file));
}
