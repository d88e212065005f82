/**
 * `pmt-worker watch`: job events as they happen (history/watch.ts), printed;
 * survives database restarts. Several served databases are watched at once,
 * each with its own connection and replay: one lost reconnects while the
 * others keep streaming.
 */
import type { Command } from "commander";
import { stdoutColours } from "../colour.js";
import { formatEvent, jsonRow } from "./format.js";

export function registerWatch(program: Command): void {
  program
    .command("watch")
    .description("stream job events live (LISTEN pmt_jobs); survives database restarts")
    .option("--task <name>", "only this task")
    .option("--database <name>", "only this served database (default: all)")
    .option("--json", "one JSON event per line (durations in seconds; with several databases, each with its database)")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker watch
  $ pmt-worker watch --task pmt_jobs.export
  $ pmt-worker watch --json | jq 'select(.status == "failed")'`,
    )
    .action(async (opts: { task?: string; json?: boolean; database?: string }) => {
      const [{ withDatabases }, { streamEvents }] = await Promise.all([import("./context.js"), import("../history/watch.js")]);
      const c = stdoutColours();
      await withDatabases({ database: opts.database, parallel: true }, async ({ url, db, logger, database, several }) => {
        // Several databases: each line says whose it is.
        const who = several ? `${database}: ` : "";
        const stream = await streamEvents({
          url,
          db: await db(),
          logger,
          database,
          onEvent: (event) => {
            if (opts.task && event.task !== opts.task) return;
            if (opts.json) process.stdout.write(JSON.stringify(jsonRow(several ? { database, ...event } : event)) + "\n");
            else process.stdout.write(formatEvent(event, several ? database : undefined, c));
          },
          onLost: () => process.stderr.write(`watch: ${who}connection lost; reconnecting…\n`),
          onReconnected: () => process.stderr.write(`watch: ${who}reconnected\n`),
        });
        process.stderr.write(`watch: ${who}listening for job events${opts.task ? ` of ${opts.task}` : ""} (Ctrl-C to stop)\n`);

        await new Promise<void>((resolve) => {
          const done = () => resolve();
          process.once("SIGINT", done);
          process.once("SIGTERM", done);
        });
        await stream.close();
      });
    });
}
