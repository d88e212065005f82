import type { Command } from "commander";
import type { JobStatus } from "../db/schema.js";
import { formatRuns } from "./format.js";
import { oneOf, positiveInt } from "./options.js";

const STATUSES = ["running", "succeeded", "failed", "abandoned"] as const satisfies readonly JobStatus[];

export function registerJobs(program: Command): void {
  program
    .command("jobs")
    .description("show recent job history (pmt_jobs.job_run), newest first")
    .option("--task <name>", "only this task")
    .option("--status <status>", `only this status: ${STATUSES.join(", ")}`, oneOf(STATUSES))
    .option("--limit <n>", "how many rows (1-10000)", positiveInt(10_000), 20)
    .option("--database <name>", "only this served database (default: all, merged newest first)")
    .option("--json", "one JSON object per line (with several databases, each with its database)")
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
      process.stdout.write(opts.json ? rows.map((r) => JSON.stringify(r) + "\n").join("") : formatRuns(rows));
    });
}
