/**
 * graphile-worker's internals that pmt-worker relies on (src/db/graphile-internals.ts):
 * the list matches a schema graphile-worker really migrated, and names all
 * we use; migrate and start refuse in one line a schema that differs; the
 * statements resilient.ts may retry are the ones graphile-worker really
 * sends, each gives the same outcome run twice as once, and no other
 * statement is retried.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { batchCompleteJobs } from "graphile-worker/dist/sql/completeJobs.js";
import { batchFailJobs, failJobs } from "graphile-worker/dist/sql/failJobs.js";
import { batchGetJobs } from "graphile-worker/dist/sql/getJobs.js";
import { getQueueNames } from "graphile-worker/dist/sql/getQueueNames.js";
import { resetLockedAt } from "graphile-worker/dist/sql/resetLockedAt.js";
import { returnJobs } from "graphile-worker/dist/sql/returnJobs.js";
import { makeAddJob } from "graphile-worker/dist/helpers.js";
import {
  CAPTURE_TRIGGER,
  checkGraphileInternals,
  classifyStatement,
  GRAPHILE_STATEMENTS,
  GRAPHILE_WORKER,
  installedGraphileWorkerVersion,
  RELIED_COLUMNS,
  RELIED_FUNCTIONS,
  schemaDifferences,
  versionProblem,
} from "../../src/db/graphile-internals.js";
import { ROOT, runCli } from "../harness/cli.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { recordFault } from "../harness/faults.js";
import { freePort } from "../harness/net.js";

/** graphile-worker's compiled options, as much of them as its statement builders read. */
function options(preparedStatements: boolean): never {
  return {
    escapedWorkerSchema: '"graphile_worker"',
    workerSchema: "graphile_worker",
    resolvedPreset: { worker: { preparedStatements, useNodeTime: false } },
    logger: { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} },
  } as never;
}

type Query = { text: string; name?: string; values?: unknown[] };

/** A withPgClient over a real pool (what graphile-worker's runner passes them). */
function withPool(pool: pg.Pool) {
  const withPgClient = async <T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const client = await pool.connect();
    try {
      return await fn(client);
    } finally {
      client.release();
    }
  };
  return Object.assign(withPgClient, { withRetries: withPgClient }) as never;
}

/** A withPgClient that records each statement (as resilient.ts sees its arguments) and answers from `reply`. */
function recorder(reply: (q: Query) => unknown[] = () => [{}]) {
  const seen: unknown[][] = [];
  const client = {
    query: async (...args: unknown[]) => {
      seen.push(args);
      const q = (typeof args[0] === "string" ? { text: args[0], values: args[1] } : args[0]) as Query;
      return { rows: reply(q) };
    },
  };
  const withPgClient = async <T>(fn: (c: typeof client) => Promise<T>) => fn(client);
  return { seen, withPgClient: Object.assign(withPgClient, { withRetries: withPgClient }) as never };
}

const job = (id: string, queue: number | null = null) => ({ id, job_queue_id: queue }) as never;

/** Every statement graphile-worker 0.17's runner sends through the worker's pool, built by its own code. */
async function graphileStatements(preparedStatements: boolean): Promise<unknown[][]> {
  const o = options(preparedStatements);
  const { seen, withPgClient } = recorder((q) => (/select id, identifier/.test(q.text) ? [{ id: 1, identifier: "t" }] : [{}]));
  await batchGetJobs(o, withPgClient, { t: async () => {} }, "pool", null, 1);
  await batchCompleteJobs(o, withPgClient, "pool", [job("1")]);
  await batchCompleteJobs(o, withPgClient, "pool", [job("1"), job("2")]);
  await batchCompleteJobs(o, withPgClient, "pool", [job("3", 1)]);
  await batchFailJobs(o, withPgClient, "pool", [{ job: job("1"), message: "m", replacementPayload: undefined }]);
  await batchFailJobs(o, withPgClient, "pool", [{ job: job("2", 1), message: "m", replacementPayload: undefined }]);
  await failJobs(o, withPgClient, "pool", [job("1")], "m");
  await returnJobs(o, withPgClient, "pool", [job("1"), job("2", 1)]);
  await resetLockedAt(o, withPgClient);
  await getQueueNames(o, withPgClient, [1]);
  await makeAddJob(o, withPgClient)("t", {}, { jobKey: "k" });
  return seen;
}

describe("the graphile-worker internals pmt-worker relies on", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    const migrated = await runCli(["migrate"], { DATABASE_URL: db.url });
    expect(migrated.code, migrated.stderr).toBe(0);
  });

  it("are those of the installed graphile-worker, the version package.json pins", async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    expect(pkg.dependencies["graphile-worker"]).toBe(GRAPHILE_WORKER.version);
    expect(installedGraphileWorkerVersion()).toBe(GRAPHILE_WORKER.version);
    const { rows } = await db.pool.query<{ id: number }>("select max(id)::int as id from graphile_worker.migrations");
    expect(rows[0]!.id).toBe(GRAPHILE_WORKER.migration);
  });

  it("match the migrated schema: each column with its type, each function with its arguments, the capture trigger", async () => {
    const { rows: columns } = await db.pool.query<{ relation: string; column: string; type: string }>(
      `select table_schema || '.' || table_name as relation, column_name as column, data_type as type
       from information_schema.columns where table_schema = 'graphile_worker'`,
    );
    for (const want of RELIED_COLUMNS) {
      expect(columns.find((c) => c.relation === want.relation && c.column === want.column)?.type, `${want.relation}.${want.column}`).toBe(want.type);
    }
    for (const fn of RELIED_FUNCTIONS) {
      const { rows } = await db.pool.query<{ args: string[] }>(
        `select array_agg(pg_get_function_identity_arguments(p.oid)) as args
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname || '.' || p.proname = $1`,
        [fn.name],
      );
      expect(rows[0]!.args, fn.name).toEqual([fn.args]);
    }
    const { rows: triggers } = await db.pool.query<{ def: string }>(
      "select pg_get_triggerdef(t.oid) as def from pg_trigger t where t.tgrelid = $1::regclass and t.tgname = any($2) order by t.tgname",
      [CAPTURE_TRIGGER.relation, [CAPTURE_TRIGGER.name, CAPTURE_TRIGGER.completion]],
    );
    expect(triggers.map((t) => t.def)).toEqual([
      `CREATE TRIGGER ${CAPTURE_TRIGGER.name} AFTER UPDATE ON ${CAPTURE_TRIGGER.relation} REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION ${CAPTURE_TRIGGER.function}`,
      `CREATE TRIGGER ${CAPTURE_TRIGGER.completion} AFTER DELETE ON ${CAPTURE_TRIGGER.relation} REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION ${CAPTURE_TRIGGER.function}`,
    ]);
    expect(await schemaDifferences(db.pool)).toEqual({ migration: GRAPHILE_WORKER.migration, differences: [] });
  });

  it("name every graphile_worker object our code and SQL use", () => {
    const listed = new Set([...RELIED_COLUMNS.map((c) => c.relation), ...RELIED_FUNCTIONS.map((f) => f.name)]);
    const files = ["src", "migrations", "sql"].flatMap((dir) =>
      fs.readdirSync(path.join(ROOT, dir), { recursive: true, encoding: "utf8" }).map((f) => path.join(dir, f)),
    );
    const used = new Map<string, string>();
    for (const file of files.filter((f) => /\.(ts|sql)$/.test(f) && !f.endsWith("graphile-internals.ts"))) {
      // Code only: comments may name anything.
      const code = fs
        .readFileSync(path.join(ROOT, file), "utf8")
        .replace(/\/\*[\s\S]*?\*\//g, "")
        .replace(file.endsWith(".sql") ? /--.*$/gm : /^\s*\/\/.*$/gm, "");
      for (const m of code.matchAll(/graphile_worker\.(\w+)/g)) used.set(`graphile_worker.${m[1]}`, file);
    }
    expect(used.size).toBeGreaterThan(4);
    expect([...used].filter(([name]) => !listed.has(name))).toEqual([]);
  });

  it("migrate and start refuse a schema that differs, in one line naming the difference", { timeout: 180_000 }, async () => {
    const env = { DATABASE_URL: db.url };
    const refusal = async (alter: string, undo: string, expected: RegExp) => {
      await db.pool.query(alter);
      try {
        const result = await runCli(["migrate"], env);
        expect(result.code, result.stderr).toBe(1);
        expect(result.stderr.trim().split("\n"), result.stderr).toHaveLength(1);
        expect(result.stderr).toMatch(expected);
        return result.stderr;
      } finally {
        await db.pool.query(undo);
      }
    };
    const column = await refusal(
      "alter table graphile_worker._private_jobs rename column locked_by to locked_by_renamed",
      "alter table graphile_worker._private_jobs rename column locked_by_renamed to locked_by",
      /^pmt-worker: the database's graphile_worker schema differs from graphile-worker 0\.17\.3's, which pmt-worker \S+ relies on: graphile_worker\._private_jobs lacks column locked_by \(text\); .*restore graphile-worker 0\.17\.3's schema/,
    );
    expect(column).not.toContain("locked_by_renamed");
    await refusal(
      "alter table graphile_worker.migrations alter column id type bigint",
      "alter table graphile_worker.migrations alter column id type integer",
      /graphile_worker\.migrations\.id is bigint, not integer/,
    );
    await refusal(
      "alter function graphile_worker.force_unlock_workers(text[]) rename to force_unlock_workers_gone",
      "alter function graphile_worker.force_unlock_workers_gone(text[]) rename to force_unlock_workers",
      /it has no function graphile_worker\.force_unlock_workers;/,
    );
    await refusal(
      `alter table ${CAPTURE_TRIGGER.relation} disable trigger ${CAPTURE_TRIGGER.name}`,
      `alter table ${CAPTURE_TRIGGER.relation} enable trigger ${CAPTURE_TRIGGER.name}`,
      /the job history trigger pmt_jobs_capture_attempt is disabled/,
    );
    await refusal(
      `drop trigger ${CAPTURE_TRIGGER.completion} on ${CAPTURE_TRIGGER.relation}`,
      `create trigger ${CAPTURE_TRIGGER.completion} after delete on ${CAPTURE_TRIGGER.relation} referencing old table as old_jobs for each statement execute function ${CAPTURE_TRIGGER.function}`,
      /graphile_worker\._private_jobs lacks the job history trigger pmt_jobs_capture_completion/,
    );
    await refusal(
      "insert into graphile_worker.migrations (id) values (20)",
      "delete from graphile_worker.migrations where id = 20",
      /^pmt-worker: the database's graphile_worker schema is at migration 20 but pmt-worker \S+ was built for graphile-worker 0\.17\.3 \(migration 19\): a newer graphile-worker has migrated it; run the pmt-worker release that did$/m,
    );

    // start migrates first, and refuses the same way.
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-internals-"));
    await db.pool.query(`alter table ${CAPTURE_TRIGGER.relation} rename column attempts to attempts_renamed`);
    try {
      const start = await runCli(["start"], { ...env, PMT_HOME: home, HTTP_PORT: String(await freePort()) });
      expect(start.code, start.stdout + start.stderr).toBe(1);
      expect(start.stderr).toMatch(
        /^pmt-worker: the database's graphile_worker schema differs .*graphile_worker\._private_jobs lacks column attempts \(smallint\)/,
      );
      expect(start.stderr.trim().split("\n")).toHaveLength(1);
    } finally {
      await db.pool.query(`alter table ${CAPTURE_TRIGGER.relation} rename column attempts_renamed to attempts`);
      fs.rmSync(home, { recursive: true, force: true });
    }
    expect((await runCli(["migrate"], env)).code).toBe(0);
    recordFault({
      scenario: "graphile-worker internals",
      fault: "graphile_worker schema changed under pmt-worker: column renamed or retyped, function gone, history trigger off, newer migration",
      outcome: "migrate and start refused in one line naming the difference and what to do; nothing applied; migrate ok once restored",
      lost: 0,
    });
  });

  it("refuse another installed graphile-worker before touching the database, saying what to do", async () => {
    expect(versionProblem(GRAPHILE_WORKER.version)).toBeNull();
    await expect(checkGraphileInternals(db.pool, "0.18.0")).rejects.toThrow(
      /^graphile-worker 0\.18\.0 is installed but pmt-worker \S+ was built for graphile-worker 0\.17\.3, .*: install the pinned version \(npm ci\)$/,
    );
    await expect(checkGraphileInternals(db.pool)).resolves.toBeUndefined();
  });
});

describe("the statements the worker's pool may send again after a lost connection", () => {
  it.each([true, false])("are each of graphile-worker's statements, known by name or text (prepared statements: %s)", async (prepared) => {
    const seen = await graphileStatements(prepared);
    const classes = seen.map((args) => classifyStatement(args));
    expect(classes.map((c) => c.statement)).toEqual([
      "register_tasks",
      "task_ids",
      "get_job",
      "complete_job",
      "complete_jobs",
      "complete_job_q",
      "fail_job",
      "fail_job_q",
      "fail_jobs",
      "return_job_q",
      "return_job",
      "clear_stale_locks",
      "get_queue_names",
      "add_job",
    ]);
    expect(classes.map((c) => c.kind)).toEqual([
      ...["idempotent", "idempotent", "fetch"],
      ...["settle", "settle", "settle", "settle", "settle", "settle"],
      ...["idempotent", "idempotent", "idempotent", "idempotent", "idempotent"],
    ]);
    // Each listed statement was seen, and each one retried says why it may be.
    expect(new Set(classes.map((c) => c.statement))).toEqual(new Set(GRAPHILE_STATEMENTS.map((s) => s.name)));
    for (const s of GRAPHILE_STATEMENTS) expect(Boolean(s.idempotent), s.name).toBe(s.kind !== "fetch");
  });

  it("never include an add_job without a job key, LISTEN, or anything else", async () => {
    const { seen, withPgClient } = recorder();
    await makeAddJob(options(true), withPgClient)("t", {});
    expect(classifyStatement(seen[0]!)).toEqual({ kind: "unknown", statement: "add_job" });
    expect(classifyStatement(['LISTEN "jobs:insert"; LISTEN "worker:migrate";']).kind).toBe("listen");
    for (const args of [
      ["select 1"],
      ["insert into pmt_jobs.export_request (format) values ($1)", ["csv"]],
      [{ text: "delete from graphile_worker._private_jobs where id = $1", values: [1] }],
      [{ name: "complete_job_v2/graphile_worker", text: "delete from graphile_worker._private_jobs where id = $1", values: [1] }],
      [
        {
          name: "pmt_jobs.record_final_failure",
          text: "with job as (update graphile_worker._private_jobs set max_attempts = attempts where id = $1) select 1",
        },
      ],
    ]) {
      expect(classifyStatement(args).kind, JSON.stringify(args)).toBe("unknown");
    }
  });
});

describe("each statement retried, run twice on a real database", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    expect((await runCli(["migrate"], { DATABASE_URL: db.url })).code).toBe(0);
  });
  afterAll(async () => {});

  /** graphile-worker's tables and our history, as a value to compare. */
  const state = async (ignore: string[] = []) => {
    const q = async (sql: string) =>
      JSON.stringify(
        (await db.pool.query(sql)).rows.map((r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).filter(([k]) => !ignore.includes(k)))),
      );
    return [
      await q("select * from graphile_worker._private_jobs order by id"),
      await q("select * from graphile_worker._private_job_queues order by id"),
      await q("select * from pmt_jobs.job_run order by id"),
    ].join("\n");
  };

  /** Two jobs, one in a queue, locked by `pool` through graphile-worker's own fetch. */
  const lockedJobs = async (pool: string) => {
    await db.pool.query("delete from graphile_worker._private_jobs");
    await db.pool.query("update graphile_worker._private_job_queues set locked_by = null, locked_at = null");
    const { rows } = await db.pool.query<{ id: string; job_queue_id: number | null }>(
      `select id, job_queue_id from graphile_worker.add_job('pmt_jobs.noop', max_attempts => 5)
       union all select id, job_queue_id from graphile_worker.add_job('pmt_jobs.noop', queue_name => 'q', max_attempts => 5)`,
    );
    const fetched = await batchGetJobs(options(true), withPool(db.pool), { "pmt_jobs.noop": async () => {} }, pool, null, 2);
    expect(fetched.map((j) => j.id).sort()).toEqual(rows.map((r) => r.id).sort());
    return rows.map((r) => ({ id: r.id, job_queue_id: r.job_queue_id }) as never);
  };

  const runTwice = async (run: () => Promise<unknown>, ignore: string[] = []) => {
    await run();
    const once = await state(ignore);
    await run();
    expect(await state(ignore)).toBe(once);
    return once;
  };

  it("complete_job, complete_jobs, complete_job_q: the jobs deleted once, their history succeeded once", async () => {
    const [plain, queued] = await lockedJobs("pool-a");
    const o = options(true);
    const once = await runTwice(async () => {
      await batchCompleteJobs(o, withPool(db.pool), "pool-a", [plain!]);
      await batchCompleteJobs(o, withPool(db.pool), "pool-a", [queued!]);
    });
    expect(once.split("\n")[0]).toBe("[]");
    expect((await db.pool.query("select status from pmt_jobs.job_run")).rows).toEqual([{ status: "succeeded" }, { status: "succeeded" }]);
    const two = await lockedJobs("pool-a");
    await runTwice(() =>
      batchCompleteJobs(
        o,
        withPool(db.pool),
        "pool-a",
        two.map((j) => ({ ...(j as object), job_queue_id: null }) as never),
      ),
    );
  });

  it("fail_job, fail_job_q, fail_jobs: the jobs released once, run_at pushed once", async () => {
    const o = options(true);
    const jobs = await lockedJobs("pool-b");
    const before = (await db.pool.query("select run_at from graphile_worker._private_jobs order by id")).rows;
    const once = await runTwice(() =>
      batchFailJobs(
        o,
        withPool(db.pool),
        "pool-b",
        jobs.map((j) => ({ job: j, message: "boom", replacementPayload: undefined })),
      ),
    );
    expect(once).toMatch(/"last_error":"boom"/);
    expect(once).not.toMatch(/"locked_by":"pool-b"/);
    expect((await db.pool.query("select run_at from graphile_worker._private_jobs order by id")).rows).not.toEqual(before);
    const again = await lockedJobs("pool-b");
    await runTwice(() => failJobs(o, withPool(db.pool), "pool-b", again, "gone"));
  });

  it("return_job, return_job_q, clear_stale_locks, add_job with a job key: the same rows after the second run", async () => {
    const o = options(true);
    const jobs = await lockedJobs("pool-c");
    const returned = await runTwice(() => returnJobs(o, withPool(db.pool), "pool-c", jobs));
    expect(returned).toMatch(/"attempts":0/);
    await lockedJobs("pool-c");
    await db.pool.query("update graphile_worker._private_jobs set locked_at = now() - interval '5 hours'");
    await runTwice(() => resetLockedAt(o, withPool(db.pool)));
    expect((await db.pool.query("select count(*)::int as n from graphile_worker._private_jobs where locked_at is null")).rows[0].n).toBe(2);
    await db.pool.query("delete from graphile_worker._private_jobs");
    const at = new Date(Date.now() + 3_600_000);
    await runTwice(() => makeAddJob(o, withPool(db.pool))("pmt_jobs.noop", { a: 1 }, { jobKey: "k", runAt: at }), ["revision", "updated_at"]);
    expect((await db.pool.query("select count(*)::int as n from graphile_worker._private_jobs")).rows[0].n).toBe(1);
  });
});
