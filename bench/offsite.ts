/**
 * Offsite benchmark: getting one backup file into an S3 store. Ours is
 * `pmt-worker offsite sync` (streamed multipart upload, confirmed by the
 * store's MD5 ETag; and with OFFSITE_VERIFY=read-back, read back and hashed);
 * the baselines are the original cron's `s3cmd put` (which checks the same
 * ETag) and `s3cmd put` followed by `s3cmd get` (a read-back by hand). Then a
 * backup with its offsite copy, `pmt-worker backup run` with OFFSITE_URL
 * (streamed while written, and uploaded after), against `pg_dump -Fc > file`
 * then `s3cmd put file`; and encrypted (BACKUP_ENCRYPT_TO, age as it streams)
 * against `pg_dump -Fc | age -r <recipient> > file` then `s3cmd put` (when
 * Debian's age is installed). All against one in-process s3rver behind a proxy
 * that limits the bandwidth (`--mbps`, shared by all connections, the same for
 * every tool; 0: unlimited, the store on localhost), alternating, on the
 * same backup.
 *
 *   npm run bench -- offsite [--rounds=5] [--activities=850000] [--mbps=100]
 * The default is the backup benchmark's database of about 1 GB (a 58 MB
 * dump): about ten minutes; --activities=200000 (a 14 MB dump) is quicker.
 * Needs s3cmd on PATH (Debian: apt-get install s3cmd).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { migrate } from "../src/db/migrate.js";
import { createPool } from "../src/db/pool.js";
import { seedDemo } from "../src/exports/demo.js";
import { createLogger } from "../src/log.js";
import { chooseTool, findTools, searchDirs, toolEnv } from "../src/pgtools/tools.js";
import { S3RVER_CREDENTIALS, S3Sink } from "../test/harness/s3.js";
import { benchDatabase, createDatabase, intArg, measure, printTable, row, s3cmdConfig, writeResults } from "./lib.js";
import { ThrottleProxy } from "./throttle.js";

const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../bin/pmt-worker.js");

export async function main(): Promise<void> {
  if (spawnSync("s3cmd", ["--version"]).status !== 0) throw new Error("the offsite benchmark needs s3cmd as its baseline: apt-get install s3cmd");
  const rounds = intArg("rounds", 5);
  const activities = intArg("activities", 850_000);
  const mbpsFlag = process.argv.find((a) => a.startsWith("--mbps="));
  const mbps = mbpsFlag ? Number(mbpsFlag.split("=")[1]) : 100;
  if (!Number.isFinite(mbps) || mbps < 0) throw new Error("--mbps: expected megabits per second, or 0 for no limit");
  const server = await benchDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-bench-offsite-"));
  fs.chmodSync(dir, 0o700);
  const s3 = await S3Sink.start(["bench"]);
  const proxy = mbps > 0 ? await ThrottleProxy.start(s3.port, mbps) : undefined;
  const storePort = proxy?.port ?? s3.port;
  const logger = createLogger("warn");

  const url = await createDatabase(server.url, "bench_offsite");
  const pool = createPool(url, { max: 2 });
  await migrate(pool, logger);
  await seedDemo(pool, activities);
  const env = { ...process.env, DATABASE_URL: url, BACKUP_DIR: path.join(dir, "backups"), LOG_LEVEL: "warn" };
  await measure(process.execPath, [BIN, "backup", "run"], env);
  const backup = (await pool.query<{ local_path: string; bytes: string }>("select local_path, bytes from pmt_jobs.backup where status = 'succeeded'")).rows[0]!;
  const mb = Number(backup.bytes) / 2 ** 20;

  const host = `127.0.0.1:${storePort}`;
  const s3cfg = s3cmdConfig(dir, host);
  const oursEnv = { ...env, ...S3RVER_CREDENTIALS, OFFSITE_URL: "s3://bench/ours", S3_ENDPOINT: `http://${host}`, S3_FORCE_PATH_STYLE: "true" };
  const times = { ours: [] as number[], oursReadBack: [] as number[], put: [] as number[], putGet: [] as number[] };
  let oursRss = 0;
  for (let round = 0; round <= rounds; round++) {
    await pool.query("delete from pmt_jobs.backup_copy");
    const o = await measure(process.execPath, [BIN, "offsite", "sync"], oursEnv);
    await pool.query("delete from pmt_jobs.backup_copy");
    const r = await measure(process.execPath, [BIN, "offsite", "sync"], { ...oursEnv, OFFSITE_VERIFY: "read-back" });
    const p = await measure("s3cmd", ["-c", s3cfg, "--no-progress", "put", backup.local_path, `s3://bench/s3cmd/${round}.dump`], process.env);
    const g = await measure(
      "s3cmd",
      ["-c", s3cfg, "--no-progress", "--force", "get", `s3://bench/s3cmd/${round}.dump`, path.join(dir, "back.dump")],
      process.env,
    );
    oursRss = Math.max(oursRss, o.rssMb, r.rssMb);
    if (round === 0) continue;
    times.ours.push(o.ms / 1000);
    times.oursReadBack.push(r.ms / 1000);
    times.put.push(p.ms / 1000);
    times.putGet.push((p.ms + g.ms) / 1000);
    process.stderr.write(
      `round ${round}: ours ${(o.ms / 1000).toFixed(2)} s, read back ${(r.ms / 1000).toFixed(2)} s, s3cmd put ${(p.ms / 1000).toFixed(2)} s, get ${(g.ms / 1000).toFixed(2)} s\n`,
    );
  }
  const synced = (await pool.query("select count(*)::int as n from pmt_jobs.backup_copy where status = 'verified'")).rows[0].n;
  if (synced !== 1) throw new Error(`expected the sync to leave one verified copy, found ${synced}`);

  // A backup with its offsite copy, against pg_dump then s3cmd put.
  const pgDump = chooseTool("pg_dump", findTools("pg_dump", searchDirs()), { major: 15, version: "15" });
  const both = { streamed: [] as number[], uploaded: [] as number[], cron: [] as number[], encrypted: [] as number[], cronEncrypted: [] as number[] };
  // Encrypted copies: our age (in-process) against the age command in the cron's pipe, to the same recipient.
  const { generateX25519Identity, identityToRecipient } = await import("age-encryption");
  const recipient = await identityToRecipient(await generateX25519Identity());
  const ageCli = spawnSync("age", ["--version"]).status === 0;
  let encryptedRss = 0;
  const keep = {
    RETAIN_DAILY: "1",
    RETAIN_WEEKLY: "0",
    RETAIN_MONTHLY: "0",
    RETAIN_MIN_SUCCESSFUL: "1",
    OFFSITE_RETAIN_DAILY: "1",
    OFFSITE_RETAIN_WEEKLY: "0",
    OFFSITE_RETAIN_MONTHLY: "0",
  };
  for (let round = 0; round <= rounds; round++) {
    const st = await measure(process.execPath, [BIN, "backup", "run"], { ...oursEnv, ...keep, OFFSITE_STREAM: "true" });
    const up = await measure(process.execPath, [BIN, "backup", "run"], { ...oursEnv, ...keep, OFFSITE_STREAM: "false" });
    const raw = path.join(dir, "raw.dump");
    const d = await measure(pgDump.path, ["-Fc"], toolEnv(url), raw);
    const p = await measure("s3cmd", ["-c", s3cfg, "--no-progress", "put", raw, `s3://bench/cron/${round}.dump`], process.env);
    const en = await measure(process.execPath, [BIN, "backup", "run"], { ...oursEnv, ...keep, OFFSITE_STREAM: "true", BACKUP_ENCRYPT_TO: recipient });
    encryptedRss = Math.max(encryptedRss, en.rssMb);
    let cronEncrypted = 0;
    if (ageCli) {
      const sealed = path.join(dir, "raw.dump.age");
      const de = await measure("bash", ["-c", '"$PG_DUMP" -Fc | age -r "$AGE_RECIPIENT" > "$OUT"'], {
        ...toolEnv(url),
        PG_DUMP: pgDump.path,
        AGE_RECIPIENT: recipient,
        OUT: sealed,
      });
      const pe = await measure("s3cmd", ["-c", s3cfg, "--no-progress", "put", sealed, `s3://bench/cron/${round}.dump.age`], process.env);
      cronEncrypted = (de.ms + pe.ms) / 1000;
    }
    if (round === 0) continue;
    both.encrypted.push(en.ms / 1000);
    if (ageCli) both.cronEncrypted.push(cronEncrypted);
    both.streamed.push(st.ms / 1000);
    both.uploaded.push(up.ms / 1000);
    both.cron.push((d.ms + p.ms) / 1000);
    process.stderr.write(
      `round ${round}: backup run streamed ${(st.ms / 1000).toFixed(2)} s, uploaded after ${(up.ms / 1000).toFixed(2)} s, pg_dump + s3cmd put ${((d.ms + p.ms) / 1000).toFixed(2)} s\n`,
    );
  }

  const last = (await pool.query("select c.status from pmt_jobs.backup b left join pmt_jobs.backup_copy c on c.backup_id = b.id order by b.id desc limit 1"))
    .rows[0];
  if (last?.status !== "verified") throw new Error(`expected the last backup run to leave a verified copy, found ${last?.status}`);
  await pool.end();
  await proxy?.close();
  await s3.close();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const link = mbps > 0 ? `${mbps} Mbit/s to the store` : "store on localhost, no bandwidth limit";
  const rows = [
    row(
      `offsite sync (checked by the store's MD5 ETag) vs s3cmd put (checks the same), ${mb.toFixed(0)} MB dump, ${link}`,
      "s",
      times.ours,
      times.put,
      "ratio <= 1.00",
    ),
    row(`offsite sync, OFFSITE_VERIFY=read-back vs s3cmd put + get`, "s", times.oursReadBack, times.putGet),
    row(`backup run + copy streamed (OFFSITE_STREAM) vs pg_dump -Fc then s3cmd put`, "s", both.streamed, both.cron, "ratio <= 0.8"),
    row(`backup run + copy uploaded after vs pg_dump -Fc then s3cmd put`, "s", both.uploaded, both.cron),
    ...(ageCli
      ? [
          row(
            `backup run + copy streamed encrypted (BACKUP_ENCRYPT_TO) vs pg_dump -Fc | age -r then s3cmd put`,
            "s",
            both.encrypted,
            both.cronEncrypted,
            "ratio <= 0.8",
          ),
        ]
      : []),
    row(`backup run + copy streamed encrypted vs the same unencrypted`, "s", both.encrypted, both.streamed, "ratio <= 1.05"),
  ];
  printTable(`Offsite: pmt-worker vs s3cmd 2.3 against s3rver (${link}), ${rounds} rounds`, rows, [
    `peak RSS of pmt-worker offsite sync: ${oursRss.toFixed(0)} MB for a ${mb.toFixed(0)} MB dump`,
    `peak RSS of pmt-worker backup run, streamed encrypted: ${encryptedRss.toFixed(0)} MB`,
  ]);
  const file = writeResults(mbps > 0 ? "offsite" : "offsite-localhost", {
    rounds,
    activities,
    mbps,
    dump_mb: mb,
    rows,
    rss_mb: oursRss,
    encrypted_rss_mb: encryptedRss,
  });
  process.stdout.write(`results: ${file}\n`);
}
