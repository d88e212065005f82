/**
 * BACKUP_ENCRYPT_TO: every copy in the store is an age file encrypted to the
 * recipients as it streams, before it leaves the server; the worker holds
 * only public keys. Against a real S3 API server (s3rver) and real pg_dump:
 * the stored bytes are grepped for the database's rows and schema (found in
 * a control run without encryption, so the grep is proven to work), the
 * manifest says to whom, sha256 and ETag prove both the plaintext and the
 * stored bytes, sync proves encrypted copies from the listing, and a restore
 * from the store takes the identity from a file or stdin.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Decrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { createLogger } from "../../src/log.js";
import { globalsKey, ownerOf } from "../../src/offsite/copies.js";
import { openStore, type OffsiteStore } from "../../src/offsite/store.js";
import { runCli } from "../harness/cli.js";
import { recordFault } from "../harness/faults.js";
import { createTestDatabase, queryOnce, type TestDatabase } from "../harness/db.js";
import { S3RVER_CREDENTIALS, S3Sink } from "../harness/s3.js";
import { testConfig } from "../harness/worker.js";

const logger = createLogger("silent");
const MARKER = `drill-secret-${crypto.randomBytes(4).toString("hex")}`;
let db: TestDatabase;
let s3: S3Sink;
let identity: string;
let recipient: string;
let identityFile: string;
let env: Record<string, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, logger);
  // Rows a leak would show: an uncompressed (tar) dump carries them verbatim, a custom one its schema.
  await db.pool.query(`create table public.secret_rows as select g as id, '${MARKER}-' || g as v from generate_series(1, 2000) g`);
  s3 = await S3Sink.start(["vault"]);
  identity = await generateX25519Identity();
  recipient = await identityToRecipient(identity);
  const keys = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-age-"));
  identityFile = path.join(keys, "key.txt");
  fs.writeFileSync(identityFile, `# created: by the test\n# public key: ${recipient}\n${identity}\n`, { mode: 0o600 });
  env = {
    ...S3RVER_CREDENTIALS,
    DATABASE_URL: db.url,
    BACKUP_DIR: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-enc-")), "b"),
    OFFSITE_URL: "s3://vault/pmt",
    OFFSITE_SERVER_ID: "db-1",
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: "true",
    BACKUP_MIN_FREE_MB: "0",
    BACKUP_TEST_RESTORE_CRON: "off",
  };
});

afterAll(async () => {
  await s3?.close();
});

function store(): OffsiteStore {
  Object.assign(process.env, S3RVER_CREDENTIALS);
  return openStore("s3://vault/pmt", testConfig(env).offsite);
}

async function bytesOf(key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await store().read(key)) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** Every object's bytes under the server's folder, as the store holds them. */
async function everything(): Promise<{ key: string; bytes: Buffer }[]> {
  const out = [];
  for (const o of await store().list("pmt/")) out.push({ key: o.key, bytes: await bytesOf(o.key) });
  return out;
}

const leaks = (objects: { key: string; bytes: Buffer }[]) =>
  objects.filter((o) => o.bytes.includes(MARKER) || o.bytes.includes("secret_rows") || o.bytes.includes("PGDMP")).map((o) => o.key);

async function backupRun(extra: Record<string, string>): Promise<{ id: number; key: string }> {
  const run = await runCli(["backup", "run", "--format", extra.BACKUP_FORMAT ?? "custom"], { ...env, ...extra });
  expect(run.code, run.stderr).toBe(0);
  expect(run.stdout).toMatch(/offsite copy verified/);
  const id = Number(/backup (\d+) succeeded/.exec(run.stdout)![1]);
  const [copy] = await queryOnce<{ key: string }>(db.url, "select key from pmt_jobs.backup_copy where backup_id = $1", [id]);
  return { id, key: copy!.key };
}

describe("BACKUP_ENCRYPT_TO", () => {
  it("without it the copies carry the database's rows: the grep below finds them (control)", async () => {
    const { id, key } = await backupRun({ BACKUP_FORMAT: "tar" });
    expect(key).not.toMatch(/\.age$/);
    expect(leaks(await everything())).toContain(key);
    // Clean slate for the encrypted runs: their objects alone are grepped.
    for (const o of await store().list("pmt/")) await store().remove(o.key);
    await db.pool.query("delete from pmt_jobs.backup_copy");
    await db.pool.query("update pmt_jobs.backup set status = 'pruned' where id = $1", [id]);
  });

  it.each([
    ["tar", "false", "checksum"],
    ["custom", "false", "read-back"],
    ["custom", "true", "checksum"],
    ["tar", "true", "read-back"],
  ])(
    "%s format, OFFSITE_STREAM=%s, proven by %s: no plaintext byte reaches the bucket, and the copy decrypts to the backup",
    async (format, stream, verify) => {
      const { id, key } = await backupRun({ BACKUP_FORMAT: format, OFFSITE_STREAM: stream, OFFSITE_VERIFY: verify, BACKUP_ENCRYPT_TO: recipient });
      expect(key).toMatch(/\.age$/);
      const objects = await everything();
      expect(objects.map((o) => o.key)).toContain(key);
      expect(leaks(objects)).toEqual([]);

      const [row] = await queryOnce<{
        sha256: string;
        bytes: string;
        stored_sha256: string;
        stored_bytes: string;
        encrypted_to: string[];
        verified_by: string;
      }>(
        db.url,
        `select b.sha256, b.bytes, c.stored_sha256, c.stored_bytes, c.encrypted_to, c.verified_by
       from pmt_jobs.backup b join pmt_jobs.backup_copy c on c.backup_id = b.id where b.id = $1`,
        [id],
      );
      expect(row!.encrypted_to).toEqual([recipient]);
      expect(row!.verified_by).toBe(verify);
      // What the store holds is what the catalog says was stored ...
      const stored = await bytesOf(key);
      expect(crypto.createHash("sha256").update(stored).digest("hex")).toBe(row!.stored_sha256);
      expect(stored.length).toBe(Number(row!.stored_bytes));
      expect(stored.subarray(0, 21).toString()).toBe("age-encryption.org/v1");
      // ... and decrypts, with the identity, to exactly the backup.
      const d = new Decrypter();
      d.addIdentity(identity);
      const plain = Buffer.from(await d.decrypt(new Uint8Array(stored)));
      expect(crypto.createHash("sha256").update(plain).digest("hex")).toBe(row!.sha256);
      expect(plain.length).toBe(Number(row!.bytes));

      const manifest = JSON.parse((await bytesOf(`${key}.json`)).toString());
      expect(manifest).toMatchObject({ kind: "pmt-worker backup", sha256: row!.sha256, encryption: { format: "age", recipients: [recipient] } });
      expect(manifest.table_counts).toBeUndefined();
      // The roles beside it, encrypted the same way, their sizes and sha256 in the manifest.
      expect(manifest.globals.key).toBe(globalsKey(key));
      const globals = await bytesOf(manifest.globals.key);
      expect(globals.subarray(0, 21).toString()).toBe("age-encryption.org/v1");
      expect(crypto.createHash("sha256").update(globals).digest("hex")).toBe(manifest.globals.stored.sha256);
      const roles = JSON.parse(Buffer.from(await d.decrypt(new Uint8Array(globals))).toString());
      expect(roles.kind).toBe("pmt-worker globals");
    },
  );

  it("a directory-format dump: each of its files an age file; a file:// store: read back and proven", async () => {
    const dir = await backupRun({ BACKUP_FORMAT: "directory", BACKUP_ENCRYPT_TO: recipient });
    const files = (await store().list(`${dir.key}/`)).map((o) => o.key);
    expect(files.length).toBeGreaterThan(1);
    for (const f of files) expect((await bytesOf(f)).subarray(0, 21).toString()).toBe("age-encryption.org/v1");
    expect(leaks(await everything())).toEqual([]);
    await db.pool.query("update pmt_jobs.backup set status = 'pruned' where id = $1", [dir.id]);
    await db.pool.query("delete from pmt_jobs.backup_copy where backup_id = $1", [dir.id]);
    for (const f of [...files, `${dir.key}.json`, globalsKey(dir.key)]) await store().remove(f);

    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-enc-store-"));
    const run = await runCli(["backup", "run"], { ...env, OFFSITE_URL: `file://${folder}`, BACKUP_ENCRYPT_TO: recipient });
    expect(run.code, run.stderr).toBe(0);
    const id = Number(/backup (\d+) succeeded/.exec(run.stdout)![1]);
    const [copy] = await queryOnce<{ key: string; verified_by: string; stored_sha256: string }>(
      db.url,
      "select key, verified_by, stored_sha256 from pmt_jobs.backup_copy where backup_id = $1 and target like 'file://%'",
      [id],
    );
    expect(copy!.verified_by).toBe("read-back");
    const stored = fs.readFileSync(path.join(folder, copy!.key));
    expect(crypto.createHash("sha256").update(stored).digest("hex")).toBe(copy!.stored_sha256);
    expect(stored.includes("secret_rows")).toBe(false);
    await db.pool.query("update pmt_jobs.backup set status = 'pruned' where id = $1", [id]);
    fs.rmSync(folder, { recursive: true, force: true });
  });

  it("offsite list shows to whom each copy is encrypted; offsite sync proves the copies from the listing without uploading", async () => {
    const list = await runCli(["offsite", "list", "--json"], { ...env, BACKUP_ENCRYPT_TO: recipient });
    expect(list.code, list.stderr).toBe(0);
    const entries = list.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(entries.length).toBeGreaterThanOrEqual(4);
    for (const e of entries) expect(e.encryption.recipients).toEqual([recipient]);
    const sync = await runCli(["offsite", "sync"], { ...env, BACKUP_ENCRYPT_TO: recipient });
    expect(sync.code, sync.stderr).toBe(0);
    expect(sync.stdout).toMatch(/proven from the store's listing 4, lost or changed 0, uploaded 0, pruned \d+, unknown objects 0\n/);
    // Remote retention pruned whole copies: every object left belongs to a copy the store still lists.
    const left = (await runCli(["offsite", "list", "--json"], env)).stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).key as string);
    const owned = new Set(left);
    const objects = await store().list("pmt/");
    for (const o of objects) expect(ownerOf(o.key, owned), o.key).toBeDefined();
    recordFault({
      scenario: "bucket read by a stranger (BACKUP_ENCRYPT_TO)",
      fault: "every object of the bucket read and searched for the database's rows, table names and pg_dump's signature",
      outcome: `none in ${objects.length} objects (custom, tar, directory; uploaded and streamed; found in the control run without encryption); each copy decrypts with the identity to its backup's sha256`,
      lost: 0,
    });
  });

  it("restores from the store with the identity from a file or stdin; without it, or with another, says so and creates nothing", async () => {
    const [entry] = (await runCli(["offsite", "list", "--json"], env)).stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const into = `${db.name}_dr`;
    const none = await runCli(["backup", "restore", "--from-offsite", entry.key, "--into", into], env);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`is encrypted with age to ${recipient}: pass --identity-file`);

    const other = path.join(path.dirname(identityFile), "other.txt");
    fs.writeFileSync(other, `${await generateX25519Identity()}\n`, { mode: 0o600 });
    const wrong = await runCli(["backup", "restore", "--from-offsite", entry.key, "--into", into, "--identity-file", other], env);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("the identity given is not one of them");
    expect(await queryOnce(db.url, "select 1 from pg_database where datname = $1", [into])).toEqual([]);

    const bad = await runCli(["backup", "restore", "--from-offsite", entry.key, "--into", into, "--identity-file", "-"], env, undefined, "not a key\n");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("stdin: expected an age identity file");
    expect(bad.stderr).not.toContain("not a key");
    recordFault({
      scenario: "restore with a missing or wrong identity",
      fault: "backup restore --from-offsite of an encrypted copy without --identity-file, with another key, with a malformed file on stdin",
      outcome:
        "refused before a database is created, naming the copy's recipients; the malformed input not echoed; the right identity from a file or stdin restores every row",
      lost: 0,
    });

    for (const [name, args, input] of [
      ["file", ["--identity-file", identityFile], undefined],
      ["stdin", ["--identity-file", "-"], fs.readFileSync(identityFile, "utf8")],
    ] as const) {
      const target = `${into}_${name}`;
      const ok = await runCli(["backup", "restore", "--from-offsite", entry.key, "--into", target, ...args], env, undefined, input);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout + ok.stderr).not.toContain(identity);
      const [rows] = await queryOnce<{ n: string }>(
        db.url.replace(`/${db.name}`, `/${target}`),
        `select count(*) as n from public.secret_rows where v like '${MARKER}%'`,
      );
      expect(Number(rows!.n)).toBe(2000);
      await queryOnce(db.url, `drop database ${target} with (force)`);
    }
  });

  it("refuses a private key or a malformed recipient, without echoing it", async () => {
    const secret = await runCli(["backup", "run"], { ...env, BACKUP_ENCRYPT_TO: identity });
    expect(secret.code).toBe(1);
    expect(secret.stderr).toContain("BACKUP_ENCRYPT_TO");
    expect(secret.stderr).toContain("is an identity (a private key)");
    expect(secret.stderr).not.toContain(identity.slice(15));
    // A typo keeps the shape but breaks the checksum: refused before anything is uploaded.
    const typo = recipient.slice(0, -1) + (recipient.endsWith("q") ? "p" : "q");
    const run = await runCli(["backup", "run"], { ...env, BACKUP_ENCRYPT_TO: typo });
    expect(run.stderr).toMatch(/not a valid age recipient/);
  });
});

describe("BACKUP_ENCRYPT_LOCAL", () => {
  let local: Record<string, string>;
  beforeAll(() => {
    local = {
      ...env,
      BACKUP_DIR: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmt-enc-local-")), "b"),
      OFFSITE_URL: "s3://vault/local",
      BACKUP_ENCRYPT_TO: recipient,
      BACKUP_ENCRYPT_LOCAL: "true",
    };
  });

  it.each([
    ["tar", "false"],
    ["custom", "true"],
  ])(
    "%s format, OFFSITE_STREAM=%s: the file on the disk is an age file, listed while written, and the copy offsite is that very file",
    async (format, stream) => {
      const run = await runCli(["backup", "run", "--format", format], { ...local, OFFSITE_STREAM: stream });
      expect(run.code, run.stderr).toBe(0);
      const id = Number(/backup (\d+) succeeded/.exec(run.stdout)![1]);
      const [b] = await queryOnce<{ local_path: string; sha256: string; bytes: string; stored_sha256: string | null; key: string; encrypted_to: string[] }>(
        db.url,
        `select b.local_path, b.sha256, b.bytes, c.stored_sha256, c.key, c.encrypted_to
       from pmt_jobs.backup b join pmt_jobs.backup_copy c on c.backup_id = b.id where b.id = $1`,
        [id],
      );
      expect(b!.local_path).toMatch(new RegExp(`\\.${format === "tar" ? "tar" : "dump"}\\.age$`));
      const file = fs.readFileSync(b!.local_path);
      expect(fs.statSync(b!.local_path).mode & 0o777).toBe(0o600);
      expect(file.subarray(0, 21).toString()).toBe("age-encryption.org/v1");
      expect(file.includes(MARKER) || file.includes("secret_rows")).toBe(false);
      expect(crypto.createHash("sha256").update(file).digest("hex")).toBe(b!.sha256);
      // The manifest beside it: the plaintext's size and sha256, the file's under encryption, no table names.
      const manifest = JSON.parse(fs.readFileSync(`${b!.local_path}.json`, "utf8"));
      expect(manifest.encryption).toEqual({ format: "age", recipients: [recipient], bytes: Number(b!.bytes), sha256: b!.sha256 });
      expect(JSON.stringify(manifest)).not.toContain("secret_rows");
      const d = new Decrypter();
      d.addIdentity(identity);
      const plain = Buffer.from(await d.decrypt(new Uint8Array(file)));
      expect(crypto.createHash("sha256").update(plain).digest("hex")).toBe(manifest.sha256);
      // Offsite: the same bytes, not encrypted twice.
      expect(b!.key).toMatch(/\.age$/);
      expect(b!.encrypted_to).toEqual([recipient]);
      expect(
        crypto
          .createHash("sha256")
          .update(await bytesOf(b!.key))
          .digest("hex"),
      ).toBe(b!.sha256);
    },
  );

  it("verify, restore and the test restore take the identity; a wrong one is the user's mistake, not corruption", async () => {
    const [{ id }] = (await queryOnce<{ id: number }>(
      db.url,
      "select max(id) as id from pmt_jobs.backup where status = 'succeeded' and local_path like '%.age'",
    )) as [{ id: number }];
    const plainVerify = await runCli(["backup", "verify", String(id)], local);
    expect(plainVerify.code, plainVerify.stderr).toBe(0);
    expect(plainVerify.stdout).toContain("its sha256 only");
    const full = await runCli(["backup", "verify", String(id), "--identity-file", "-"], local, undefined, `${identity}\n`);
    expect(full.code, full.stderr).toBe(0);
    expect(full.stdout).toContain("decrypted and listed");
    const other = path.join(path.dirname(identityFile), "other-local.txt");
    fs.writeFileSync(other, `${await generateX25519Identity()}\n`, { mode: 0o600 });
    const wrong = await runCli(["backup", "verify", String(id), "--identity-file", other], local);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("the identity given is not one of them");
    const [row] = await queryOnce<{ status: string }>(db.url, "select status from pmt_jobs.backup where id = $1", [id]);
    expect(row!.status).toBe("succeeded");

    const into = `${db.name}_local`;
    const none = await runCli(["backup", "restore", String(id), "--into", into], local);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`is encrypted with age to ${recipient}: pass --identity-file`);
    const ok = await runCli(["backup", "restore", String(id), "--into", into, "--identity-file", identityFile], local);
    expect(ok.code, ok.stderr).toBe(0);
    const [n] = await queryOnce<{ n: string }>(db.url.replace(`/${db.name}`, `/${into}`), "select count(*) as n from public.secret_rows");
    expect(Number(n!.n)).toBe(2000);
    await queryOnce(db.url, `drop database ${into} with (force)`);

    const test = await runCli(["backup", "test-restore", "--database", db.name], { ...local, BACKUP_IDENTITY_FILE: identityFile });
    expect(test.code, test.stderr).toBe(0);
    expect(test.stdout).toMatch(/test restore of backup \d+ passed/);
    recordFault({
      scenario: "backup disk stolen (BACKUP_ENCRYPT_LOCAL)",
      fault: "the files of BACKUP_DIR read without the identity",
      outcome:
        "dumps are age files (no row, no table name, in them or their manifests); verify checks their sha256 without the key, restore and the test restore decrypt as pg_restore reads, never to the disk; a wrong key is refused, the backup not marked corrupt",
      lost: 0,
    });
  });

  it("doctor says whether BACKUP_IDENTITY_FILE opens what is written", async () => {
    const good = await runCli(["doctor"], { ...local, BACKUP_IDENTITY_FILE: identityFile });
    expect(good.stdout).toMatch(/OK +encryption +backups and copies encrypted with age to 1 recipient; BACKUP_IDENTITY_FILE opens them/);
    const other = path.join(path.dirname(identityFile), "other-doctor.txt");
    fs.writeFileSync(other, `${await generateX25519Identity()}\n`, { mode: 0o600 });
    const bad = await runCli(["doctor"], { ...local, BACKUP_IDENTITY_FILE: other });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/FAIL +encryption +BACKUP_IDENTITY_FILE holds no identity of BACKUP_ENCRYPT_TO's recipients/);
  });

  it("is refused without recipients, with the directory format, or with a weekly test restore that could not decrypt", async () => {
    const cases: [Record<string, string>, string][] = [
      [{ BACKUP_ENCRYPT_TO: "" }, "BACKUP_ENCRYPT_LOCAL: needs BACKUP_ENCRYPT_TO"],
      [{ BACKUP_FORMAT: "directory" }, "not directory"],
      [{ BACKUP_TEST_RESTORE_CRON: "0 4 * * 0" }, "set BACKUP_IDENTITY_FILE, or BACKUP_TEST_RESTORE_CRON=off"],
    ];
    for (const [extra, message] of cases) {
      const r = await runCli(["backup", "list"], { ...local, ...extra });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(message);
    }
  });
});
