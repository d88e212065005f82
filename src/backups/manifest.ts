/**
 * The sidecar `<file>.json` that makes a backup folder (or bucket)
 * self-describing without the database. Written atomically, 0600.
 */
import fs from "node:fs";
import { writeFileAtomic } from "./files.js";

export interface Manifest {
  kind: "pmt-worker backup";
  version: 1;
  database: string;
  format: string;
  file: string;
  bytes: number;
  sha256: string;
  /** For the directory format: each file's size and sha256. */
  files?: { name: string; bytes: number; sha256: string }[];
  server_version: string;
  pg_dump_version: string;
  tiers: string[];
  started_at: string;
  finished_at: string;
  table_counts: Record<string, number>;
  /** The roles and database-level settings the database references (backups/globals.ts), beside the dump. */
  globals?: { file: string; bytes: number; sha256: string; roles: string[] };
  /**
   * BACKUP_ENCRYPT_LOCAL: the file is an age file encrypted to `recipients`;
   * `bytes`/`sha256` here are the file's (the catalog's), those above the
   * plaintext's (what pg_dump wrote, what a decryption must give back).
   */
  encryption?: { format: "age"; recipients: string[]; bytes: number; sha256: string };
}

export function manifestPath(backupPath: string): string {
  return `${backupPath}.json`;
}

export function writeManifest(backupPath: string, manifest: Manifest): void {
  writeFileAtomic(manifestPath(backupPath), JSON.stringify(manifest, null, 2) + "\n");
}

export function readManifest(backupPath: string): Manifest | undefined {
  try {
    return JSON.parse(fs.readFileSync(manifestPath(backupPath), "utf8")) as Manifest;
  } catch {
    return undefined;
  }
}
