import type { Command } from "commander";
import type { Check } from "../doctor/checks.js";
import { stdoutColours } from "../colour.js";
import { section, statusColour } from "./format.js";

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("check each served database, pg_dump, BACKUP_DIR, SMTP, the offsite store, the drop folder and the clock; exit 1 on any FAIL")
    .option("--database <name>", "only this served database (default: all)")
    .option("--json", "one JSON object per check (with several databases, a database's checks each with its database)")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker doctor                        after installing, and after changing the configuration
  $ pmt-worker doctor --database bmgf
  $ pmt-worker doctor --json | jq 'select(.verdict != "OK")'`,
    )
    .action(async (opts: { json?: boolean; database?: string }) => {
      const [{ loadConfig }, { openDatabases }, { selectInstances }, { commandLogger }] = await Promise.all([
        import("../config.js"),
        import("../db/database.js"),
        import("../db/databases.js"),
        import("./context.js"),
      ]);
      const config = loadConfig();
      // Like every other command: DATABASE_URL (or PMT_DATABASES), or the embedded server, started for the checks if it is not running.
      const databases = await openDatabases(config, commandLogger(config));
      try {
        const instances = selectInstances(databases.instances, opts.database);
        const { runChecks, instanceChecks, machineChecks, formatChecks } = await import("../doctor/checks.js");
        const all: Check[] = [];
        const c = stdoutColours();
        // The verdict at the start of each line, coloured on a terminal.
        const text = (checks: Check[]) => formatChecks(checks).replace(/^(OK|WARN|FAIL)\b/gm, (v) => statusColour(v, c));
        // `heading`: the section (several databases); `database`: what a JSON check is of (none: this machine, or the one database).
        const print = (checks: Check[], heading?: string, database?: string) => {
          all.push(...checks);
          if (opts.json) process.stdout.write(checks.map((c) => JSON.stringify(database ? { database, ...c } : c) + "\n").join(""));
          else process.stdout.write(heading ? section(heading, text(checks), c) : text(checks));
        };
        if (instances.length === 1) {
          print(await runChecks(instances[0]!.config, instances[0]!.url));
        } else {
          // An unreachable database is a FAIL in its own section; the others are still checked.
          for (const instance of instances) print(await instanceChecks(instance.config, instance.url), instance.name, instance.name);
          print(await machineChecks(instances[0]!.config, instances[0]!.url), "this machine");
        }
        if (all.some((c) => c.verdict === "FAIL")) process.exitCode = 1;
      } finally {
        await databases.close();
      }
    });
}
