/**
 * io/age.ts and config's recipient check, without a database: a source that
 * fails half-way fails the encrypted stream (an upload fed by it never
 * completes with part of a dump), a round trip gives the bytes back, and
 * neither a malformed identity file nor a pasted private key is echoed.
 */
import crypto from "node:crypto";
import { Readable } from "node:stream";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { describe, expect, it } from "vitest";
import { parseRecipients } from "../../src/config.js";
import { decryptStream, encryptStream, parseIdentities, recipientsOf } from "../../src/io/age.js";

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

describe("age streams", () => {
  it("round-trips 1 MB in chunks, and a source that fails half-way fails the encrypted stream", async () => {
    const identity = await generateX25519Identity();
    const recipient = await identityToRecipient(identity);
    expect(await recipientsOf([identity])).toEqual([recipient]);
    const plain = crypto.randomBytes(2 ** 20);
    const sealed = await drain(await encryptStream(Readable.from([plain.subarray(0, 300_000), plain.subarray(300_000)]), [recipient]));
    expect(sealed.subarray(0, 21).toString()).toBe("age-encryption.org/v1");
    expect((await drain(await decryptStream(Readable.from([sealed]), [identity], "test"))).equals(plain)).toBe(true);

    let n = 0;
    const failing = new Readable({
      read() {
        if (++n < 5) this.push(Buffer.alloc(70_000, 1));
        else this.destroy(new Error("the file is not the catalog's"));
      },
    });
    await expect(drain(await encryptStream(failing, [recipient]))).rejects.toThrow("the file is not the catalog's");
    // A truncated copy does not decrypt to part of the bytes.
    await expect(drain(await decryptStream(Readable.from([sealed.subarray(0, sealed.length - 100)]), [identity], "test"))).rejects.toThrow();
  });

  it("refuses what is not an identity file or a recipient, without echoing it", async () => {
    expect(() => parseIdentities("password=hunter2\n", "stdin")).toThrow(/^stdin: expected an age identity file/);
    expect(() => parseIdentities("password=hunter2\n", "stdin")).not.toThrow(/hunter2/);
    expect(() => parseIdentities("# only a comment\n", "f")).toThrow(/expected an age identity file/);
    const identity = await generateX25519Identity();
    expect(parseIdentities(`# created\n${identity}\n`, "f")).toEqual([identity]);
    expect(() => parseRecipients(identity)).toThrow(/is an identity \(a private key\)/);
    expect(() => parseRecipients(identity)).not.toThrow(new RegExp(identity.slice(20)));
    expect(() => parseRecipients("age1, hunter2")).toThrow(/^value 1 is not an age recipient/);
    const recipient = await identityToRecipient(identity);
    expect(parseRecipients(`${recipient}, ${recipient}\n`)).toEqual([recipient]);
  });
});
