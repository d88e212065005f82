import os from "node:os";
import type { Command } from "commander";
import type { JobStatus } from "../db/schema.js";
import { printable, stdoutColours } from "../colour.js";
import { UserError } from "../errors.js";
import type { Retried } from "../history/retry.js";
import { firstLine, formatRuns, jsonRow } from "./format.js";
import { oneOf, positiveInt } from "./options.js";

const STATUSES = ["running", "succeeded", "failed", "abandoned"] as const satisfies readonly JobStatus[];

export function registerJobs(program: Command): void {
  const jobs = program
    .command("jobs")
    .description("show recent job history (pmt_jobs.job_run), newest first; jobs retry <job id> runs a job that failed for good again")
    .option("--task <name>", "only this task")
    .option("--status <status>", `only this status: ${STATUSES.join(", ")}`, oneOf(STATUSES))
    .option("--limit <n>", "how many rows (1-10000)", positiveInt(10_000), 20)
    .option("--database <name>", "only this served database (default: all, merged newest first)")
    .option("--json", "one JSON object per line (durations in seconds; with several databases, each with its database)")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker jobs                                 the last 20 attempts
  $ pmt-worker jobs --status failed --limit 50      failures only
  $ pmt-worker jobs --task pmt_jobs.backup --json   as JSON lines, for jq
  $ pmt-worker jobs retry 1234                      run job 1234 (the job column) again`,
    )
    .action(async (opts: { task?: string; status?: JobStatus; limit: number; json?: boolean; database?: string }) => {
      const [{ withDatabases }, { listRuns }] = await Promise.all([import("./context.js"), import("../history/queries.js")]);
      const filter = { task: opts.task, status: opts.status, limit: opts.limit };
      const perDatabase = await withDatabases({ database: opts.database }, async ({ db, database, several }) =>
        (await listRuns(await db(), filter)).map((r) => (several ? { database, ...r } : r)),
      );
      // Each database's newest `limit`, merged: the newest `limit` of them all.
      const rows = perDatabase
        .flat()
        .sort((a, b) => b.started_at.getTime() - a.started_at.getTime())
        .slice(0, opts.limit);
      process.stdout.write(opts.json ? rows.map((r) => JSON.stringify(jsonRow(r)) + "\n").join("") : formatRuns(rows, stdoutColours()));
    });

  jobs
    .command("retry <job>")
    .description(
      "give a job that failed for good (used all its attempts) one more attempt, now, as the console's Retry does (its payload records who asked); <job> is the job column of pmt-worker jobs (job ids are per database)",
    )
    .option("--database <name>", "the served database the job is in (needed when several are served)")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker jobs --status failed          find the job: its id is in the job column
  $ pmt-worker jobs retry 1234
  $ pmt-worker jobs retry 1234 --database bmgf`,
    )
    .action(async (job: string, opts: { database?: string }, command: Command) => {
      // `jobs` has a --database of its own, which commander gives it wherever it stands on the line.
      const database = opts.database ?? (command.parent?.opts() as { database?: string } | undefined)?.database;
      if (!/^\d{1,18}$/.test(job) || Number(job) < 1) {
        throw new UserError(`${JSON.stringify(job.slice(0, 40))} is not a job id: expected the number in the job column of pmt-worker jobs`);
      }
      const [{ withDatabases }, { retryJob }] = await Promise.all([import("./context.js"), import("../history/retry.js")]);
      await withDatabases({ database, requireOne: "jobs retry" }, async ({ pool }) => {
        process.stdout.write(formatRetried(await retryJob(pool, Number(job), `pmt-worker jobs retry as ${osUser()}`)));
      });
    });
}

/** The operating-system user running the command, for the job's `retriedBy`. */
function osUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? "?"}`;
  }
}

/** What `jobs retry` prints. */
export function formatRetried(r: Retried): string {
  const error = r.lastError ? `; its last error: ${firstLine(r.lastError, 160)}` : "";
  return `job ${r.id} (${printable(r.task)}) queued to run again now as attempt ${r.attempt} of ${r.attempt} (it had used all ${r.attempts})${error}\n`;
}
