import { Command, CommanderError } from "commander";
import { UserError, errorMessage } from "../errors.js";
import { redactText } from "../redact.js";
import { VERSION } from "../version.js";
import { registerBackup, registerDatabase } from "./backup.js";
import { registerOffsite } from "./offsite.js";
import { registerDemo } from "./demo.js";
import { registerDoctor } from "./doctor.js";
import { registerStatus } from "./status.js";
import { registerJobs } from "./jobs.js";
import { registerMigrate } from "./migrate.js";
import { registerRetention } from "./retention.js";
import { registerStart } from "./start.js";
import { registerWatch } from "./watch.js";

export function buildProgram(): Command {
  const program = new Command()
    .name("pmt-worker")
    .description("PostgreSQL-native job runner for PMT: exports by email, pg_dump backups, offsite copies")
    .version(VERSION)
    .showHelpAfterError("(run with --help for usage)");
  registerStart(program);
  registerMigrate(program);
  registerJobs(program);
  registerWatch(program);
  registerBackup(program);
  registerDatabase(program);
  registerOffsite(program);
  registerRetention(program);
  registerDoctor(program);
  registerStatus(program);
  registerDemo(program);
  return program;
}

/** Runs the CLI. User errors print one clear line (no stack) and exit 1. */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
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
