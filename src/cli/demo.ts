import type { Command } from "commander";
import { UserError } from "../errors.js";
import { positiveInt } from "./options.js";

export function registerDemo(program: Command): void {
  const demo = program
    .command("demo")
    .description("PMT sample data for trying pmt-worker out")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker demo seed --activities 5000`,
    );
  demo
    .command("seed")
    .description("create PMT 2.0's sample tables (if missing) and fill them with deterministic synthetic data")
    .option("--activities <n>", "how many activities (ten per project)", positiveInt(10_000_000), 1000)
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker demo seed                         1000 activities into the embedded database
  $ DATABASE_URL=postgres://pmt@localhost/pmt_demo pmt-worker demo seed --activities 100000`,
    )
    .action(async (opts: { activities: number }) => {
      const [{ withDatabase }, { migrate }, { seedDemo }] = await Promise.all([
        import("./context.js"),
        import("../db/migrate.js"),
        import("../exports/demo.js"),
      ]);
      await withDatabase(async ({ pool, logger }) => {
        await migrate(pool, logger);
        try {
          await seedDemo(pool, opts.activities);
        } catch (error) {
          if ((error as { code?: string }).code === "55000") {
            throw new UserError("the PMT tables already hold data: seed an empty database (demo data never overwrites real data)");
          }
          throw error;
        }
        process.stdout.write(`seeded ${opts.activities} activities in ${Math.ceil(opts.activities / 10)} projects\n`);
      });
    });
}
