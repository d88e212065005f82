import type { Command } from "commander";
import { migrate } from "../db/migrate.js";
import { withDatabase } from "./context.js";

export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description("apply graphile-worker's and pmt-worker's migrations (idempotent; safe to run from several processes at once)")
    .action(async () => {
      await withDatabase(async ({ pool, logger }) => {
        const { applied, warnings } = await migrate(pool, logger);
        process.stdout.write(applied.length ? `applied: ${applied.join(", ")}\n` : "database is up to date\n");
        for (const w of warnings) process.stderr.write(`warning: ${w.name}: ${w.detail}\n`);
      });
    });
}
