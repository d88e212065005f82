/**
 * `backup verify`: re-read the file, compare size and sha256 with the catalog
 * and the manifest, and have pg_restore list it. A backup that fails any
 * check is reported with every reason.
 */
import fs from "node:fs";
import type pg from "pg";
import type { Config } from "../config.js";
import { UserError, errorMessage } from "../errors.js";
import { getBackup, type BackupRow } from "./catalog.js";
import { hashDirectory, sha256File } from "./files.js";
import { readManifest } from "./manifest.js";
import { chooseTool, findTools, searchDirs, type PgTool } from "./pgtools.js";
import { runTool } from "./run.js";

export interface VerifyResult {
  backup: BackupRow;
  ok: boolean;
  problems: string[];
}

function restoreTool(config: Config, serverVersion: string | null): PgTool {
  const major = Number((serverVersion ?? "0").split(".")[0]);
  return chooseTool("pg_restore", findTools("pg_restore", searchDirs(config.backup.pgBinDir)), { major, version: serverVersion ?? "unknown" });
}

export async function verifyBackup(config: Config, pool: pg.Pool, id: number): Promise<VerifyResult> {
  const backup = await getBackup(pool, id);
  if (!backup) throw new UserError(`backup ${id} does not exist (see pmt-worker backup list)`);
  if (backup.status !== "succeeded" || !backup.local_path) {
    throw new UserError(`backup ${id} is ${backup.status}: only a succeeded backup with a file can be verified`);
  }
  const problems: string[] = [];
  const file = backup.local_path;
  if (!fs.existsSync(file)) {
    return { backup, ok: false, problems: [`${file} is missing`] };
  }
  const actual = backup.format === "directory" ? await hashDirectory(file) : await sha256File(file);
  if (actual.bytes !== Number(backup.bytes)) problems.push(`size ${actual.bytes} bytes, the catalog says ${backup.bytes}`);
  if (actual.sha256 !== backup.sha256) problems.push(`sha256 mismatch: file ${actual.sha256}, catalog ${backup.sha256}`);
  const manifest = readManifest(file);
  if (!manifest) problems.push(`manifest ${file}.json is missing or unreadable`);
  else if (manifest.sha256 !== backup.sha256 || manifest.bytes !== Number(backup.bytes)) problems.push("the manifest disagrees with the catalog");
  try {
    await runTool(restoreTool(config, backup.server_version), ["--list", file], "postgres://localhost/postgres");
  } catch (error) {
    problems.push(`pg_restore --list failed: ${errorMessage(error)}`);
  }
  if (problems.length === 0) await pool.query("update pmt_jobs.backup set verified_at = now() where id = $1", [id]);
  return { backup, ok: problems.length === 0, problems };
}
