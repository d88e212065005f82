import type { Command } from "commander";
import type { JobStatus } from "../db/schema.js";
import { listRuns } from "../history/queries.js";
import { withDatabase } from "./context.js";
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
    .option("--json", "one JSON object per line")
    .action(async (opts: { task?: string; status?: JobStatus; limit: number; json?: boolean }) => {
      await withDatabase(async ({ db }) => {
        const rows = await listRuns(db, { task: opts.task, status: opts.status, limit: opts.limit });
        process.stdout.write(opts.json ? rows.map((r) => JSON.stringify(r) + "\n").join("") : formatRuns(rows));
      });
    });
}
