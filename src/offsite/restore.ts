/**
 * Disaster recovery from the offsite store: the manifests are read from the
 * store alone (no catalog needed), and a copy is streamed from the store
 * straight into pg_restore (backups/restore.ts's restore procedure).
 */
import type { Readable } from "node:stream";
import type { Manifest } from "../backups/manifest.js";
import { checkNewDatabaseName, restoreInto } from "../backups/restore.js";
import type { Config } from "../config.js";
import { UserError } from "../errors.js";
import type { OffsiteStore } from "./store.js";

export interface OffsiteEntry extends Manifest {
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
    if (!object.key.endsWith(".json")) continue;
    try {
      const manifest = JSON.parse(await readText(await store.read(object.key))) as Manifest;
      if (manifest.kind !== "pmt-worker backup") continue;
      if (database && manifest.database !== database) continue;
      entries.push({ ...manifest, key: object.key.replace(/\.json$/, "") });
    } catch {
      // not one of ours
    }
  }
  return entries.sort((a, b) => b.started_at.localeCompare(a.started_at));
}

/** `backup restore --from-offsite <key>`: the copy streamed from the store into pg_restore, by the one restore procedure. */
export async function restoreFromOffsite(config: Config, store: OffsiteStore, databaseUrl: string, key: string, into: string) {
  checkNewDatabaseName(into);
  const head = await store.head(`${key}.json`);
  if (!head) throw new UserError(`no backup at ${key} in ${store.description} (see pmt-worker offsite list)`);
  const manifest = JSON.parse(await readText(await store.read(`${key}.json`))) as Manifest;
  if (manifest.format === "directory")
    throw new UserError("directory-format copies cannot be streamed: download the folder and use backup restore --from-file");
  const restored = await restoreInto(config, {
    source: { stream: () => store.read(key) },
    label: key,
    into,
    serverUrl: databaseUrl,
    serverVersion: manifest.server_version,
  });
  return { manifest, ...restored };
}
