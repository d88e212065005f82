import type { Command } from "commander";
import { loadConfig } from "../config.js";
import { openDatabase } from "../db/database.js";
import { commandLogger } from "./context.js";

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("check the database, pg_dump, BACKUP_DIR, SMTP, the offsite store, the drop folder and the clock; exit 1 on any FAIL")
    .option("--json", "one JSON object per check")
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      // Like every other command: DATABASE_URL, or the embedded server, started for the checks if it is not running.
      const database = await openDatabase(config, commandLogger(config));
      try {
        const { runChecks, formatChecks } = await import("../doctor/checks.js");
        const checks = await runChecks(config, database.url);
        process.stdout.write(opts.json ? checks.map((c) => JSON.stringify(c) + "\n").join("") : formatChecks(checks));
        if (checks.some((c) => c.verdict === "FAIL")) process.exitCode = 1;
      } finally {
        await database.close();
      }
    });
}
