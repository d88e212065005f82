/**
 * `backup verify`: re-read the file, compare size and sha256 with the catalog
 * and the manifest, check the globals file against the manifest's sha256
 * (when it lists one), and have pg_restore list it. A backup that fails any
 * check is reported with every reason, and marked corrupt.
 */
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import { raiseAlertWith } from "../alerts/alerts.js";
import type { Config } from "../config.js";
import { UserError, errorMessage } from "../errors.js";
import { createLogger, type Logger } from "../log.js";
import type { Mailer } from "../mail/transport.js";
import { measureFile, measureStream } from "../io/measure.js";
import { decryptStream, NotARecipient } from "../io/age.js";
import { recordedVersion, runTool, runToolOn, toolFor, type PgTool } from "../pgtools/tools.js";
import { getBackup, markCorrupt, markVerified, type BackupRow } from "./catalog.js";
import { hashDirectory } from "./files.js";
import { globalsPath } from "./globals.js";
import { readManifest, type Manifest } from "./manifest.js";

export interface VerifyResult {
  backup: BackupRow;
  ok: boolean;
  problems: string[];
  /** False for an encrypted file checked without an identity: its sha256 only, not decrypted nor listed. */
  decrypted?: boolean;
}

/**
 * A backup that fails any check is marked corrupt (out of the tiers, never
 * uploaded, no longer the last good backup) and the operator alerted; its
 * file is left for inspection. A missing pg_restore or an unmounted
 * BACKUP_DIR fails the command instead: they say nothing about the backup.
 */
export async function verifyBackup(
  config: Config,
  pool: pg.Pool,
  id: number,
  alerts: { logger: Logger; mailer?: Mailer } = { logger: createLogger("silent") },
  options: { identities?: string[] } = {},
): Promise<VerifyResult> {
  const backup = await getBackup(pool, id);
  if (!backup) throw new UserError(`backup ${id} does not exist (see pmt-worker backup list)`);
  if (backup.status !== "succeeded" || !backup.local_path) {
    throw new UserError(`backup ${id} is ${backup.status}: only a succeeded backup with a file can be verified`);
  }
  const tool = toolFor("pg_restore", recordedVersion(backup.server_version), config.backup.pgBinDir);
  const sealed = backup.local_path.endsWith(".age");
  const problems = await checkFile(backup, backup.local_path, tool, options.identities);
  const decrypted = sealed ? !!options.identities?.length : undefined;
  if (problems.length === 0) {
    await markVerified(pool, id);
    return { backup, ok: true, problems, ...(sealed ? { decrypted } : {}) };
  }
  if (await markCorrupt(pool, id, `corrupt: backup verify found ${problems.join("; ")}`)) {
    await raiseAlertWith(
      { config, pool, ...alerts },
      `backup_corrupt:${id}`,
      `backup ${id} of ${backup.database} is corrupt`,
      `backup verify found backup ${id} (${backup.database}, ${backup.started_at.toISOString()}) damaged: ${problems.join("; ")}. ` +
        `It is marked corrupt: retention keeps it out of the tiers, it is not uploaded, and it no longer counts as the last good backup. Its file is left in place for inspection.`,
    );
  }
  return { backup: { ...backup, status: "corrupt" }, ok: false, problems };
}

/** The globals file the manifest lists (restore --with-roles reads it): there, and the bytes the manifest hashed. */
async function checkGlobals(file: string, expected: NonNullable<Manifest["globals"]>): Promise<string[]> {
  const globals = globalsPath(file);
  if (!fs.existsSync(globals)) return [`globals file ${globals} is missing`];
  const actual = await measureFile(globals);
  if (actual.sha256 !== expected.sha256) return [`globals file sha256 mismatch: file ${actual.sha256}, manifest ${expected.sha256}`];
  return [];
}

/** An encrypted file with the identity: decrypted, its plaintext the manifest's, listed by pg_restore (never written to the disk). */
async function checkSealed(file: string, manifest: Manifest, tool: PgTool, identities: string[]): Promise<string[]> {
  const label = `backup file ${path.basename(file)}`;
  const plain = await measureStream(await decryptStream(fs.createReadStream(file), identities, label, manifest.encryption?.recipients)).catch(
    (error) => error as Error,
  );
  if (plain instanceof NotARecipient) throw plain;
  if (plain instanceof Error) return [`decryption failed: ${errorMessage(plain)}`];
  if (plain.sha256 !== manifest.sha256 || plain.bytes !== manifest.bytes) {
    return [`decrypted to ${plain.bytes} bytes sha256 ${plain.sha256}, the manifest says ${manifest.bytes} bytes ${manifest.sha256}`];
  }
  try {
    await runToolOn(tool, ["--list"], "postgres://localhost/postgres", await decryptStream(fs.createReadStream(file), identities, label));
    return [];
  } catch (error) {
    return [`pg_restore --list failed: ${errorMessage(error)}`];
  }
}

async function checkFile(backup: BackupRow, file: string, tool: PgTool, identities: string[] | undefined): Promise<string[]> {
  if (!fs.existsSync(file)) {
    if (!fs.existsSync(path.dirname(file))) throw new UserError(`${path.dirname(file)} does not exist: is BACKUP_DIR mounted? Nothing was marked.`);
    return [`${file} is missing`];
  }
  const problems: string[] = [];
  const actual = backup.format === "directory" ? await hashDirectory(file) : await measureFile(file);
  if (actual.bytes !== Number(backup.bytes)) problems.push(`size ${actual.bytes} bytes, the catalog says ${backup.bytes}`);
  if (actual.sha256 !== backup.sha256) problems.push(`sha256 mismatch: file ${actual.sha256}, catalog ${backup.sha256}`);
  const manifest = readManifest(file);
  if (!manifest) problems.push(`manifest ${file}.json is missing or unreadable`);
  else {
    // An encrypted file: the manifest's encryption section describes the file, its top level the plaintext.
    const described = manifest.encryption ?? manifest;
    if (described.sha256 !== backup.sha256 || described.bytes !== Number(backup.bytes)) problems.push("the manifest disagrees with the catalog");
  }
  if (manifest?.globals) problems.push(...(await checkGlobals(file, manifest.globals)));
  if (file.endsWith(".age")) {
    if (identities?.length && manifest) problems.push(...(await checkSealed(file, manifest, tool, identities)));
    return problems;
  }
  try {
    await runTool(tool, ["--list", file], "postgres://localhost/postgres");
  } catch (error) {
    problems.push(`pg_restore --list failed: ${errorMessage(error)}`);
  }
  return problems;
}
