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
 * every command ~150 ms to load); config.ts checks a recipient's shape only
 * (parseRecipients), this module with the library before anything is encrypted.
 */
import fs from "node:fs";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { UserError } from "../errors.js";

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

/** The recipients (public keys) of these identities. */
export async function recipientsOf(identities: string[]): Promise<string[]> {
  const { identityToRecipient } = await library();
  return Promise.all(identities.map((i) => identityToRecipient(i)));
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

/** `--identity-file <path>`, or `-` for stdin; `what` names the setting in errors. */
export async function readIdentityFile(file: string, what = "--identity-file"): Promise<string[]> {
  if (file === "-") {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(Buffer.from(c));
    return parseIdentities(Buffer.concat(chunks).toString("utf8"), "stdin");
  }
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new UserError(`${what} ${file}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}`);
  }
  return parseIdentities(text, `${what} ${file}`);
}

/** The identity given is not one of a file's recipients: the user's mistake, not the file's damage. */
export class NotARecipient extends UserError {}

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
      throw new NotARecipient(`${what} is encrypted to ${recipients?.join(", ") ?? "other recipients"}: the identity given is not one of them`);
    }
    throw new UserError(`${what} could not be decrypted: ${message}`, { cause: error });
  }
}
