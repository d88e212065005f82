/**
 * Child processes get only the environment they need (issue 12, point 8):
 * with SMTP_URL, DATABASE_URL, OFFSITE_URL, AWS_* and a stray PGPASSWORD in
 * the worker's environment, a real backup runs pg_dump and pg_restore through
 * wrappers that record their environment before running the real tools. They
 * see the target's libpq settings and PATH/HOME/LANG/TZ, nothing else.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findTools, searchDirs } from "../../src/pgtools/tools.js";
import { runBackup } from "../../src/backups/run.js";
import { backupTargets } from "../../src/backups/target.js";
import { childEnv } from "../../src/child-env.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { recordFault } from "../harness/faults.js";
import { testConfig } from "../harness/worker.js";

const SECRETS: Record<string, string> = {
  SMTP_URL: "smtp://mailer:Smtp-Sekret-41@mail.example.org:587",
  DATABASE_URL: "postgres://worker:Db-Sekret-42@db.example.org/pmt",
  OFFSITE_URL: "s3://bucket/prefix",
  AWS_ACCESS_KEY_ID: "AKIA-SEKRET-43",
  AWS_SECRET_ACCESS_KEY: "Aws-Sekret-44",
  BACKUP_DATABASES: "postgres://backup:Backup-Sekret-45@db.example.org/pmt",
  PGPASSWORD: "Inherited-Sekret-46", // ours, for another server: the tool must use the target's
  PGSERVICE: "evil", // would redirect libpq to a service file entry
};
/** What a tool may see besides the target's PG* settings. */
const ALLOWED = new Set(["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR"]);

let db: TestDatabase;
let bin: string;
let logDir: string;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-childenv-"));
  bin = path.join(root, "bin");
  logDir = path.join(root, "env");
  fs.mkdirSync(bin);
  fs.mkdirSync(logDir);
  for (const tool of ["pg_dump", "pg_restore"] as const) {
    const real = findTools(tool, searchDirs()).find((t) => t.major >= 15);
    if (!real) throw new Error(`no ${tool} 15 or newer installed`);
    // Records its environment (NUL-separated), then runs the real tool.
    fs.writeFileSync(path.join(bin, tool), `#!/bin/sh\n/usr/bin/env -0 > "${logDir}/${tool}.$$"\nexec "${real.path}" "$@"\n`, { mode: 0o755 });
  }
  for (const [name, value] of Object.entries(SECRETS)) {
    saved[name] = process.env[name];
    process.env[name] = value;
  }
});

afterAll(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

function recorded(): { tool: string; env: Record<string, string> }[] {
  return fs.readdirSync(logDir).map((file) => ({
    tool: file.split(".")[0]!,
    env: Object.fromEntries(
      fs
        .readFileSync(path.join(logDir, file), "utf8")
        .split("\0")
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    ),
  }));
}

describe("child processes", () => {
  it("childEnv keeps PATH, HOME, language and time zone, adds the caller's, drops everything else", () => {
    const from = { PATH: "/usr/bin", HOME: "/home/pmt", LANG: "C.UTF-8", TZ: "UTC", ...SECRETS, NODE_OPTIONS: "--require /tmp/x.js" };
    expect(childEnv({ PGHOST: "db", PGPASSWORD: "target" }, from)).toEqual({
      PATH: "/usr/bin",
      HOME: "/home/pmt",
      LANG: "C.UTF-8",
      TZ: "UTC",
      PGHOST: "db",
      PGPASSWORD: "target",
    });
  });

  it("pg_dump and pg_restore of a real backup see the target's libpq settings and none of the worker's secrets", async () => {
    const config = testConfig({ BACKUP_DIR: path.join(path.dirname(bin), "backups"), PG_BIN_DIR: bin });
    const row = await runBackup({ config, pool: db.pool, logger: createLogger("silent") }, backupTargets(db.url, { databases: [] })[0]!);
    expect(row.status).toBe("succeeded");

    const runs = recorded();
    // --version of each while choosing, the dump, the restore --list check
    expect(runs.filter((r) => r.tool === "pg_dump").length).toBeGreaterThanOrEqual(2);
    expect(runs.filter((r) => r.tool === "pg_restore").length).toBeGreaterThanOrEqual(2);
    const target = new URL(db.url);
    for (const { tool, env } of runs) {
      const names = Object.keys(env).filter((n) => n !== "PWD" && n !== "SHLVL" && n !== "_"); // set by the wrapper's sh
      expect(
        names.filter((n) => !ALLOWED.has(n) && !n.startsWith("PG")),
        tool,
      ).toEqual([]);
      for (const secret of Object.values(SECRETS)) expect(Object.values(env).join("\n"), tool).not.toContain(secret);
      expect(env.PGSERVICE, tool).toBeUndefined();
      if (env.PGDATABASE !== undefined) {
        // a connecting run: exactly the target's settings
        expect({ tool, host: env.PGHOST, port: env.PGPORT, db: env.PGDATABASE, user: env.PGUSER }).toEqual({
          tool,
          host: target.hostname,
          port: target.port,
          db: db.name,
          user: decodeURIComponent(target.username),
        });
        if (target.password) expect(env.PGPASSWORD).toBe(decodeURIComponent(target.password));
      }
    }
    expect(runs.some((r) => r.tool === "pg_dump" && r.env.PGDATABASE === db.name)).toBe(true);
    recordFault({
      scenario: "child environment",
      fault: "SMTP_URL, DATABASE_URL, AWS_* keys, BACKUP_DATABASES, a stray PGPASSWORD and PGSERVICE in the worker's environment; a backup",
      outcome: `${runs.length} runs of pg_dump/pg_restore saw PATH/HOME/LANG/TZ and the target's PG* settings only; no secret`,
      lost: 0,
    });
  });
});
