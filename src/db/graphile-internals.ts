/**
 * Everything of graphile-worker's that pmt-worker relies on, in one place.
 *
 * Its documented interface (add_job, the `jobs` view, force_unlock_workers)
 * is not all we use: the job history is captured by a trigger on its private
 * table `_private_jobs`, export attempts are fenced on that table's lock
 * columns, and db/resilient.ts tells its statements apart to know which may be
 * sent again after a lost connection. graphile-worker documents that its
 * private tables may change in any minor version, so:
 *
 * - the version we were built for, and its schema's migration level, are
 *   named here, and `migrate` and `start` refuse another (checkGraphileInternals);
 * - every table, column (with its type), function and trigger we use is
 *   listed here and checked against the live database after graphile-worker's
 *   migrations, each refusal in one line naming what differs;
 * - the statements resilient.ts may retry are listed by name, each with why
 *   running it twice does what running it once does; any other is never
 *   retried (classifyStatement).
 *
 * test/db/graphile-internals.test.ts fails when an upgrade changes any of it.
 */
import { createRequire } from "node:module";
import type pg from "pg";
import { UserError } from "../errors.js";
import { VERSION } from "../version.js";

/** The graphile-worker release this list was read from, and the last migration of its schema (graphile_worker.migrations). */
export const GRAPHILE_WORKER = { version: "0.17.3", migration: 19 } as const;

export interface ColumnUse {
  relation: string;
  column: string;
  /** As pg_catalog.format_type prints it. */
  type: string;
}

/** Who reads or writes each relation, and which of its columns. */
const RELATIONS: { relation: string; usedBy: string; columns: Record<string, string> }[] = [
  {
    relation: "graphile_worker._private_jobs",
    usedBy:
      "the history capture trigger (sql/functions/05_history_capture.sql, first in migrations/0002), export fencing (exports/requests.ts), final failures (history/runs.ts), orphaned lock release (db/resilient.ts)",
    columns: {
      id: "bigint",
      task_id: "integer",
      job_queue_id: "integer",
      payload: "json",
      attempts: "smallint",
      max_attempts: "smallint",
      locked_at: "timestamp with time zone",
      locked_by: "text",
    },
  },
  {
    relation: "graphile_worker._private_tasks",
    usedBy: "the history capture trigger (task name)",
    columns: { id: "integer", identifier: "text" },
  },
  {
    relation: "graphile_worker._private_job_queues",
    usedBy: "the history capture trigger (queue name), orphaned lock release (db/resilient.ts)",
    columns: { id: "integer", queue_name: "text", locked_at: "timestamp with time zone", locked_by: "text" },
  },
  {
    relation: "graphile_worker.jobs",
    usedBy: "pmt_jobs.job_status, status, metrics, sql/job_queries.sql",
    columns: {
      id: "bigint",
      task_identifier: "text",
      attempts: "smallint",
      max_attempts: "smallint",
      run_at: "timestamp with time zone",
      locked_at: "timestamp with time zone",
      last_error: "text",
    },
  },
  {
    relation: "graphile_worker.migrations",
    usedBy: "this check and doctor (schema level)",
    columns: { id: "integer" },
  },
];

/** Every column we use, with its type. */
export const RELIED_COLUMNS: readonly ColumnUse[] = RELATIONS.flatMap(({ relation, columns }) =>
  Object.entries(columns).map(([column, type]) => ({ relation, column, type })),
);

/** Functions we call, with their identity arguments as pg_get_function_identity_arguments prints them. */
export const RELIED_FUNCTIONS: readonly { name: string; args: string; usedBy: string }[] = [
  {
    name: "graphile_worker.add_job",
    args: "identifier text, payload json, queue_name text, run_at timestamp with time zone, max_attempts integer, job_key text, priority integer, flags text[], job_key_mode text",
    usedBy: "pmt_jobs.enqueue_export (named arguments max_attempts, job_key), the backup task's offsite upload",
  },
  { name: "graphile_worker.force_unlock_workers", args: "worker_ids text[]", usedBy: "the rescuer (worker/rescuer.ts) releasing a dead worker's jobs" },
  {
    name: "graphile_worker.reschedule_jobs",
    args: "job_ids bigint[], run_at timestamp with time zone, priority integer, attempts integer, max_attempts integer",
    usedBy: "sql/job_queries.sql (retrying a job that used up its attempts)",
  },
];

/**
 * The history capture triggers (statement-level since migrations/0016, their
 * function in sql/functions/05_history_capture.sql): one for the statements
 * that lock and release jobs, one for those that delete finished ones. A
 * graphile-worker migration that rebuilds the table drops them.
 */
export const CAPTURE_TRIGGER = {
  name: "pmt_jobs_capture_attempt",
  completion: "pmt_jobs_capture_completion",
  relation: "graphile_worker._private_jobs",
  function: "pmt_jobs.capture_job_attempt()",
} as const;

export type StatementKind = "listen" | "fetch" | "settle" | "idempotent" | "unknown";

interface KnownStatement {
  /** graphile-worker's prepared-statement name, before its "/<schema>" suffix. */
  name: string;
  /** The statement's text, whitespace collapsed, when sent without a name. */
  text: RegExp;
  kind: Exclude<StatementKind, "listen" | "unknown">;
  /** Why running it a second time (its first reply lost) has the outcome of running it once. Absent: never retried. */
  idempotent?: string;
}

const JOBS = String.raw`\S+\._private_jobs`;
const QUEUES = String.raw`\S+\._private_job_queues`;

/**
 * graphile-worker 0.17.3's statements over the worker's pool (src/sql/*.ts,
 * taskIdentifiers.ts, helpers.ts). A settle statement is retried until the
 * database answers, an idempotent one for a while (resilient.ts); the fetch
 * and anything not listed here are never retried.
 *
 * The settle and return statements touch only rows still locked by this
 * runner (or delete by id): resilient.ts holds this runner's fetches while
 * one of them is being retried, so the job cannot be locked again by this
 * runner between the lost first run and its retry.
 */
export const GRAPHILE_STATEMENTS: readonly KnownStatement[] = [
  {
    name: "get_job",
    text: /set attempts = jobs\.attempts \+ 1/,
    kind: "fetch",
    // Not idempotent: a second run locks another job (attempts + 1); its lost reply is handled by resilient.ts's lock book.
  },
  {
    name: "complete_job",
    text: new RegExp(String.raw`^delete from ${JOBS} as jobs where id = \$1::bigint$`),
    kind: "settle",
    idempotent: "deletes the job by id; a second run finds no row (job ids are never reused), so the job and its history row are settled once",
  },
  {
    name: "complete_jobs",
    text: new RegExp(String.raw`^delete from ${JOBS} as jobs using unnest\(\$1::bigint\[\]\) n\(n\) where id = n$`),
    kind: "settle",
    idempotent: "deletes the jobs by id; a second run finds none of them",
  },
  {
    name: "complete_job_q",
    text: new RegExp(
      String.raw`^with j as \( delete from ${JOBS} as jobs using unnest\(\$1::bigint\[\]\) n\(n\) where id = n returning \* \) update ${QUEUES} as job_queues set locked_by = null, locked_at = null from j where`,
    ),
    kind: "settle",
    idempotent: "deletes the jobs by id and unlocks only the queues of the rows it deleted; a second run deletes nothing, so unlocks nothing",
  },
  {
    name: "fail_job",
    text: new RegExp(
      String.raw`^update ${JOBS} as jobs set last_error = \(el->>'message'\), .* where id = \(el->>'jobId'\)::bigint and locked_by = \$1::text;?$`,
    ),
    kind: "settle",
    idempotent:
      "updates only jobs still locked by this runner and unlocks them; a second run finds them unlocked and changes nothing (run_at is not pushed twice)",
  },
  {
    name: "fail_job_q",
    text: new RegExp(
      String.raw`^with j as \( update ${JOBS} as jobs set last_error = \(el->>'message'\), .* where id = \(el->>'jobId'\)::bigint and locked_by = \$1::text returning \* \) update ${QUEUES}`,
    ),
    kind: "settle",
    idempotent: "as fail_job, and unlocks only the queues of the jobs it updated",
  },
  {
    name: "fail_jobs",
    text: new RegExp(
      String.raw`^with j as \( update ${JOBS} as jobs set last_error = \$2::text, .* where id = any\(\$1::bigint\[\]\) and locked_by = \$3::text returning \* \)`,
    ),
    kind: "settle",
    idempotent: "as fail_job: only jobs still locked by this runner, which it unlocks",
  },
  {
    name: "return_job",
    text: new RegExp(
      String.raw`^update ${JOBS} as jobs set attempts = GREATEST\(0, attempts - 1\), locked_by = null, locked_at = null where id = ANY\(\$2::bigint\[\]\) and locked_by = \$1::text;?$`,
    ),
    kind: "idempotent",
    idempotent: "gives back jobs still locked by this runner (attempts - 1) and unlocks them; a second run finds them unlocked, so attempts drop once",
  },
  {
    name: "return_job_q",
    text: new RegExp(String.raw`^with j as \( update ${JOBS} as jobs set attempts = GREATEST\(0, attempts - 1\), .* and locked_by = \$1::text returning \* \)`),
    kind: "idempotent",
    idempotent: "as return_job, and unlocks only the queues of the jobs it returned",
  },
  {
    name: "clear_stale_locks",
    text: new RegExp(
      String.raw`^with j as \( update ${JOBS} as jobs set locked_at = null, locked_by = null, run_at = greatest\(run_at, (now\(\)|\$1::timestamptz)\) where locked_at < `,
    ),
    kind: "idempotent",
    idempotent: "unlocks locks older than 4 hours; a second run finds those already unlocked",
  },
  {
    name: "get_queue_names",
    text: new RegExp(String.raw`^select id, queue_name from ${QUEUES} as job_queues where id = any\(\$1::int\[\]\);?$`),
    kind: "idempotent",
    idempotent: "reads only",
  },
  {
    name: "register_tasks",
    text: /^insert into \S+\._private_tasks as tasks \(identifier\) select unnest\(\$1::text\[\]\) on conflict do nothing$/,
    kind: "idempotent",
    idempotent: "inserts task names on conflict do nothing: a second run inserts nothing",
  },
  {
    name: "task_ids",
    text: /^select id, identifier from \S+\._private_tasks as tasks where identifier = any\(\$1::text\[\]\)$/,
    kind: "idempotent",
    idempotent: "reads only",
  },
  {
    name: "add_job",
    text: /^select \* from \S+\.add_job\( identifier => \$1::text, .* job_key => \$6::text, .*\);?$/,
    kind: "idempotent",
    // Only with a job key (its sixth value), see classifyStatement.
    idempotent:
      "with a job key only: a second run replaces the queued job of that key with the same values instead of adding one (graphile-worker counts the replacement in its revision and updated_at); " +
      "had a worker locked it meanwhile, the key is queued once more, and our one caller's job (the offsite upload of one backup, to one key) does the same work again, not other work. A job without a key would be added twice",
  },
];

export interface StatementClass {
  kind: StatementKind;
  /** The statement of GRAPHILE_STATEMENTS it is, if any. */
  statement?: string;
}

/**
 * What a statement over the worker's pool is, from pg's query arguments:
 * by graphile-worker's prepared-statement name, else by its text. Only
 * statements listed with a reason to be idempotent come back retryable
 * ("settle" or "idempotent"); an add_job without a job key and anything
 * unknown are "unknown", never retried.
 */
export function classifyStatement(args: unknown[]): StatementClass {
  const first = args[0] as string | { text?: string; name?: string; values?: unknown[] } | undefined;
  const text = typeof first === "string" ? first : (first?.text ?? "");
  const name = typeof first === "string" ? "" : (first?.name ?? "");
  if (/^\s*(un)?listen\b/i.test(text)) return { kind: "listen" };
  const flat = text.replace(/\s+/g, " ").trim();
  const base = name.split("/")[0]!;
  const known = name
    ? GRAPHILE_STATEMENTS.find(
        (s) => s.name === base || (s.name === "get_job" && /^get_job\d*F?N?$/.test(base)) || (s.name === "clear_stale_locks" && base === "clear_stale_locksN"),
      )
    : GRAPHILE_STATEMENTS.find((s) => s.text.test(flat));
  if (!known) return { kind: "unknown" };
  if (known.name === "add_job" && statementValues(args)[5] == null) return { kind: "unknown", statement: known.name };
  return { kind: known.kind, statement: known.name };
}

/** The statement's parameter values, from either form of pg's query(). */
export function statementValues(args: unknown[]): unknown[] {
  const first = args[0] as { values?: unknown[] } | string | undefined;
  return (typeof first === "object" && first?.values) || (Array.isArray(args[1]) ? (args[1] as unknown[]) : []);
}

/** The graphile-worker release under node_modules, as its package.json says. */
export function installedGraphileWorkerVersion(): string {
  const require = createRequire(import.meta.url);
  return (require("graphile-worker/package.json") as { version: string }).version;
}

const builtFor = () => `pmt-worker ${VERSION} was built for graphile-worker ${GRAPHILE_WORKER.version}`;

/** The one line refusing an installed graphile-worker other than ours, or null. */
export function versionProblem(installed: string): string | null {
  if (installed === GRAPHILE_WORKER.version) return null;
  return `graphile-worker ${installed} is installed but ${builtFor()}, whose private tables it reads and writes (job history, export fencing): install the pinned version (npm ci)`;
}

/** What the live graphile_worker schema lacks or has otherwise than RELIED_COLUMNS, RELIED_FUNCTIONS and CAPTURE_TRIGGER say. */
export async function schemaDifferences(client: pg.Pool | pg.PoolClient): Promise<{ migration: number | null; differences: string[] }> {
  const { rows: columns } = await client.query<{ relation: string; column: string; type: string }>(
    `select n.nspname || '.' || c.relname as relation, a.attname as column, pg_catalog.format_type(a.atttypid, a.atttypmod) as type
     from pg_catalog.pg_attribute a
     join pg_catalog.pg_class c on c.oid = a.attrelid
     join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'graphile_worker' and a.attnum > 0 and not a.attisdropped`,
  );
  const { rows: functions } = await client.query<{ name: string; args: string }>(
    `select n.nspname || '.' || p.proname as name, pg_catalog.pg_get_function_identity_arguments(p.oid) as args
     from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'graphile_worker'`,
  );
  const { rows: state } = await client.query<{ ours: boolean; triggers: { name: string; enabled: string | null }[] }>(
    `select to_regprocedure($1) is not null as ours,
            (select json_agg(json_build_object('name', n, 'enabled', t.tgenabled))
             from unnest($3::text[]) n
             left join pg_catalog.pg_trigger t on t.tgrelid = to_regclass($2) and t.tgname = n) as triggers`,
    [CAPTURE_TRIGGER.function, CAPTURE_TRIGGER.relation, [CAPTURE_TRIGGER.name, CAPTURE_TRIGGER.completion]],
  );
  const differences: string[] = [];
  const relations = new Set(columns.map((c) => c.relation));
  for (const relation of new Set(RELIED_COLUMNS.map((c) => c.relation))) {
    if (!relations.has(relation)) differences.push(`it has no ${relation}`);
  }
  for (const want of RELIED_COLUMNS.filter((c) => relations.has(c.relation))) {
    const found = columns.find((c) => c.relation === want.relation && c.column === want.column);
    if (!found) differences.push(`${want.relation} lacks column ${want.column} (${want.type})`);
    else if (found.type !== want.type) differences.push(`${want.relation}.${want.column} is ${found.type}, not ${want.type}`);
  }
  for (const want of RELIED_FUNCTIONS) {
    const found = functions.filter((f) => f.name === want.name);
    if (!found.length) differences.push(`it has no function ${want.name}`);
    else if (!found.some((f) => f.args === want.args)) differences.push(`${want.name} takes (${found.map((f) => f.args).join(" | ")}), not (${want.args})`);
  }
  // Our trigger exists once our migration 0002 ran: a table rebuilt since has lost it.
  const { ours, triggers } = state[0]!;
  for (const { name, enabled } of ours ? triggers : []) {
    if (enabled === null) differences.push(`${CAPTURE_TRIGGER.relation} lacks the job history trigger ${name}`);
    else if (enabled === "D") differences.push(`the job history trigger ${name} is disabled`);
  }
  return { migration: await schemaMigration(client), differences };
}

/** The last migration graphile-worker applied to this database (null: none yet). */
async function schemaMigration(client: pg.Pool | pg.PoolClient): Promise<number | null> {
  // Two statements: one naming a missing table fails whatever its case expression says.
  const { rows } = await client.query<{ exists: boolean }>("select to_regclass('graphile_worker.migrations') is not null as exists");
  if (!rows[0]!.exists) return null;
  return (await client.query<{ id: number | null }>("select max(id) as id from graphile_worker.migrations")).rows[0]!.id;
}

/** The one line refusing a schema at another migration than ours (before graphile-worker's migrations: only a newer one), or null. */
function migrationProblem(migration: number | null, beforeMigrating: boolean): string | null {
  if (migration === GRAPHILE_WORKER.migration || (beforeMigrating && (migration === null || migration < GRAPHILE_WORKER.migration))) return null;
  return (
    `the database's graphile_worker schema is at migration ${migration ?? "none"} but ${builtFor()} (migration ${GRAPHILE_WORKER.migration}): ` +
    (migration !== null && migration > GRAPHILE_WORKER.migration
      ? "a newer graphile-worker has migrated it; run the pmt-worker release that did"
      : "run pmt-worker migrate")
  );
}

/**
 * Refuses, in one line, a graphile-worker or graphile_worker schema other
 * than the one this build relies on: the installed release, the schema's
 * migration level (a newer graphile-worker may have migrated the database),
 * then the tables, columns, functions and trigger listed above.
 */
export async function checkGraphileInternals(client: pg.Pool | pg.PoolClient, installed = installedGraphileWorkerVersion()): Promise<void> {
  const version = versionProblem(installed);
  if (version) throw new UserError(version);
  const { migration, differences } = await schemaDifferences(client);
  const level = migrationProblem(migration, false);
  if (level) throw new UserError(level);
  if (differences.length) {
    const shown = differences.slice(0, 3).join("; ") + (differences.length > 3 ? `; and ${differences.length - 3} more` : "");
    throw new UserError(
      `the database's graphile_worker schema differs from graphile-worker ${GRAPHILE_WORKER.version}'s, which pmt-worker ${VERSION} relies on: ${shown}; it was changed by hand or by another graphile-worker: restore graphile-worker ${GRAPHILE_WORKER.version}'s schema (pmt-worker's tables are not affected)`,
    );
  }
}

/**
 * graphile-worker's own migrations, guarded: refused before them for another
 * installed release or a schema a newer one migrated (graphile-worker would
 * only warn, or apply its own), checked after them.
 */
export async function migrateGraphileWorker(client: pg.Pool, run: () => Promise<void>): Promise<void> {
  const problem = versionProblem(installedGraphileWorkerVersion()) ?? migrationProblem(await schemaMigration(client), true);
  if (problem) throw new UserError(problem);
  await run();
  await checkGraphileInternals(client);
}
