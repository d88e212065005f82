/**
 * Stream measuring (src/io/measure.ts), without PostgreSQL: size and sha256
 * of the bytes as they pass, the MD5 forms, a second destination fed at the
 * pace of the slower one and allowed to fail alone, and the tap that refuses
 * other bytes than the expected before the last of them goes out.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, describe, expect, it } from "vitest";
import { Md5Parts, Measure, measureFile, measureStream, measuringTap, sha256Of, Tee, verifyingTap, type Measured } from "../../src/io/measure.js";

const KiB = 1024;
const sha256 = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
/** `count` chunks of `size` random bytes, and all of them together. */
function chunks(count: number, size: number): { list: Buffer[]; all: Buffer } {
  const list = Array.from({ length: count }, () => crypto.randomBytes(size));
  return { list, all: Buffer.concat(list) };
}

/** A destination that keeps what it is given. */
function sink(): { stream: Writable; received: () => Buffer } {
  const got: Buffer[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer, _e, done) {
        got.push(chunk);
        done();
      },
    }),
    received: () => Buffer.concat(got),
  };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-unit-measure-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("Measure", () => {
  it("counts the bytes and takes their sha256, whatever the chunks", () => {
    const { list, all } = chunks(7, 10_001);
    const m = new Measure();
    for (const c of list) m.update(c);
    expect(m.result()).toEqual({ bytes: all.length, sha256: sha256(all) });
  });

  it("takes the MD5 forms S3 computes when asked, the same as Md5Parts", () => {
    const { list, all } = chunks(5, 3000);
    const m = new Measure({ sha256: false, md5PartSize: 4096 });
    const reference = new Md5Parts(4096);
    for (const c of list) {
      m.update(c);
      reference.update(c);
    }
    expect(m.bytes).toBe(all.length);
    const digests = m.md5();
    expect(digests).toEqual(reference.digests());
    expect(digests.whole).toBe(crypto.createHash("md5").update(all).digest("hex"));
    expect(digests.multipart).toMatch(/-4$/);
  });

  it("refuses to give what it was told not to take, rather than a wrong value", () => {
    expect(() => new Measure({ sha256: false }).result()).toThrow(/takes no sha256/);
    expect(() => new Measure().md5()).toThrow(/takes no MD5s/);
  });

  it("sha256Of agrees with the streamed sha256", () => {
    const { list, all } = chunks(3, 999);
    const m = new Measure();
    for (const c of list) m.update(c);
    expect(sha256Of(all)).toBe(m.result().sha256);
  });
});

describe("measureStream and measureFile", () => {
  it("measure everything a stream or a file yields", async () => {
    const { list, all } = chunks(9, 70_000);
    expect(await measureStream(Readable.from(list))).toEqual({ bytes: all.length, sha256: sha256(all) });
    const file = path.join(tmp, "file");
    fs.writeFileSync(file, all);
    expect(await measureFile(file)).toEqual({ bytes: all.length, sha256: sha256(all) });
    fs.writeFileSync(path.join(tmp, "empty"), "");
    expect(await measureFile(path.join(tmp, "empty"))).toEqual({ bytes: 0, sha256: sha256(Buffer.alloc(0)) });
  });

  it("fails with the stream's error (a missing file), not with a measure", async () => {
    await expect(measureFile(path.join(tmp, "missing"))).rejects.toThrow(/ENOENT/);
  });
});

describe("measuringTap", () => {
  it("passes the bytes on unchanged and reports progress up to their total", async () => {
    const { list, all } = chunks(6, 5000);
    const m = new Measure();
    const progress: number[] = [];
    const out = sink();
    await pipeline(Readable.from(list), measuringTap(m, { onProgress: (n) => progress.push(n) }), out.stream);
    expect(out.received().equals(all)).toBe(true);
    expect(m.result()).toEqual({ bytes: all.length, sha256: sha256(all) });
    expect(progress).toEqual(list.map((_, i) => (i + 1) * 5000));
  });

  it("feeds a tee at the slower one's pace: the first destination never gets bytes the tee has not taken", async () => {
    const { list, all } = chunks(40, 16 * KiB);
    let teeTaken = 0;
    const teeGot: Buffer[] = [];
    // A tee that takes each chunk a turn of the event loop later and buffers almost nothing (a slow store).
    const slow = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _e, done) {
        setImmediate(() => {
          teeGot.push(chunk);
          teeTaken += chunk.length;
          done();
        });
      },
    });
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    slow.on("finish", () => finished());
    const tee = new Tee(slow, done, () => {
      throw new Error("the tee did not fail");
    });
    let received = 0;
    let firstAhead = 0;
    const first = new Writable({
      write(chunk: Buffer, _e, cb) {
        received += chunk.length;
        // Without backpressure the tap would hand chunks on while the tee still holds them.
        firstAhead = Math.max(firstAhead, received - teeTaken);
        cb();
      },
    });
    const m = new Measure();
    await pipeline(Readable.from(list), measuringTap(m, { tee }), first);
    await tee.settled();
    expect(firstAhead).toBe(0);
    expect(received).toBe(all.length);
    expect(Buffer.concat(teeGot).equals(all)).toBe(true);
    expect(tee.failed).toBe(false);
  });

  it("goes on without a tee that fails, even one it was waiting for, and says why once", async () => {
    const { list, all } = chunks(30, 16 * KiB);
    let writes = 0;
    const failing = new Writable({
      highWaterMark: 1,
      write(_chunk: Buffer, _e, done) {
        writes++;
        // The third chunk is refused, while the tap waits for the tee to drain.
        setImmediate(() => done(writes === 3 ? new Error("store down") : null));
      },
    });
    const done = new Promise<void>((resolve, reject) => {
      failing.on("error", reject);
      failing.on("finish", resolve);
    });
    const reasons: unknown[] = [];
    const tee = new Tee(failing, done, (error) => reasons.push(error));
    const out = sink();
    const m = new Measure();
    await pipeline(Readable.from(list), measuringTap(m, { tee }), out.stream);
    await tee.settled();
    expect(out.received().equals(all)).toBe(true);
    expect(m.result().sha256).toBe(sha256(all));
    expect(tee.failed).toBe(true);
    expect(writes).toBe(3);
    expect(reasons.map((e) => (e as Error).message)).toEqual(["store down"]);
  });

  it("goes on without a tee closed without an error (a child's stdin as the child exits), at any point", async () => {
    const { list, all } = chunks(30, 16 * KiB);
    for (const closeAfter of [0, 1, 2, 5]) {
      let writes = 0;
      const closing = new Writable({
        highWaterMark: 1,
        write(_chunk: Buffer, _e, done) {
          // Never acknowledged once closed: a reader that went away reads no more.
          if (++writes > closeAfter) return void setImmediate(() => closing.destroy());
          setImmediate(done);
        },
      });
      if (closeAfter === 0) closing.destroy();
      // pg_restore --list: its exit (0) is its verdict, not an error of the stream.
      const done = new Promise<void>((resolve) => closing.on("close", resolve));
      const tee = new Tee(closing, done, () => {});
      const out = sink();
      const m = new Measure();
      await pipeline(Readable.from(list), measuringTap(m, { tee }), out.stream);
      expect(out.received().equals(all)).toBe(true);
    }
  });

  it("abort fails the tee's destination, so it never completes with part of the bytes", async () => {
    const out = sink();
    const done = new Promise<void>((resolve, reject) => {
      out.stream.on("error", reject);
      out.stream.on("finish", resolve);
    });
    const reasons: string[] = [];
    const tee = new Tee(out.stream, done, (e) => reasons.push((e as Error).message));
    tee.abort(new Error("the backup failed"));
    await tee.settled();
    expect(tee.failed).toBe(true);
    expect(reasons).toEqual(["the backup failed"]);
  });
});

describe("verifyingTap", () => {
  const expected = (b: Buffer): Measured => ({ bytes: b.length, sha256: sha256(b) });

  it("hands on exactly the expected bytes", async () => {
    const { list, all } = chunks(5, 4000);
    const out = sink();
    await pipeline(
      Readable.from(list),
      verifyingTap(expected(all), () => new Error("mismatch")),
      out.stream,
    );
    expect(out.received().equals(all)).toBe(true);
  });

  it("fails other bytes before their last chunk goes out, with the error it was given", async () => {
    const { list, all } = chunks(5, 4000);
    const changed = Buffer.from(all);
    changed[7000] = changed[7000]! ^ 1;
    const out = sink();
    let seen: Measured | undefined;
    const tap = verifyingTap(expected(changed), (actual) => {
      seen = actual;
      return new Error(`read ${actual.bytes} bytes sha256 ${actual.sha256}`);
    });
    await expect(pipeline(Readable.from(list), tap, out.stream)).rejects.toThrow(`read ${all.length} bytes sha256 ${sha256(all)}`);
    expect(seen).toEqual(expected(all));
    expect(tap.mismatch?.message).toMatch(/^read /);
    expect(out.received().length).toBe(all.length - 4000);
  });

  it("fails a short read too (a truncated file)", async () => {
    const { list, all } = chunks(3, 1000);
    await expect(
      pipeline(
        Readable.from(list.slice(0, 2)),
        verifyingTap(expected(all), (a) => new Error(`${a.bytes} bytes`)),
        sink().stream,
      ),
    ).rejects.toThrow("2000 bytes");
  });
});
