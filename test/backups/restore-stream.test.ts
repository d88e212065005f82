/**
 * The one restore procedure fed a stream (an offsite copy) that goes wrong:
 * pg_restore refusing what it reads says so in its own words (not "write
 * EPIPE"), and a source that fails half-way stops pg_restore; either way the
 * new database is dropped.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import { readManifest } from "../../src/backups/manifest.js";
import { runBackup } from "../../src/backups/run.js";
import { backupTargets } from "../../src/backups/target.js";
import type { Config } from "../../src/config.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { restoreFromOffsite } from "../../src/offsite/restore.js";
import { openStore, type OffsiteStore } from "../../src/offsite/store.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { testConfig } from "../harness/worker.js";

const logger = createLogger("silent");
let db: TestDatabase;
let config: Config;
let store: OffsiteStore;
let dump: Buffer;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, logger);
  await db.pool.query("create table public.big as select g as id, md5(g::text) as v from generate_series(1, 50000) g");
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-restore-stream-"));
  config = testConfig({ BACKUP_DIR: path.join(home, "b"), BACKUP_MIN_FREE_MB: "0" });
  const backup = await runBackup({ config, pool: db.pool, logger }, backupTargets(db.url, { databases: [] })[0]!);
  dump = fs.readFileSync(backup.local_path!);
  store = openStore(`file://${path.join(home, "store")}`, config.offsite);
  const manifest = readManifest(backup.local_path!)!;
  for (const key of ["garbage", "cut"]) await store.putText(`${key}.json`, JSON.stringify(manifest));
  // Larger than a pipe's buffer: pg_restore stops reading long before the end.
  await store.putStream("garbage", Readable.from([crypto.randomBytes(4 * 2 ** 20)]));
});

async function exists(name: string): Promise<boolean> {
  return Boolean((await db.pool.query("select 1 from pg_database where datname = $1", [name])).rowCount);
}

describe("restore from a stream", () => {
  it("reports pg_restore's own reason when it refuses the stream, and drops the new database", async () => {
    const into = `${db.name}_garbage`;
    await expect(restoreFromOffsite(config, store, db.url, "garbage", into)).rejects.toThrow(
      new RegExp(
        `^restore of garbage into ${into} failed \\(the new database was dropped\\): pg_restore exited with 1: .*(not appear to be a valid archive|input file)`,
      ),
    );
    expect(await exists(into)).toBe(false);
  });

  it("stops pg_restore when the source fails half-way, with the source's error, and drops the new database", async () => {
    // The store's connection breaks after the first 64 KiB of a real dump.
    const breaking: OffsiteStore = {
      ...store,
      description: store.description,
      prefix: store.prefix,
      head: (key) => store.head(key),
      read: async (key) => {
        if (key !== "cut") return store.read(key);
        return new Readable({
          read() {
            this.push(dump.subarray(0, 64 * 1024));
            this.destroy(new Error("connection reset by the store"));
          },
        });
      },
    };
    const into = `${db.name}_cut`;
    await expect(restoreFromOffsite(config, breaking, db.url, "cut", into)).rejects.toThrow(
      `restore of cut into ${into} failed (the new database was dropped): connection reset by the store`,
    );
    expect(await exists(into)).toBe(false);
  });
});
