import type { Command } from "commander";
import { migrate } from "../db/migrate.js";
import { withDatabase } from "./context.js";

export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description("apply graphile-worker's and pmt-worker's migrations (idempotent; safe to run from several processes at once)")
    .action(async () => {
      await withDatabase(async ({ pool, logger }) => {
        const { applied } = await migrate(pool, logger);
        process.stdout.write(applied.length ? `applied: ${applied.join(", ")}\n` : "database is up to date\n");
      });
    });
}
