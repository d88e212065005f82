/**
 * Offsite sync benchmark: catching up a store that is missing a run of
 * backups (a new bucket, or one that was down for three weeks).
 * `pmt-worker offsite sync` (OFFSITE_CONCURRENCY uploads at once, each
 * checked by the store's MD5 ETag; record the copies, re-read the newest,
 * apply remote retention) against `s3cmd sync` of the same backup folder
 * (what the original cron ran: one upload at a time, ETag checked), each into
 * a fresh prefix of one in-process s3rver on localhost, alternating.
 *
 * The backups are catalogued files of incompressible bytes (a pg_dump -Fc
 * file is compressed already) with their manifests, one per day, so that
 * neither retention prunes any: the transfer is what is measured.
 *
 *   npm run bench -- sync [--rounds=5] [--backups=20] [--mb=50]
 * Needs s3cmd on PATH (Debian: apt-get install s3cmd).
 */
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { backupName } from "../src/backups/run.js";
import { writeManifest } from "../src/backups/manifest.js";
import { migrate } from "../src/db/migrate.js";
import { createPool } from "../src/db/pool.js";
import { createLogger } from "../src/log.js";
import { S3RVER_CREDENTIALS, S3Sink } from "../test/harness/s3.js";
import { benchDatabase, createDatabase, intArg, measure, printTable, row, s3cmdConfig, writeResults } from "./lib.js";

const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../bin/pmt-worker.js");

/** Writes `mb` MiB of random bytes; returns the sha256. */
function randomFile(file: string, mb: number): string {
  const hash = crypto.createHash("sha256");
  const fd = fs.openSync(file, "w", 0o600);
  try {
    for (let i = 0; i < mb; i++) {
      const chunk = crypto.randomBytes(2 ** 20);
      hash.update(chunk);
      fs.writeSync(fd, chunk);
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

export async function main(): Promise<void> {
  if (spawnSync("s3cmd", ["--version"]).status !== 0) throw new Error("the sync benchmark needs s3cmd as its baseline: apt-get install s3cmd");
  const rounds = intArg("rounds", 5);
  const count = intArg("backups", 20);
  const mb = intArg("mb", 50);
  const server = await benchDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-bench-sync-"));
  fs.chmodSync(dir, 0o700);
  const s3 = await S3Sink.start(["bench"]);
  const logger = createLogger("warn");

  const database = "bench_sync";
  const url = await createDatabase(server.url, database);
  const pool = createPool(url, { max: 2 });
  await migrate(pool, logger);
  const backupDir = path.join(dir, "backups");
  fs.mkdirSync(path.join(backupDir, database), { recursive: true, mode: 0o700 });
  const day = 86_400_000;
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const at = new Date(now - (count - i) * day);
    const file = backupName(database, at, "custom");
    const local = path.join(backupDir, database, file);
    const sha256 = randomFile(local, mb);
    const bytes = mb * 2 ** 20;
    writeManifest(local, {
      kind: "pmt-worker backup",
      version: 1,
      database,
      format: "custom",
      file,
      bytes,
      sha256,
      server_version: "15",
      pg_dump_version: "15",
      tiers: ["daily"],
      started_at: at.toISOString(),
      finished_at: at.toISOString(),
      table_counts: {},
    });
    await pool.query(
      `insert into pmt_jobs.backup (database, file, format, status, tiers, bytes, sha256, started_at, finished_at, local_path)
       values ($1, $2, 'custom', 'succeeded', '{daily}', $3, $4, $5, $5, $6)`,
      [database, file, bytes, sha256, at, local],
    );
  }

  const host = `127.0.0.1:${s3.port}`;
  const s3cfg = s3cmdConfig(dir, host);
  const env = {
    ...process.env,
    ...S3RVER_CREDENTIALS,
    DATABASE_URL: url,
    BACKUP_DIR: backupDir,
    LOG_LEVEL: "warn",
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: "true",
    OFFSITE_RETAIN_DAILY: String(count + 10),
  };
  const times = { ours: [] as number[], s3cmd: [] as number[] };
  let oursRss = 0;
  for (let round = 0; round <= rounds; round++) {
    const o = await measure(process.execPath, [BIN, "offsite", "sync"], { ...env, OFFSITE_URL: `s3://bench/ours${round}` });
    const copies = (
      await pool.query("select count(*)::int as n from pmt_jobs.backup_copy where target = $1 and status = 'verified'", [`s3://bench/ours${round}`])
    ).rows[0].n;
    if (copies !== count) throw new Error(`expected offsite sync to leave ${count} verified copies, found ${copies}`);
    const c = await measure("s3cmd", ["-c", s3cfg, "--no-progress", "sync", `${backupDir}/`, `s3://bench/s3cmd${round}/`], process.env);
    for (const prefix of [`ours${round}`, `s3cmd${round}`]) fs.rmSync(path.join(s3.directory, "bench", prefix), { recursive: true, force: true });
    oursRss = Math.max(oursRss, o.rssMb);
    if (round === 0) continue;
    times.ours.push(o.ms / 1000);
    times.s3cmd.push(c.ms / 1000);
    process.stderr.write(`round ${round}: offsite sync ${(o.ms / 1000).toFixed(2)} s, s3cmd sync ${(c.ms / 1000).toFixed(2)} s\n`);
  }
  await pool.end();
  await s3.close();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const rows = [
    row(`offsite sync (upload, checked by the MD5 ETag) vs s3cmd sync, ${count} backups of ${mb} MB`, "s", times.ours, times.s3cmd, "ratio <= 0.5"),
  ];
  printTable(`Offsite sync: pmt-worker offsite sync vs s3cmd sync against s3rver, ${rounds} rounds`, rows, [
    `peak RSS of pmt-worker offsite sync: ${oursRss.toFixed(0)} MB`,
  ]);
  const file = writeResults("sync", { rounds, backups: count, mb, rows, rss_mb: oursRss });
  process.stdout.write(`results: ${file}\n`);
}
