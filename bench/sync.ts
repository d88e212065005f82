/**
 * Offsite sync benchmark: the nightly sync as it happens, `pmt-worker offsite
 * sync` against `s3cmd sync -r <backup folder>/ s3://<bucket>/<prefix>/` (the
 * original cron's command, with its default size and MD5 checks), alternating
 * in the same run, each into its own prefix of one in-process s3rver.
 *
 * 1. Steady state: a backup folder of `--backups` catalogued backups (a dump of
 *    incompressible bytes, 10 to 30 MB by default, as pg_dump -Fc files are
 *    compressed already; its `.globals.json` and its manifest, as a backup run
 *    writes them), all already offsite in both prefixes (seeded untimed), then
 *    one new backup before each timed pair. Each tool runs with the folder's
 *    files evicted from the page cache (cold: the nightly case, a server whose
 *    memory holds its database, not last month's dumps) and read just before
 *    (cached). s3cmd re-reads and MD5s every local file each night (and HEADs
 *    every multipart object for the MD5 it keeps in its metadata); ours proves
 *    the catalog's copies from one listing and uploads the one new backup.
 * 2. Catch-up through a link with a round-trip time (bench/throttle.ts: `--rtt`
 *    ms, `--catchup-mbps`, 0 for no limit): `--catchup-backups` small backups
 *    missing from a fresh prefix, ours with the default OFFSITE_CONCURRENCY, with
 *    1 and with 4, against s3cmd sync (one request at a time).
 *
 * Backups are one per day, and both retentions keep every daily copy for
 * longer than the run spans: nothing is pruned in the timed runs.
 *
 *   npm run bench -- sync [--rounds=5] [--backups=200] [--min-mb=10] [--max-mb=30]
 *                         [--catchup-backups=40] [--catchup-mb=2] [--rtt=40] [--catchup-mbps=0]
 * Needs s3cmd on PATH (Debian: apt-get install s3cmd).
 */
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { writeGlobals, type Globals } from "../src/backups/globals.js";
import { backupName } from "../src/backups/run.js";
import { writeManifest } from "../src/backups/manifest.js";
import { migrate } from "../src/db/migrate.js";
import { createPool } from "../src/db/pool.js";
import { createLogger } from "../src/log.js";
import { S3RVER_CREDENTIALS, S3Sink } from "../test/harness/s3.js";
import { benchDatabase, createDatabase, intArg, measure, numberArg, printTable, quantile, row, s3cmdConfig, writeResults } from "./lib.js";
import { ThrottleProxy } from "./throttle.js";

const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../bin/pmt-worker.js");
const DAY = 86_400_000;
const MB = 2 ** 20;

/** Writes `bytes` random bytes; returns the sha256. */
function randomFile(file: string, bytes: number): string {
  const hash = crypto.createHash("sha256");
  const fd = fs.openSync(file, "w", 0o600);
  try {
    for (let left = bytes; left > 0; left -= MB) {
      const chunk = crypto.randomBytes(Math.min(MB, left));
      hash.update(chunk);
      fs.writeSync(fd, chunk);
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

/** The globals a PMT server's backup carries: its owner, the worker and the two group roles. */
function globalsOf(database: string, at: Date): Globals {
  const role = (name: string, login: boolean, referenced: string[]) => ({
    name,
    superuser: name === "postgres",
    login,
    inherit: true,
    createrole: false,
    createdb: false,
    replication: false,
    bypassrls: false,
    connection_limit: -1,
    valid_until: null,
    settings: [],
    database_settings: [],
    referenced,
  });
  return {
    kind: "pmt-worker globals",
    version: 1,
    database,
    taken_at: at.toISOString(),
    server_version: "15.18",
    roles: [
      role("postgres", true, ["owner", "database owner"]),
      role("pmt_worker", true, ["owner"]),
      role("pmt_app", false, ["privileges"]),
      role("pmt_backup", false, ["privileges"]),
    ],
    memberships: [{ role: "pg_read_all_data", member: "pmt_worker", admin_option: false }],
    database_level: { owner: "postgres", acl: [{ grantee: null, privilege: "CONNECT", grantable: false }], settings: [] },
    sql: "-- roles and grants as SQL (globalsSql)\n".repeat(20),
  };
}

/** A backup as a run leaves it: the dump, its globals file, its manifest, its catalog row. */
export async function addBackup(pool: pg.Pool, backupDir: string, database: string, at: Date, bytes: number): Promise<string> {
  const file = backupName(database, at, "custom");
  const local = path.join(backupDir, database, file);
  const sha256 = randomFile(local, bytes);
  const globals = writeGlobals(local, globalsOf(database, at));
  writeManifest(local, {
    kind: "pmt-worker backup",
    version: 1,
    database,
    format: "custom",
    file,
    bytes,
    sha256,
    server_version: "15.18",
    pg_dump_version: "15.18",
    tiers: ["daily"],
    started_at: at.toISOString(),
    finished_at: at.toISOString(),
    table_counts: { "public.activity": 850_000, "public.organization": 1200 },
    globals,
  });
  await pool.query(
    `insert into pmt_jobs.backup (database, file, format, status, tiers, bytes, sha256, started_at, finished_at, local_path)
     values ($1, $2, 'custom', 'succeeded', '{daily}', $3, $4, $5, $5, $6)`,
    [database, file, bytes, sha256, at, local],
  );
  return local;
}

/**
 * Drops every file of `dir` from the page cache (posix_fadvise DONTNEED: no
 * root needed, unlike /proc/sys/vm/drop_caches), or reads them all into it.
 * Python's os module has posix_fadvise; s3cmd needs python3 anyway.
 */
const PAGE_CACHE = `import os, sys
mode, top = sys.argv[1], sys.argv[2]
for root, _, files in os.walk(top):
    for name in files:
        fd = os.open(os.path.join(root, name), os.O_RDONLY)
        try:
            if mode == "cold":
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            else:
                while os.read(fd, 1 << 20):
                    pass
        finally:
            os.close(fd)
`;

function pageCache(dir: string, mode: "cold" | "cached"): void {
  const r = spawnSync("python3", ["-c", PAGE_CACHE, mode, dir], { stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== 0) throw new Error(`could not make ${dir} ${mode} in the page cache: ${r.stderr}`);
}

async function verifiedCopies(pool: pg.Pool, target: string): Promise<number> {
  const { rows } = await pool.query("select count(*)::int as n from pmt_jobs.backup_copy where target = $1 and status = 'verified'", [target]);
  return rows[0].n;
}

/** Every object under `prefix` of the bench bucket: s3rver keeps them as files under its directory. */
function removePrefix(s3: S3Sink, prefix: string): void {
  fs.rmSync(path.join(s3.directory, "bench", prefix), { recursive: true, force: true });
}

const median = (values: number[]) => quantile(values, 0.5);

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

interface Setup {
  serverUrl: string;
  s3: S3Sink;
  dir: string;
  logger: ReturnType<typeof createLogger>;
}

/** A migrated database for one case's catalog, and its BACKUP_DIR under the run's folder with the database's subfolder. */
async function benchCatalog(setup: Setup, database: string, folder: string) {
  const url = await createDatabase(setup.serverUrl, database);
  const pool = createPool(url, { max: 2 });
  await migrate(pool, setup.logger);
  const backupDir = path.join(setup.dir, folder);
  fs.mkdirSync(path.join(backupDir, database), { recursive: true, mode: 0o700 });
  return { url, pool, backupDir };
}

async function steadyState(setup: Setup, rounds: number) {
  const count = intArg("backups", 200);
  const minMb = intArg("min-mb", 10);
  const maxMb = Math.max(minMb, intArg("max-mb", 30));
  const { s3, dir } = setup;
  const database = "bench_sync";
  const { url, pool, backupDir } = await benchCatalog(setup, database, "steady");
  // One backup a day, the newest yesterday when the timed rounds' new ones are added.
  const newBackups = 2 * rounds;
  const first = Date.now() - (count + newBackups + 1) * DAY;
  const sizeOf = (i: number) => Math.round((minMb + ((maxMb - minMb) * ((i * 37) % 100)) / 99) * MB);
  let total = 0;
  for (let i = 0; i < count; i++) {
    await addBackup(pool, backupDir, database, new Date(first + i * DAY), sizeOf(i));
    total += sizeOf(i);
  }
  process.stderr.write(`steady state: ${count} backups of ${minMb}-${maxMb} MB (${(total / 2 ** 30).toFixed(1)} GiB) written\n`);

  const s3cfg = s3cmdConfig(dir, `127.0.0.1:${s3.port}`);
  const target = "s3://bench/ours";
  const env = {
    ...process.env,
    ...S3RVER_CREDENTIALS,
    DATABASE_URL: url,
    BACKUP_DIR: backupDir,
    LOG_LEVEL: "warn",
    OFFSITE_URL: target,
    OFFSITE_SERVER_ID: "pmt1",
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: "true",
    OFFSITE_RETAIN_DAILY: String(count + newBackups + 30),
  };
  const ours = () => measure(process.execPath, [BIN, "offsite", "sync"], env);
  const s3cmd = () => measure("s3cmd", ["-c", s3cfg, "--no-progress", "sync", "-r", `${backupDir}/`, "s3://bench/s3cmd/pmt1/"], process.env);
  // Seeded at the same time (untimed, so only their sum of waiting matters).
  const [seededOurs, seededS3cmd] = await Promise.all([ours(), s3cmd()]);
  const seedOurs = seededOurs.ms;
  const seedS3cmd = seededS3cmd.ms;
  process.stderr.write(`seeded: offsite sync ${seconds(seedOurs)}, s3cmd sync ${seconds(seedS3cmd)}\n`);

  const times = { cold: { ours: [] as number[], s3cmd: [] as number[] }, cached: { ours: [] as number[], s3cmd: [] as number[] } };
  let rss = 0;
  let added = count;
  for (let round = 1; round <= rounds; round++) {
    for (const mode of ["cold", "cached"] as const) {
      await addBackup(pool, backupDir, database, new Date(first + added * DAY), sizeOf(added));
      added++;
      // Alternate which tool goes first.
      const order = (round + (mode === "cold" ? 0 : 1)) % 2 ? (["ours", "s3cmd"] as const) : (["s3cmd", "ours"] as const);
      const took: Record<string, number> = {};
      for (const tool of order) {
        pageCache(backupDir, mode);
        const m = await (tool === "ours" ? ours() : s3cmd());
        took[tool] = m.ms / 1000;
        if (tool === "ours") rss = Math.max(rss, m.rssMb);
      }
      times[mode].ours.push(took.ours!);
      times[mode].s3cmd.push(took.s3cmd!);
      process.stderr.write(`steady state round ${round} ${mode}: offsite sync ${took.ours!.toFixed(2)} s, s3cmd sync ${took.s3cmd!.toFixed(2)} s\n`);
    }
  }
  const copies = await verifiedCopies(pool, target);
  if (copies !== added) throw new Error(`expected offsite sync to leave ${added} verified copies, found ${copies}`);
  // Where our time goes: node and the CLI alone, then a sync with nothing new (start-up, configuration,
  // database, AWS SDK, one listing, the proofs, retention); the rest of a timed run is the one upload.
  const breakdown = { start: [] as number[], nothingNew: [] as number[] };
  for (let i = 0; i < 3; i++) {
    breakdown.start.push((await measure(process.execPath, [BIN, "--version"], env)).ms / 1000);
    breakdown.nothingNew.push((await ours()).ms / 1000);
  }
  const s3cmdObjects = fs.readdirSync(path.join(s3.directory, "bench", "s3cmd", "pmt1", database)).filter((f) => !f.includes("_S3rver_"));
  await pool.end();
  fs.rmSync(backupDir, { recursive: true, force: true });
  for (const prefix of ["ours", "s3cmd"]) removePrefix(s3, prefix);
  return { count, minMb, maxMb, totalGiB: total / 2 ** 30, seedOurs, seedS3cmd, times, breakdown, rss, s3cmdObjects: s3cmdObjects.length };
}

async function catchUp(setup: Setup, rounds: number) {
  const count = intArg("catchup-backups", 40);
  const mb = numberArg("catchup-mb", 2);
  const rtt = numberArg("rtt", 40);
  const mbps = numberArg("catchup-mbps", 0);
  const { s3, dir } = setup;
  const database = "bench_catchup";
  const { url, pool, backupDir } = await benchCatalog(setup, database, "catchup");
  const first = Date.now() - (count + 1) * DAY;
  for (let i = 0; i < count; i++) await addBackup(pool, backupDir, database, new Date(first + i * DAY), Math.round(mb * MB));
  const proxy = await ThrottleProxy.start(s3.port, { rttMs: rtt, megabitsPerSecond: mbps });
  const host = `127.0.0.1:${proxy.port}`;
  const s3cfg = s3cmdConfig(dir, host);
  const env = {
    ...process.env,
    ...S3RVER_CREDENTIALS,
    DATABASE_URL: url,
    BACKUP_DIR: backupDir,
    LOG_LEVEL: "warn",
    OFFSITE_SERVER_ID: "pmt1",
    S3_ENDPOINT: `http://${host}`,
    S3_FORCE_PATH_STYLE: "true",
    OFFSITE_RETAIN_DAILY: String(count + 30),
  };
  // The default (2), none at once, and more at once.
  const concurrency = Number(process.env.OFFSITE_CONCURRENCY ?? 2);
  const variants = [...new Set([concurrency, 1, 4])];
  const times: Record<string, number[]> = { s3cmd: [], ...Object.fromEntries(variants.map((c) => [`c${c}`, []])) };
  let rss = 0;
  // Round 0 warms up (not counted); the order turns each round.
  const tools = ["s3cmd", ...variants.map((c) => `c${c}`)];
  for (let round = 0; round <= rounds; round++) {
    const order = [...tools.slice(round % tools.length), ...tools.slice(0, round % tools.length)];
    const took: Record<string, number> = {};
    for (const tool of order) {
      const prefix = `${tool}-${round}`;
      const m =
        tool === "s3cmd"
          ? await measure("s3cmd", ["-c", s3cfg, "--no-progress", "sync", "-r", `${backupDir}/`, `s3://bench/${prefix}/pmt1/`], process.env)
          : await measure(process.execPath, [BIN, "offsite", "sync"], { ...env, OFFSITE_URL: `s3://bench/${prefix}`, OFFSITE_CONCURRENCY: tool.slice(1) });
      took[tool] = m.ms / 1000;
      removePrefix(s3, prefix);
      if (tool === "s3cmd") continue;
      rss = Math.max(rss, m.rssMb);
      const copies = await verifiedCopies(pool, `s3://bench/${prefix}`);
      if (copies !== count) throw new Error(`expected offsite sync to leave ${count} verified copies, found ${copies}`);
    }
    process.stderr.write(
      `catch-up round ${round}: ${tools.map((t) => `${t === "s3cmd" ? "s3cmd sync" : `OFFSITE_CONCURRENCY=${t.slice(1)}`} ${took[t]!.toFixed(2)} s`).join(", ")}\n`,
    );
    if (round === 0) continue;
    for (const tool of tools) times[tool]!.push(took[tool]!);
  }
  await proxy.close();
  await pool.end();
  fs.rmSync(backupDir, { recursive: true, force: true });
  return { count, mb, rtt, mbps, concurrency, times, rss };
}

export async function main(): Promise<void> {
  if (spawnSync("s3cmd", ["--version"]).status !== 0) throw new Error("the sync benchmark needs s3cmd as its baseline: apt-get install s3cmd");
  const rounds = intArg("rounds", 5);
  const only = process.argv.find((a) => a.startsWith("--case="))?.split("=")[1];
  const server = await benchDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-bench-sync-"));
  fs.chmodSync(dir, 0o700);
  const s3 = await S3Sink.start(["bench"]);
  const setup = { serverUrl: server.url, s3, dir, logger: createLogger("warn") };
  try {
    const steady = only && only !== "steady" ? undefined : await steadyState(setup, rounds);
    const catchup = only && only !== "catchup" ? undefined : await catchUp(setup, rounds);
    const rows = [];
    const notes = [];
    if (steady) {
      const what = `${steady.count} backups offsite (${steady.minMb}-${steady.maxMb} MB, ${steady.totalGiB.toFixed(1)} GiB), one new`;
      rows.push(
        row(`steady state, files not in the page cache: ${what}`, "s", steady.times.cold.ours, steady.times.cold.s3cmd, "ratio <= 0.3"),
        row(`steady state, files in the page cache: ${what}`, "s", steady.times.cached.ours, steady.times.cached.s3cmd, "ratio <= 0.3"),
      );
      notes.push(
        `seeding (untimed, localhost, both at once): offsite sync ${seconds(steady.seedOurs)}, s3cmd sync ${seconds(steady.seedS3cmd)}`,
        `steady state, ours: node and the CLI alone (--version) ${median(steady.breakdown.start).toFixed(2)} s; a sync with nothing new (start-up, config, database, AWS SDK, one listing, proofs, retention) ${median(steady.breakdown.nothingNew).toFixed(2)} s; the rest of a timed run is the one upload`,
        `peak RSS of pmt-worker offsite sync in the steady state: ${steady.rss.toFixed(0)} MB`,
      );
    }
    if (catchup) {
      const link = `${catchup.rtt} ms RTT, ${catchup.mbps ? `${catchup.mbps} Mbit/s` : "no bandwidth limit"}`;
      const what = `${catchup.count} missing backups of ${catchup.mb} MB (with globals and manifests), ${link}`;
      for (const [tool, values] of Object.entries(catchup.times)) {
        if (tool === "s3cmd") continue;
        const c = Number(tool.slice(1));
        const label = c === catchup.concurrency ? `OFFSITE_CONCURRENCY=${c} (default)` : `OFFSITE_CONCURRENCY=${c}`;
        rows.push(row(`catch-up, ${label}: ${what}`, "s", values, catchup.times.s3cmd!, c === catchup.concurrency ? "ratio <= 0.5" : undefined));
      }
      notes.push(`peak RSS of pmt-worker offsite sync in the catch-up: ${catchup.rss.toFixed(0)} MB`);
    }
    printTable(`Offsite sync: pmt-worker offsite sync vs s3cmd sync -r, against s3rver, ${rounds} rounds, alternating`, rows, notes);
    const file = writeResults("sync", { rounds, rows, steady, catchup });
    process.stdout.write(`results: ${file}\n`);
  } finally {
    await s3.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
