/**
 * age encryption (https://age-encryption.org, the `age-encryption` library by
 * age's author) of byte streams, for copies that leave the server: the worker
 * holds only recipients (public keys, BACKUP_ENCRYPT_TO), so a leaked bucket
 * leaks nothing; whoever restores brings the identity (the private key) from a
 * file or stdin. The output is a standard age file: `age -d -i key.txt` reads
 * it without pmt-worker. Streams in 64 KiB chunks, each authenticated: a
 * truncated or altered copy fails to decrypt instead of yielding other bytes.
 *
 * The library is loaded only when a stream is encrypted or decrypted (it costs
 * every command ~150 ms to load); config.ts checks a recipient's shape only.
 */
import fs from "node:fs";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { UserError } from "../errors.js";

/** A recipient's shape (bech32, lower case): `age1...` X25519, `age1pq1...` post-quantum hybrid, `age1tag1...`. */
export const RECIPIENT_SHAPE = /^age1[02-9ac-hj-np-z]{50,}$/;

/** BACKUP_ENCRYPT_TO's value: recipients separated by commas or white space, each of the right shape. */
export function parseRecipients(value: string): string[] {
  const recipients = value.split(/[\s,]+/).filter(Boolean);
  // Never echoed: a value pasted here by mistake may be a secret.
  recipients.forEach((r, i) => {
    const which = recipients.length > 1 ? `value ${i + 1}` : "this";
    if (/^AGE-SECRET-KEY-/i.test(r)) {
      throw new Error(`${which} is an identity (a private key), which must never be on the worker: give its recipient (age-keygen -y key.txt prints it)`);
    }
    if (!RECIPIENT_SHAPE.test(r)) throw new Error(`${which} is not an age recipient: expected age1... (age-keygen -y key.txt prints it)`);
  });
  if (recipients.length === 0) throw new Error("expected one or more age recipients (age1...)");
  return [...new Set(recipients)];
}

async function library() {
  return import("age-encryption");
}

/** An encrypter to `recipients`, each parsed by the library (checksum included): a typo fails here, before anything is encrypted. */
async function encrypterTo(recipients: string[]) {
  const { Encrypter } = await library();
  const e = new Encrypter();
  for (const r of recipients) {
    try {
      e.addRecipient(r);
    } catch (error) {
      throw new UserError(`BACKUP_ENCRYPT_TO: ${r.slice(0, 12)}... is not a valid age recipient (${(error as Error).message})`);
    }
  }
  return e;
}

/** Whether every recipient is valid (doctor, start): throws the error an upload would. */
export async function checkRecipients(recipients: string[]): Promise<void> {
  await encrypterTo(recipients);
}

/** `source`'s bytes encrypted to `recipients`, as they flow. An error of `source` fails the output (it never ends cleanly). */
export async function encryptStream(source: Readable, recipients: string[]): Promise<Readable> {
  const e = await encrypterTo(recipients);
  const out = await e.encrypt(Readable.toWeb(source) as unknown as ReadableStream<Uint8Array>);
  return Readable.fromWeb(out as unknown as WebReadableStream<Uint8Array>);
}

/** The identities of an identity file's text: `AGE-SECRET-KEY-...` lines; `#` comments and blank lines ignored. */
export function parseIdentities(text: string, source: string): string[] {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const bad = lines.find((l) => !/^AGE-SECRET-KEY-(PQ-)?1[0-9A-Z]+$/.test(l));
  if (bad !== undefined || lines.length === 0) {
    // Never echo the line: it may be a secret of another kind.
    throw new UserError(`${source}: expected an age identity file (lines AGE-SECRET-KEY-1..., as age-keygen writes them)`);
  }
  return lines;
}

/** `--identity-file <path>`, or `-` for stdin. */
export async function readIdentityFile(file: string): Promise<string[]> {
  if (file === "-") {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(Buffer.from(c));
    return parseIdentities(Buffer.concat(chunks).toString("utf8"), "stdin");
  }
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new UserError(`--identity-file ${file}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}`);
  }
  return parseIdentities(text, `--identity-file ${file}`);
}

/**
 * `source` (an age file) decrypted with `identities`, as it flows. The header
 * is read before this resolves: an identity that is not a recipient fails
 * here, with `what` (the copy) and its recipients named.
 */
export async function decryptStream(source: Readable, identities: string[], what: string, recipients?: string[]): Promise<Readable> {
  const { Decrypter } = await library();
  const d = new Decrypter();
  for (const i of identities) d.addIdentity(i);
  try {
    const out = await d.decrypt(Readable.toWeb(source) as unknown as ReadableStream<Uint8Array>);
    return Readable.fromWeb(out as unknown as WebReadableStream<Uint8Array>);
  } catch (error) {
    source.destroy();
    const message = (error as Error).message;
    if (/no identity matched/i.test(message)) {
      throw new UserError(`${what} is encrypted to ${recipients?.join(", ") ?? "other recipients"}: the identity given is not one of them`);
    }
    throw new UserError(`${what} could not be decrypted: ${message}`, { cause: error });
  }
}
