import type { Command } from "commander";
import { loadConfig } from "../config.js";
import { UserError } from "../errors.js";
import { readEmbeddedConnection, embeddedUrl } from "../db/embedded.js";

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("check the database, pg_dump, BACKUP_DIR, SMTP, the offsite store, the drop folder and the clock; exit 1 on any FAIL")
    .option("--json", "one JSON object per check")
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      // Doctor never starts the embedded server: it reports what is there.
      const conn = config.databaseUrl ? undefined : readEmbeddedConnection(config.pmtHome);
      const url = config.databaseUrl ?? (conn ? embeddedUrl(conn) : undefined);
      if (!url) throw new UserError("no DATABASE_URL and no embedded PostgreSQL under PMT_HOME: set DATABASE_URL or run pmt-worker start once");
      const { runChecks, formatChecks } = await import("../doctor/checks.js");
      const checks = await runChecks(config, url);
      process.stdout.write(opts.json ? checks.map((c) => JSON.stringify(c) + "\n").join("") : formatChecks(checks));
      if (checks.some((c) => c.verdict === "FAIL")) process.exitCode = 1;
    });
}
