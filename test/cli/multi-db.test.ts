/**
 * The CLI over several served databases (PMT_DATABASES): three databases on
 * the test server, each with its own queue, history and backup catalog.
 * Every command covers them all (or one with --database); one that cannot be
 * reached is named on stderr, the others are still shown, and the exit code is 1.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ChildHandle, runCli } from "../harness/cli.js";
import { createTestDatabase, queryOnce, type TestDatabase } from "../harness/db.js";
import { freePort } from "../harness/net.js";

let dbs: TestDatabase[];
let names: string[];
let env: Record<string, string>;
/** The third database's name at a port nobody listens on: a served database that is down. */
let downEnv: Record<string, string>;
let watch: ChildHandle | undefined;

beforeAll(async () => {
  dbs = [await createTestDatabase(), await createTestDatabase(), await createTestDatabase()];
  names = dbs.map((d) => d.name);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-multi-cli-"));
  // DATABASE_URL says the server; PMT_DATABASES which databases on it are served.
  env = { DATABASE_URL: dbs[0]!.url, PMT_DATABASES: names.join(","), PMT_HOME: home, BACKUP_DIR: path.join(home, "b") };
  const closed = new URL(dbs[2]!.url);
  closed.port = String(await freePort());
  downEnv = { ...env, PMT_DATABASES: `${names[0]},${names[1]},${closed.toString()}` };
}, 60_000);

afterAll(() => {
  watch?.kill("SIGKILL");
});

function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

/** A history row, as a worker of that database would write it. */
async function insertRun(db: TestDatabase, task: string): Promise<void> {
  await db.pool.query("insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, worker_id) values (1, $1, 1, 1, 'pool-test')", [task]);
}

describe("pmt-worker over several databases", () => {
  it("migrates every served database, each reported", async () => {
    const result = await runCli(["migrate"], env);
    expect(result.code, result.stderr).toBe(0);
    for (const name of names) expect(result.stdout).toMatch(new RegExp(`^${name}: applied: `, "m"));
    for (const db of dbs) {
      expect(await db.pool.query("select 1 from pmt_jobs.migration limit 1")).toMatchObject({ rowCount: 1 });
      expect(await db.pool.query("select 1 from graphile_worker.migrations limit 1")).toMatchObject({ rowCount: 1 });
    }
    const again = await runCli(["migrate", "--database", names[1]!], env);
    expect(again).toMatchObject({ code: 0, stdout: "database is up to date\n" });
  });

  it("shows one status section per database, and a JSON array of them", async () => {
    // A job in each queue, a different task in each, so each section can be told apart.
    for (const [i, db] of dbs.entries()) await db.pool.query("select graphile_worker.add_job($1, '{}'::json)", [`noop.${i}`]);

    const text = await runCli(["status"], env);
    expect(text.code, text.stderr).toBe(0);
    const sections = text.stdout.split(/^== (\S+) ==$/m).slice(1);
    expect(sections.filter((_, i) => i % 2 === 0)).toEqual(names);
    for (const [i] of names.entries()) {
      const body = sections[2 * i + 1]!;
      expect(body).toMatch(new RegExp(`^noop\\.${i}\\s+1\\s+0\\s+0\\s+0$`, "m"));
      expect(body).not.toMatch(new RegExp(`noop\\.(?!${i})`));
    }

    const json = await runCli(["status", "--json"], env);
    const all = JSON.parse(json.stdout) as { database: string; queue: { task: string; ready: number }[] }[];
    expect(all.map((s) => s.database)).toEqual(names);
    all.forEach((s, i) => expect(s.queue).toEqual([expect.objectContaining({ task: `noop.${i}`, ready: 1 })]));

    // One database: the object status has always printed, without a database key.
    const one = JSON.parse((await runCli(["status", "--json", "--database", names[2]!], env)).stdout);
    expect(one).not.toHaveProperty("database");
    expect(one.queue).toEqual([expect.objectContaining({ task: "noop.2", ready: 1 })]);
  });

  it("merges every database's history newest first, with a database column; --database narrows", async () => {
    for (const [i, db] of dbs.entries()) await insertRun(db, `history.${i}`);
    const all = await runCli(["jobs", "--json"], env);
    expect(all.code, all.stderr).toBe(0);
    const rows = jsonLines(all.stdout) as { database: string; task: string; started_at: string }[];
    expect(rows.map((r) => [r.database, r.task]).sort()).toEqual(names.map((n, i) => [n, `history.${i}`]).sort());
    const times = rows.map((r) => Date.parse(r.started_at));
    expect(times).toEqual([...times].sort((a, b) => b - a));

    const text = await runCli(["jobs"], env);
    expect(text.stdout.split("\n")[0]).toMatch(/^database\s+id\s+job\s+task\s/);
    for (const [i, name] of names.entries()) expect(text.stdout).toMatch(new RegExp(`^${name}\\s+\\d+\\s+1\\s+history\\.${i}\\s`, "m"));

    const one = await runCli(["jobs", "--json", "--database", names[1]!], env);
    expect(jsonLines(one.stdout)).toEqual([expect.objectContaining({ task: "history.1" })]);
    expect(jsonLines(one.stdout)[0]).not.toHaveProperty("database");
  });

  it("checks each database in its own section and the machine once", async () => {
    const text = await runCli(["doctor"], env);
    expect(text.code, text.stdout + text.stderr).toBe(0);
    expect([...text.stdout.matchAll(/^== (.+) ==$/gm)].map((m) => m[1])).toEqual([...names, "this machine"]);
    expect(text.stdout.match(/^OK\s+database\s+reachable/gm)).toHaveLength(3);
    expect(text.stdout.match(/^\S+\s+backup space\s/gm)).toHaveLength(1);

    const checks = jsonLines((await runCli(["doctor", "--json"], env)).stdout) as { database?: string; name: string; verdict: string }[];
    for (const name of names) {
      expect(checks.filter((c) => c.database === name).map((c) => `${c.name} ${c.verdict}`)).toEqual(
        expect.arrayContaining(["database OK", "migrations OK", `pg_dump ${name} OK`, `restore ${name} OK`]),
      );
    }
    expect(checks.filter((c) => c.database === undefined).map((c) => c.name)).toEqual(
      expect.arrayContaining(["backup range", "backup space", "smtp", "offsite"]),
    );
  });

  it("backs up each database into its own catalog, lists them all, and restores by id only with --database", async () => {
    const run = await runCli(["backup", "run"], env);
    expect(run.code, run.stderr).toBe(0);
    for (const name of names) expect(run.stdout).toMatch(new RegExp(`^${name}: backup \\d+ succeeded`, "m"));
    for (const [i, db] of dbs.entries()) {
      const { rows } = await db.pool.query("select database, status from pmt_jobs.backup");
      expect(rows).toEqual([{ database: names[i], status: "succeeded" }]);
    }

    const list = jsonLines((await runCli(["backup", "list", "--json"], env)).stdout) as { id: number; database: string }[];
    expect(list.map((r) => r.database).sort()).toEqual([...names].sort());
    const text = await runCli(["backup", "list"], env);
    for (const name of names) expect(text.stdout).toMatch(new RegExp(`^\\d+\\s+${name}\\s+\\S+\\s+succeeded`, "m"));

    // Ids are per catalog (all three are 1 here): which one is meant must be said.
    const id = String(list.find((r) => r.database === names[1])!.id);
    const ambiguous = await runCli(["backup", "restore", id, "--into", `${names[1]}_r`], env);
    expect(ambiguous).toMatchObject({ code: 1, stdout: "" });
    expect(ambiguous.stderr).toBe(
      `pmt-worker: backup restore: this worker serves several databases (${names.join(", ")}), each with its own catalog and ids: say which with --database <name>\n`,
    );
    expect((await runCli(["backup", "verify", id], env)).stderr).toContain("backup verify: this worker serves several databases");

    expect(await runCli(["backup", "verify", id, "--database", names[1]!], env)).toMatchObject({
      code: 0,
      stdout: expect.stringContaining(`backup ${id} verified`),
    });
    const restore = await runCli(["backup", "restore", id, "--database", names[1]!, "--into", `${names[1]}_r`], env);
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stdout).toMatch(new RegExp(`^restored backup ${id} into ${names[1]}_r: `));
    await dbs[0]!.pool.query(`drop database ${names[1]}_r with (force)`);
  });

  it("copies each catalog's backups offsite, none taking another catalog's copies for unknown objects", async () => {
    // One store and one server folder for the three: each database has its own folder under it.
    const store = { ...env, OFFSITE_URL: `file://${fs.mkdtempSync(path.join(os.tmpdir(), "pmt-multi-offsite-"))}`, OFFSITE_SERVER_ID: "db-1" };
    const sync = await runCli(["offsite", "sync"], store);
    expect(sync.code, sync.stderr).toBe(0);
    for (const name of names) {
      expect(sync.stdout).toMatch(new RegExp(`^${name}: proven from the store's listing 0, lost or changed 0, uploaded 1, pruned 0, unknown objects 0$`, "m"));
    }
    expect(sync.stdout).not.toContain("not in the catalog");
    const again = await runCli(["offsite", "sync", "--database", names[2]!], store);
    expect(again).toMatchObject({ code: 0, stdout: "proven from the store's listing 1, lost or changed 0, uploaded 0, pruned 0, unknown objects 0\n" });

    const list = jsonLines((await runCli(["offsite", "list", "--json"], store)).stdout) as { key: string; database: string }[];
    expect(list.map((e) => e.database).sort()).toEqual([...names].sort());
    for (const e of list) expect(e.key).toMatch(new RegExp(`^pmt/db-1/${e.database}/|db-1/${e.database}/`));
  });

  it("shows the others when one database is down, names it on stderr and exits 1", async () => {
    const text = await runCli(["status"], downEnv);
    expect(text.code).toBe(1);
    expect([...text.stdout.matchAll(/^== (\S+) ==$/gm)].map((m) => m[1])).toEqual(names.slice(0, 2));
    expect(text.stderr).toMatch(new RegExp(`^pmt-worker: ${names[2]}: .*(connect|ECONNREFUSED)`, "m"));
    const password = decodeURIComponent(new URL(dbs[2]!.url).password);
    if (password) expect(text.stderr).not.toContain(password);

    const json = await runCli(["status", "--json"], downEnv);
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as { database: string }[]).map((s) => s.database)).toEqual(names.slice(0, 2));

    const jobs = await runCli(["jobs", "--json"], downEnv);
    expect(jobs.code).toBe(1);
    expect(new Set(jsonLines(jobs.stdout).map((r) => r.database))).toEqual(new Set(names.slice(0, 2)));

    // doctor: a FAIL in the down database's own section; the others are still checked.
    const doctor = jsonLines((await runCli(["doctor", "--json"], downEnv)).stdout) as { database?: string; name: string; verdict: string }[];
    expect(doctor.find((c) => c.database === names[2] && c.name === "database")?.verdict).toBe("FAIL");
    expect(doctor.filter((c) => c.name === "database" && c.verdict === "OK").map((c) => c.database)).toEqual(names.slice(0, 2));
  });

  it("watches every database at once; one whose connection is lost reconnects while the others stream", async () => {
    watch = ChildHandle.spawn(BIN, ["watch", "--json"], downEnv);
    for (const name of names.slice(0, 2)) await watch.waitForOutput(new RegExp(`watch: ${name}: listening for job events`), 60_000);
    await watch.waitForOutput(new RegExp(`pmt-worker: ${names[2]}: `));
    await insertRun(dbs[0]!, "watched.0");
    await insertRun(dbs[1]!, "watched.1");
    await watch.waitForOutput(/"task":"watched\.0"/);
    await watch.waitForOutput(/"task":"watched\.1"/);

    // The second database drops every session but the harness's: watch's LISTEN connection among them.
    await queryOnce(
      dbs[1]!.url,
      "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and application_name <> 'pmt-worker test'",
    );
    await watch.waitForOutput(new RegExp(`watch: ${names[1]}: reconnected`), 60_000);
    await insertRun(dbs[1]!, "after.1");
    await insertRun(dbs[0]!, "after.0");
    await watch.waitForOutput(/"task":"after\.1"/);
    await watch.waitForOutput(/"task":"after\.0"/);

    const events = jsonLines(watch.stdout) as { database: string; task: string }[];
    expect(
      events
        .filter((e) => e.task.startsWith("watched.") || e.task.startsWith("after."))
        .map((e) => `${e.database} ${e.task}`)
        .sort(),
    ).toEqual([`${names[0]} after.0`, `${names[0]} watched.0`, `${names[1]} after.1`, `${names[1]} watched.1`].sort());
    expect(watch.stderr).not.toMatch(new RegExp(`${names[0]}: connection lost`));
    watch.kill("SIGINT");
    // The down database made it exit 1; it stopped at the signal rather than dying.
    expect(await watch.exited).toEqual({ code: 1, signal: null });
  });

  it("says clearly what is wrong with --database and PMT_DATABASES", async () => {
    const nope = await runCli(["status", "--database", "nope"], env);
    expect(nope).toMatchObject({ code: 1, stdout: "" });
    expect(nope.stderr).toBe(`pmt-worker: --database "nope": not a database this worker serves or backs up (${names.join(", ")})\n`);

    const bad = await runCli(["status"], { ...env, PMT_DATABASES: `${names[0]},bad name!` });
    expect(bad).toMatchObject({ code: 1, stdout: "" });
    expect(bad.stderr).toContain('PMT_DATABASES: "bad name!" is neither a database name (letters, digits, _ $ -) nor a postgres:// URL');

    const { DATABASE_URL: _, ...noServer } = env;
    const names_only = await runCli(["status"], noServer);
    expect(names_only).toMatchObject({ code: 1, stdout: "" });
    expect(names_only.stderr).toBe(
      `pmt-worker: PMT_DATABASES: ${JSON.stringify(names[0])} is a database name, which needs DATABASE_URL to say the server; set DATABASE_URL or give full postgres:// URLs\n`,
    );
  });
});
