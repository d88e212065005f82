/**
 * Backup benchmark: `pmt-worker backup run` (pg_dump through sha256 into a
 * .partial, listed by pg_restore as it is written, row counts in the dump's
 * snapshot, fsync, manifest, catalog, retention) against a bare
 * `pg_dump -Fc db > file` and `pg_dump -Ft db > file` (the original cron's),
 * alternating round by round on the same generated PMT database; encrypted
 * on the disk (BACKUP_ENCRYPT_LOCAL, age in-process) against
 * `pg_dump -Fc | age -r` (Debian's age, when installed); then the same at
 * twice the size, to show that our memory stays flat.
 *
 *   npm run bench -- backup [--rounds=5] [--activities=850000] [--custom-only] [--no-double] [--reuse]
 *
 * The default is a database of about 1 GB (twice that for the memory check):
 * about ten minutes on 2 cores; --activities=200000 (260 MB) is a quick run.
 * About 5 GB: --activities=4000000 --rounds=2 --custom-only --no-double
 * (`backup run` against `pg_dump -Fc` only, no doubled size; its results go
 * to backup-4000000.json, the default size's to backup.json).
 * --reuse keeps the generated database for the next run (with
 * BENCH_DATABASE_URL; generating 5 GB takes a quarter of an hour here).
 *
 * The generated database is VACUUM ANALYZEd once loaded, as autovacuum does
 * to a production database: without it the first rounds race autovacuum
 * (hint bits, the visibility map), and the row counts pay for pages no real
 * database leaves unvacuumed.
 *
 * Our runs log at debug level, which gives the breakdown: the time from the
 * process's start to pg_dump's spawn, pg_dump's run, and the time from its
 * exit to the process's exit.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { migrate } from "../src/db/migrate.js";
import { createPool } from "../src/db/pool.js";
import { seedDemo } from "../src/exports/demo.js";
import { createLogger } from "../src/log.js";
import { chooseTool, findTools, searchDirs, toolEnv } from "../src/pgtools/tools.js";
import { benchDatabase, createDatabase, flagArg, intArg, measure, printTable, quantile, row, writeResults } from "./lib.js";

const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../bin/pmt-worker.js");
const DEFAULT_ACTIVITIES = 850_000;

/** The marker of a database this benchmark generated and vacuumed (--reuse keeps such a one). */
const marker = (activities: number) => `pmt-worker bench: ${activities} activities, vacuumed`;

/** The generated database of `activities` activities, migrated, seeded and vacuumed; with `reuse`, an earlier one is kept as it is. */
export async function prepareDatabase(serverUrl: string, activities: number, reuse: boolean): Promise<{ url: string; dbMb: number }> {
  const name = `bench_backup_${activities}`;
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  let url = u.toString();
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  const found = await admin
    .query<{ comment: string | null }>("select pg_catalog.shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1", [name])
    .finally(() => admin.end());
  if (!reuse || found.rows[0]?.comment !== marker(activities)) {
    url = await createDatabase(serverUrl, name);
    const pool = createPool(url, { max: 2 });
    await migrate(pool, createLogger("warn"));
    await seedDemo(pool, activities);
    await pool.query("vacuum analyze");
    await pool.query(`comment on database ${name} is '${marker(activities)}'`);
    await pool.end();
  }
  const pool = createPool(url, { max: 1 });
  const dbMb = Number((await pool.query("select pg_database_size(current_database()) as b")).rows[0].b) / 2 ** 20;
  await pool.end();
  return { url, dbMb };
}

/** Where our run's time went, from its debug log: process start to pg_dump's spawn, pg_dump, its exit to the process's exit (seconds). */
function breakdown(stderr: string, wallMs: number): { before: number; dump: number; after: number } | undefined {
  const at = (msg: string) => {
    for (const line of stderr.split("\n")) {
      if (!line.startsWith("{")) continue;
      const entry = JSON.parse(line) as { msg?: string; process_ms?: number };
      if (entry.msg === msg && typeof entry.process_ms === "number") return entry.process_ms;
    }
    return undefined;
  };
  const started = at("pg_dump started");
  const exited = at("pg_dump finished");
  if (started === undefined || exited === undefined) return undefined;
  return { before: started / 1000, dump: (exited - started) / 1000, after: (wallMs - exited) / 1000 };
}

export async function main(): Promise<void> {
  const rounds = intArg("rounds", 5);
  const activities = intArg("activities", DEFAULT_ACTIVITIES);
  const customOnly = flagArg("custom-only");
  const reuse = flagArg("reuse");
  const sizes = flagArg("no-double") ? [activities] : [activities, activities * 2];
  const server = await benchDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-bench-backup-"));
  const results: Record<string, unknown> = { rounds, activities, custom_only: customOnly, vacuumed: true };
  const rssBySize: { activities: number; ours: number; sealed?: number; db_mb: number; dump_mb: number }[] = [];
  let rows: ReturnType<typeof row>[] = [];
  const { generateX25519Identity, identityToRecipient } = await import("age-encryption");
  const recipient = await identityToRecipient(await generateX25519Identity());
  const ageCli = !customOnly && spawnSync("age", ["--version"]).status === 0;

  for (const size of sizes) {
    const { url, dbMb } = await prepareDatabase(server.url, size, reuse);
    const serverMajor = 15;
    const pgDump = chooseTool("pg_dump", findTools("pg_dump", searchDirs()), { major: serverMajor, version: "15" });
    const env = {
      ...process.env,
      DATABASE_URL: url,
      BACKUP_DIR: path.join(dir, `ours_${size}`),
      // Debug: the breakdown's timestamps (pino is loaded either way: the run logs its success).
      LOG_LEVEL: "debug",
      RETAIN_DAILY: "1",
      RETAIN_WEEKLY: "0",
      RETAIN_MONTHLY: "0",
      RETAIN_MIN_SUCCESSFUL: "1",
    };
    const times = { ours: [] as number[], custom: [] as number[], tar: [] as number[], sealed: [] as number[], customAge: [] as number[] };
    const parts = { before: [] as number[], dump: [] as number[], after: [] as number[] };
    const sealedEnv = {
      ...env,
      LOG_LEVEL: "warn",
      BACKUP_DIR: path.join(dir, `sealed_${size}`),
      BACKUP_ENCRYPT_TO: recipient,
      BACKUP_ENCRYPT_LOCAL: "true",
      BACKUP_TEST_RESTORE_CRON: "off",
    };
    let oursRss = 0;
    let sealedRss = 0;
    // Round 0 warms up (the page cache, the first run's catalog); the doubled size gets one measured round.
    for (let round = 0; round <= rounds && (size === activities || round <= 1); round++) {
      const o = await measure(process.execPath, [BIN, "backup", "run"], env);
      const c = await measure(pgDump.path, ["-Fc"], toolEnv(url), path.join(dir, "raw.dump"));
      const t = customOnly ? undefined : await measure(pgDump.path, ["-Ft"], toolEnv(url), path.join(dir, "raw.tar"));
      const e = customOnly ? undefined : await measure(process.execPath, [BIN, "backup", "run"], sealedEnv);
      const ca = ageCli
        ? await measure("bash", ["-c", '"$PG_DUMP" -Fc | age -r "$AGE_RECIPIENT" > "$OUT"'], {
            ...toolEnv(url),
            PG_DUMP: pgDump.path,
            AGE_RECIPIENT: recipient,
            OUT: path.join(dir, "raw.dump.age"),
          })
        : undefined;
      oursRss = Math.max(oursRss, o.rssMb);
      sealedRss = Math.max(sealedRss, e?.rssMb ?? 0);
      if (round === 0) continue;
      const b = breakdown(o.stderr, o.ms);
      if (b) for (const k of ["before", "dump", "after"] as const) parts[k].push(b[k]);
      if (e) times.sealed.push(e.ms / 1000);
      if (ca) times.customAge.push(ca.ms / 1000);
      times.ours.push(o.ms / 1000);
      times.custom.push(c.ms / 1000);
      if (t) times.tar.push(t.ms / 1000);
      const split = b ? ` (${b.before.toFixed(2)} before pg_dump, ${b.dump.toFixed(2)} pg_dump, ${b.after.toFixed(2)} after)` : "";
      process.stderr.write(
        `${size} activities, round ${round}: ours ${(o.ms / 1000).toFixed(2)} s${split}, pg_dump -Fc ${(c.ms / 1000).toFixed(2)} s` +
          `${t ? `, -Ft ${(t.ms / 1000).toFixed(2)} s` : ""}${e ? `, encrypted ${(e.ms / 1000).toFixed(2)} s` : ""}\n`,
      );
    }
    const dumpMb = fs.statSync(path.join(dir, "raw.dump")).size / 2 ** 20;
    rssBySize.push({ activities: size, ours: oursRss, ...(customOnly ? {} : { sealed: sealedRss }), db_mb: dbMb, dump_mb: dumpMb });
    if (size === activities) {
      const db = `${dbMb.toFixed(0)} MB db, ${dumpMb.toFixed(0)} MB dump`;
      rows = [
        row(`backup run vs pg_dump -Fc (${db})`, "s", times.ours, times.custom, "ratio <= 1.05"),
        ...(customOnly
          ? []
          : [
              row(`backup run vs pg_dump -Ft (${dbMb.toFixed(0)} MB db)`, "s", times.ours, times.tar),
              ...(ageCli
                ? [
                    row(
                      `backup run, BACKUP_ENCRYPT_LOCAL vs pg_dump -Fc | age -r (${dbMb.toFixed(0)} MB db)`,
                      "s",
                      times.sealed,
                      times.customAge,
                      "ratio <= 1.10",
                    ),
                  ]
                : []),
              row(`backup run, BACKUP_ENCRYPT_LOCAL vs backup run unencrypted`, "s", times.sealed, times.ours),
            ]),
      ];
      if (parts.dump.length) {
        const med = (v: number[]) => quantile(v, 0.5);
        results.breakdown = {
          unit: "s",
          before_pg_dump: med(parts.before),
          pg_dump: med(parts.dump),
          after_pg_dump: med(parts.after),
          bare_pg_dump: med(times.custom),
          per_round: parts.dump.map((_, i) => ({ before: parts.before[i], pg_dump: parts.dump[i], after: parts.after[i], bare: times.custom[i] })),
        };
      }
    }
  }
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const b = results.breakdown as { before_pg_dump: number; pg_dump: number; after_pg_dump: number; bare_pg_dump: number } | undefined;
  printTable(`Backup: pmt-worker backup run (custom format) vs bare pg_dump, ${rounds} rounds`, rows, [
    ...(b
      ? [
          `backup run, medians: ${b.before_pg_dump.toFixed(2)} s from process start to pg_dump's spawn, pg_dump ${b.pg_dump.toFixed(2)} s (bare: ${b.bare_pg_dump.toFixed(2)} s), ${b.after_pg_dump.toFixed(2)} s from its exit to the process's`,
        ]
      : []),
    ...rssBySize.map(
      (r) =>
        `peak RSS of pmt-worker backup run: ${r.ours.toFixed(0)} MB${r.sealed === undefined ? "" : `, encrypted ${r.sealed.toFixed(0)} MB`}, with a ${r.db_mb.toFixed(0)} MB database (${r.activities} activities, ${r.dump_mb.toFixed(0)} MB dump)`,
    ),
  ]);
  const file = writeResults(activities === DEFAULT_ACTIVITIES ? "backup" : `backup-${activities}`, { ...results, rows, rss: rssBySize });
  process.stdout.write(`results: ${file}\n`);
}
