/**
 * Backup benchmark: `pmt-worker backup run` (pg_dump through sha256 into a
 * .partial, fsync, pg_restore --list, manifest, catalog, retention) against a
 * bare `pg_dump -Fc db > file` and `pg_dump -Ft db > file` (the original
 * cron's), alternating on the same generated PMT database; encrypted on the
 * disk (BACKUP_ENCRYPT_LOCAL, age in-process) against `pg_dump -Fc | age -r`
 * (Debian's age, when installed); then the same at
 * twice the size, to show that our memory stays flat.
 *
 *   npm run bench -- backup [--rounds=5] [--activities=850000]
 * The default is a database of about 1 GB (twice that for the memory check):
 * about ten minutes on 2 cores; --activities=200000 (230 MB) is a quick run.
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
import { benchDatabase, createDatabase, intArg, measure, printTable, row, writeResults } from "./lib.js";

const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../bin/pmt-worker.js");

export async function main(): Promise<void> {
  const rounds = intArg("rounds", 5);
  const activities = intArg("activities", 850_000);
  const server = await benchDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-bench-backup-"));
  const logger = createLogger("warn");
  const results: Record<string, unknown> = { rounds, activities };
  const rssBySize: { activities: number; ours: number; sealed: number; db_mb: number }[] = [];
  let rows: ReturnType<typeof row>[] = [];
  const { generateX25519Identity, identityToRecipient } = await import("age-encryption");
  const recipient = await identityToRecipient(await generateX25519Identity());
  const ageCli = spawnSync("age", ["--version"]).status === 0;

  for (const size of [activities, activities * 2]) {
    const url = await createDatabase(server.url, `bench_backup_${size}`);
    const pool = createPool(url, { max: 2 });
    await migrate(pool, logger);
    await seedDemo(pool, size);
    const dbMb = Number((await pool.query("select pg_database_size(current_database()) as b")).rows[0].b) / 2 ** 20;
    await pool.end();
    const serverMajor = 15;
    const pgDump = chooseTool("pg_dump", findTools("pg_dump", searchDirs()), { major: serverMajor, version: "15" });
    const env = {
      ...process.env,
      DATABASE_URL: url,
      BACKUP_DIR: path.join(dir, `ours_${size}`),
      LOG_LEVEL: "warn",
      RETAIN_DAILY: "1",
      RETAIN_WEEKLY: "0",
      RETAIN_MONTHLY: "0",
      RETAIN_MIN_SUCCESSFUL: "1",
    };
    const times = { ours: [] as number[], custom: [] as number[], tar: [] as number[], sealed: [] as number[], customAge: [] as number[] };
    const sealedEnv = {
      ...env,
      BACKUP_DIR: path.join(dir, `sealed_${size}`),
      BACKUP_ENCRYPT_TO: recipient,
      BACKUP_ENCRYPT_LOCAL: "true",
      BACKUP_TEST_RESTORE_CRON: "off",
    };
    let oursRss = 0;
    let sealedRss = 0;
    for (let round = 0; round <= rounds && (size === activities || round <= 1); round++) {
      const o = await measure(process.execPath, [BIN, "backup", "run"], env);
      const c = await measure(pgDump.path, ["-Fc"], toolEnv(url), path.join(dir, "raw.dump"));
      const t = await measure(pgDump.path, ["-Ft"], toolEnv(url), path.join(dir, "raw.tar"));
      const e = await measure(process.execPath, [BIN, "backup", "run"], sealedEnv);
      const ca = ageCli
        ? await measure("bash", ["-c", '"$PG_DUMP" -Fc | age -r "$AGE_RECIPIENT" > "$OUT"'], {
            ...toolEnv(url),
            PG_DUMP: pgDump.path,
            AGE_RECIPIENT: recipient,
            OUT: path.join(dir, "raw.dump.age"),
          })
        : undefined;
      oursRss = Math.max(oursRss, o.rssMb);
      sealedRss = Math.max(sealedRss, e.rssMb);
      if (round === 0) continue;
      times.sealed.push(e.ms / 1000);
      if (ca) times.customAge.push(ca.ms / 1000);
      times.ours.push(o.ms / 1000);
      times.custom.push(c.ms / 1000);
      times.tar.push(t.ms / 1000);
      process.stderr.write(
        `${size} activities, round ${round}: ours ${(o.ms / 1000).toFixed(2)} s, pg_dump -Fc ${(c.ms / 1000).toFixed(2)} s, -Ft ${(t.ms / 1000).toFixed(2)} s\n`,
      );
    }
    rssBySize.push({ activities: size, ours: oursRss, sealed: sealedRss, db_mb: dbMb });
    if (size === activities) {
      rows = [
        row(`backup run vs pg_dump -Fc (${dbMb.toFixed(0)} MB db)`, "s", times.ours, times.custom, "ratio <= 1.10"),
        row(`backup run vs pg_dump -Ft (${dbMb.toFixed(0)} MB db)`, "s", times.ours, times.tar),
        ...(ageCli
          ? [row(`backup run, BACKUP_ENCRYPT_LOCAL vs pg_dump -Fc | age -r (${dbMb.toFixed(0)} MB db)`, "s", times.sealed, times.customAge, "ratio <= 1.10")]
          : []),
        row(`backup run, BACKUP_ENCRYPT_LOCAL vs backup run unencrypted`, "s", times.sealed, times.ours),
      ];
    }
  }
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
  printTable(`Backup: pmt-worker backup run (custom format) vs bare pg_dump, ${rounds} rounds`, rows, [
    ...rssBySize.map(
      (r) =>
        `peak RSS of pmt-worker backup run: ${r.ours.toFixed(0)} MB, encrypted ${r.sealed.toFixed(0)} MB, with a ${r.db_mb.toFixed(0)} MB database (${r.activities} activities)`,
    ),
  ]);
  const file = writeResults("backup", { ...results, rows, rss: rssBySize });
  process.stdout.write(`results: ${file}\n`);
}
