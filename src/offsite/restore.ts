/**
 * Disaster recovery from the offsite store: the manifests are read from the
 * store alone (no catalog needed), and a copy is streamed from the store
 * straight into pg_restore (backups/restore.ts's restore procedure),
 * decrypted on its way when it is an age file (the identity from
 * --identity-file: plaintext never touches the disk) and proven against the
 * manifest's sha256 before its last bytes reach pg_restore.
 */
import type { Readable } from "node:stream";
import { parseGlobals, type Globals } from "../backups/globals.js";
import type { Manifest } from "../backups/manifest.js";
import { checkNewDatabaseName, restoreInto } from "../backups/restore.js";
import type { Config } from "../config.js";
import { UserError } from "../errors.js";
import { decryptStream } from "../io/age.js";
import { verifyingTap, type Measured } from "../io/measure.js";
import type { OffsiteStore } from "./store.js";

/** A manifest as the store keeps it (offsite/copies.ts storedManifest). */
export interface StoredManifest extends Omit<Manifest, "table_counts" | "globals"> {
  table_counts?: Record<string, number>;
  offsite_key?: string;
  /** Set when the copy is an age file: to whom, and what the store holds. */
  encryption?: { format: "age"; recipients: string[]; bytes: number; sha256: string };
  globals?: NonNullable<Manifest["globals"]> & { key: string; stored: Measured };
}

export interface OffsiteEntry extends StoredManifest {
  key: string;
}

async function readText(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString("utf8");
}

/** Every backup the store holds, from its manifests. */
export async function listOffsite(store: OffsiteStore, database?: string): Promise<OffsiteEntry[]> {
  const entries: OffsiteEntry[] = [];
  for (const object of await store.list(store.prefix ? `${store.prefix}/` : "")) {
    if (!object.key.endsWith(".json") || object.key.endsWith(".globals.json")) continue;
    try {
      const manifest = JSON.parse(await readText(await store.read(object.key))) as StoredManifest;
      if (manifest.kind !== "pmt-worker backup") continue;
      if (database && manifest.database !== database) continue;
      entries.push({ ...manifest, key: object.key.replace(/\.json$/, "") });
    } catch {
      // not one of ours
    }
  }
  return entries.sort((a, b) => b.started_at.localeCompare(a.started_at));
}

export interface OffsiteRestoreOptions {
  /** age identities (--identity-file), for an encrypted copy. */
  identities?: string[];
  /** --with-roles: the copy's globals restored first (backups/globals.ts). */
  withRoles?: boolean;
}

/** An object's plaintext as it is read: decrypted when the copy is encrypted, and refused at its end unless it is `expected`. */
async function openPlain(store: OffsiteStore, key: string, manifest: StoredManifest, expected: Measured, identities: string[] | undefined): Promise<Readable> {
  const stored = await store.read(key);
  const plain = manifest.encryption ? await decryptStream(stored, identities!, key, manifest.encryption.recipients) : stored;
  const check = verifyingTap(
    expected,
    (actual) =>
      new Error(
        `${key} is not the copy its manifest describes: ${actual.bytes} bytes sha256 ${actual.sha256}, expected ${expected.bytes} bytes ${expected.sha256}`,
      ),
  );
  // The source's own failures fail the check (the reader hears why); the reader giving up stops the source quietly.
  plain.once("error", (e) => {
    if (!check.destroyed) check.destroy(e);
  });
  check.once("close", () => plain.destroy());
  return plain.pipe(check);
}

/** The copy's globals (roles and settings), read from the store and checked against the manifest. */
async function readGlobals(store: OffsiteStore, key: string, manifest: StoredManifest, identities: string[] | undefined): Promise<Globals> {
  const globals = manifest.globals;
  if (!globals) throw new UserError(`${key} has no roles beside it (taken before pmt-worker kept them): restore without --with-roles`);
  if (!(await store.head(globals.key))) throw new UserError(`${key}'s roles ${globals.key} are missing from ${store.description}`);
  const text = await readText(await openPlain(store, globals.key, manifest, globals, identities));
  return parseGlobals(text, `${globals.key} in ${store.description}`);
}

/** `backup restore --from-offsite <key>`: the copy streamed from the store into pg_restore, by the one restore procedure. */
export async function restoreFromOffsite(
  config: Config,
  store: OffsiteStore,
  databaseUrl: string,
  key: string,
  into: string,
  options: OffsiteRestoreOptions = {},
) {
  checkNewDatabaseName(into);
  const head = await store.head(`${key}.json`);
  if (!head) throw new UserError(`no backup at ${key} in ${store.description} (see pmt-worker offsite list)`);
  const manifest = JSON.parse(await readText(await store.read(`${key}.json`))) as StoredManifest;
  if (manifest.format === "directory")
    throw new UserError("directory-format copies cannot be streamed: download the folder and use backup restore --from-file");
  if (manifest.encryption && !options.identities?.length) {
    throw new UserError(
      `${key} is encrypted with age to ${manifest.encryption.recipients.join(", ")}: pass --identity-file <file> (or - to read it from stdin)`,
    );
  }
  if (manifest.encryption) {
    // The identity is checked against the copy's header before a database is created.
    (await decryptStream(await store.read(key), options.identities!, key, manifest.encryption.recipients)).destroy();
  }
  const globals = options.withRoles ? await readGlobals(store, key, manifest, options.identities) : undefined;
  const restored = await restoreInto(config, {
    source: { stream: () => openPlain(store, key, manifest, manifest, options.identities) },
    label: key,
    into,
    serverUrl: databaseUrl,
    serverVersion: manifest.server_version,
    ...(globals ? { globals } : {}),
  });
  return { manifest, ...restored };
}
