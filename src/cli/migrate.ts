import type { Command } from "commander";

export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description("apply graphile-worker's and pmt-worker's migrations to every served database (idempotent; safe to run from several processes at once)")
    .option("--database <name>", "only this served database (default: all)")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker migrate                  before the first start, and after each upgrade
  $ DATABASE_URL=postgres://pmt@db/pmt pmt-worker migrate`,
    )
    .action(async (opts: { database?: string }) => {
      const [{ withDatabases }, { migrate }, { applyExportLimits }] = await Promise.all([
        import("./context.js"),
        import("../db/migrate.js"),
        import("../exports/limits.js"),
      ]);
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
