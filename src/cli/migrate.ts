import type { Command } from "commander";
import { migrate } from "../db/migrate.js";
import { applyExportLimits } from "../exports/limits.js";
import { withDatabases } from "./context.js";

export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description("apply graphile-worker's and pmt-worker's migrations to every served database (idempotent; safe to run from several processes at once)")
    .option("--database <name>", "only this served database (default: all)")
    .action(async (opts: { database?: string }) => {
      await withDatabases({ database: opts.database }, async ({ config, pool, logger, database, several }) => {
        const { applied, warnings } = await migrate(pool, logger);
        await applyExportLimits(pool, config.exportLimits, logger);
        // Several databases: each line says which one it is about.
        const who = several ? `${database}: ` : "";
        process.stdout.write(applied.length ? `${who}applied: ${applied.join(", ")}\n` : `${who}database is up to date\n`);
        for (const w of warnings) process.stderr.write(`warning: ${who}${w.name}: ${w.detail}\n`);
      });
    });
}
