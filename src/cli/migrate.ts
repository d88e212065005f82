import type { Command } from "commander";
import { migrate } from "../db/migrate.js";
import { applyExportLimits } from "../exports/limits.js";
import { withDatabase } from "./context.js";

export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description("apply graphile-worker's and pmt-worker's migrations (idempotent; safe to run from several processes at once)")
    .action(async () => {
      await withDatabase(async ({ config, pool, logger }) => {
        const { applied, warnings } = await migrate(pool, logger);
        await applyExportLimits(pool, config.exportLimits, logger);
        process.stdout.write(applied.length ? `applied: ${applied.join(", ")}\n` : "database is up to date\n");
        for (const w of warnings) process.stderr.write(`warning: ${w.name}: ${w.detail}\n`);
      });
    });
}
