/**
 * A folder as the store (file://, the embedded default): `pmt-worker offsite
 * sync` copies, proves and lists without loading the AWS SDK (about a second
 * of a loaded machine's start-up) or age (no encryption asked). The command
 * runs with a module hook that fails any import of those packages.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup } from "../../src/backups/run.js";
import { backupTargets } from "../../src/backups/target.js";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { runCli } from "../harness/cli.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { testConfig } from "../harness/worker.js";

const HOOKS = `export async function resolve(specifier, context, next) {
  if (/^(@aws-sdk\\/|age-encryption$)/.test(specifier)) throw new Error(specifier + " was imported");
  return next(specifier, context);
}
`;

const logger = createLogger("silent");
let db: TestDatabase;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, logger);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-file-store-"));
  fs.writeFileSync(path.join(dir, "hooks.mjs"), HOOKS);
  fs.writeFileSync(
    path.join(dir, "register.mjs"),
    `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(path.join(dir, "hooks.mjs")).href)});\n`,
  );
  env = {
    DATABASE_URL: db.url,
    BACKUP_DIR: path.join(dir, "b"),
    OFFSITE_URL: `file://${path.join(dir, "store")}`,
    BACKUP_MIN_FREE_MB: "0",
    NODE_OPTIONS: `--import=${pathToFileURL(path.join(dir, "register.mjs")).href}`,
  };
  await runBackup({ config: testConfig(env), pool: db.pool, logger }, backupTargets(db.url, { databases: [] })[0]!);
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("offsite sync to a folder", () => {
  it("uploads, then proves the copy from the listing, without loading the AWS SDK or age", async () => {
    const first = await runCli(["offsite", "sync"], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain("proven from the store's listing 0, lost or changed 0, uploaded 1, pruned 0, unknown objects 0");
    const second = await runCli(["offsite", "sync"], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain("proven from the store's listing 1, lost or changed 0, uploaded 0, pruned 0, unknown objects 0");
  });

  it("loads the AWS SDK for an S3 store once it sends a request (the hook is what fails it here)", async () => {
    const r = await runCli(["offsite", "sync"], { ...env, OFFSITE_URL: "s3://bucket/pmt", S3_ENDPOINT: "http://127.0.0.1:9", S3_FORCE_PATH_STYLE: "true" });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain("@aws-sdk/");
  });
});
