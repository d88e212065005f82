/**
 * Disaster recovery from the offsite store: the manifests are read from the
 * store alone (no catalog needed), and a copy is streamed from the store
 * straight into pg_restore.
 */
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import pg from "pg";
import type { Manifest } from "../backups/manifest.js";
import { chooseTool, findTools, searchDirs } from "../backups/pgtools.js";
import { tableCounts } from "../backups/restore.js";
import { toolEnv } from "../backups/run.js";
import type { Config } from "../config.js";
import { clientConfig } from "../db/pool.js";
import { UserError, errorMessage } from "../errors.js";
import { redactText } from "../redact.js";
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

export async function restoreFromOffsite(config: Config, store: OffsiteStore, databaseUrl: string, key: string, into: string) {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(into)) {
    throw new UserError(`--into ${JSON.stringify(into)}: expected a new database name (letters, digits, _; at most 63)`);
  }
  const head = await store.head(`${key}.json`);
  if (!head) throw new UserError(`no backup at ${key} in ${store.description} (see pmt-worker offsite list)`);
  const manifest = JSON.parse(await readText(await store.read(`${key}.json`))) as Manifest;
  if (manifest.format === "directory") throw new UserError("directory-format copies cannot be streamed: download the folder and use backup restore --from-file");
  const server = { major: Number(manifest.server_version.split(".")[0]), version: manifest.server_version };
  const pgRestore = chooseTool("pg_restore", findTools("pg_restore", searchDirs(config.backup.pgBinDir)), server);

  const admin = new URL(databaseUrl);
  admin.pathname = "/postgres";
  const target = new URL(databaseUrl);
  target.pathname = `/${into}`;
  const client = new pg.Client(clientConfig(admin.toString()));
  await client.connect();
  try {
    if ((await client.query("select 1 from pg_database where datname = $1", [into])).rowCount) {
      throw new UserError(`database ${into} already exists: restore only into a new database`);
    }
    await client.query(`create database ${pg.escapeIdentifier(into)}`);
  } finally {
    await client.end();
  }
  const t0 = performance.now();
  try {
    const child = spawn(pgRestore.path, ["--exit-on-error", "--no-owner", "--no-privileges", `--dbname=${into}`], {
      env: toolEnv(target.toString()),
      stdio: ["pipe", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
    const exited = new Promise<void>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`pg_restore exited with ${code}: ${redactText(stderr.trim())}`))));
    });
    exited.catch(() => {});
    await pipeline(await store.read(key), child.stdin);
    await exited;
  } catch (error) {
    const drop = new pg.Client(clientConfig(admin.toString()));
    await drop.connect();
    await drop.query(`drop database if exists ${pg.escapeIdentifier(into)} with (force)`).finally(() => drop.end());
    throw new UserError(`restore of ${key} into ${into} failed (the new database was dropped): ${redactText(errorMessage(error))}`, { cause: error });
  }
  const seconds = (performance.now() - t0) / 1000;
  return { manifest, database: into, tables: await tableCounts(target.toString()), seconds };
}
