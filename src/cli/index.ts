/**
 * The `pmt-worker` command line. Start-up is paid by every command, so this
 * module and the register*() files load commander and nothing else: each
 * command imports what it runs inside its action (see docs/performance.md,
 * start-up; test/unit/startup.test.ts checks it).
 */
import { Command, CommanderError } from "commander";
import { UserError, errorMessage } from "../errors.js";
import { redactText } from "../redact.js";
import { VERSION } from "../version.js";
import { registerBackup, registerDatabase } from "./backup.js";
import { registerConfig } from "./config.js";
import { registerOffsite } from "./offsite.js";
import { registerDemo } from "./demo.js";
import { registerDoctor } from "./doctor.js";
import { registerStatus } from "./status.js";
import { registerJobs } from "./jobs.js";
import { registerMigrate } from "./migrate.js";
import { registerRetention } from "./retention.js";
import { registerStart } from "./start.js";
import { registerWatch } from "./watch.js";

/**
 * `envHelp`: the environment table of `start --help` (config.ts's docs, which
 * load the schemas): main() reads it only when the arguments name `start`.
 */
export function buildProgram(envHelp?: string): Command {
  const program = new Command()
    .name("pmt-worker")
    .description("PostgreSQL-native job runner for PMT: exports by email, pg_dump backups, offsite copies")
    .version(VERSION)
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker start                     run the worker (embedded PostgreSQL unless DATABASE_URL is set)
  $ pmt-worker status                    workers, queue, next runs, backups and their totals
  $ pmt-worker jobs --status failed      then: pmt-worker jobs retry <job>
  $ pmt-worker backup list
  $ pmt-worker <command> --help          each command's options and examples

Environment:
  Every setting is an environment variable (or a line of ./.env): DATABASE_URL,
  PMT_DATABASES, BACKUP_DIR, BACKUP_CRON, OFFSITE_URL, SMTP_URL, LOG_LEVEL, ...
  pmt-worker config          the settings in effect, where each came from (secrets masked)
  pmt-worker start --help    every variable, its default and what it means
  NO_COLOR=1 turns colours off; LOG_FORMAT=json|pretty chooses the log lines.`,
    );
  registerStart(program, envHelp);
  registerMigrate(program);
  registerJobs(program);
  registerWatch(program);
  registerBackup(program);
  registerDatabase(program);
  registerOffsite(program);
  registerRetention(program);
  registerDoctor(program);
  registerConfig(program);
  registerStatus(program);
  registerDemo(program);
  return program;
}

/** Runs the CLI. User errors print one clear line (no stack) and exit 1. */
export async function main(argv: string[]): Promise<void> {
  // A reader that goes away (`pmt-worker backup list --json | head`) ends the
  // command quietly, as Unix tools end; any other failure to write the output
  // (a full disk under `> file`) is said on stderr. Unhandled, either would
  // end the process with a stack trace.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") process.stderr.write(`pmt-worker: cannot write the output: ${error.message}\n`);
    process.exit(error.code === "EPIPE" ? (process.exitCode ?? 0) : 1);
  });
  try {
    const envHelp = argv.slice(2).includes("start") ? (await import("../config.js")).describeEnv() : undefined;
    await buildProgram(envHelp).parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander prints its own parse errors and exits; one thrown from an action has not been shown.
      process.stderr.write(`pmt-worker: ${redactText(error.message)}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    const message = redactText(errorMessage(error));
    if (error instanceof UserError) {
      process.stderr.write(`pmt-worker: ${message}\n`);
    } else {
      process.stderr.write(`pmt-worker: unexpected error: ${message}\n`);
      if (process.env.LOG_LEVEL === "debug" || process.env.LOG_LEVEL === "trace") {
        process.stderr.write(`${redactText((error as Error).stack ?? "")}\n`);
      } else {
        process.stderr.write("(set LOG_LEVEL=debug for the stack trace)\n");
      }
    }
    process.exitCode = 1;
  }
}
