/**
 * `pmt-worker watch`: job events as they happen, from NOTIFY pmt_jobs through
 * pg-listen (which reconnects for ever: retryTimeout Infinity). After every
 * reconnect the events missed while disconnected are re-read from job_run.
 * A NOTIFY payload carries an error's class only (any role may LISTEN); the
 * full error is read from job_run by id, as this session's role may.
 * Several served databases are watched at once, each with its own connection
 * and replay: one lost reconnects while the others keep streaming.
 */
import type { Command } from "commander";
import pgListen from "pg-listen";
import { clientConfig } from "../db/pool.js";
import { errorMessage } from "../errors.js";
import { eventsSince, runError, type JobEvent } from "../history/queries.js";
import { withDatabases } from "./context.js";
import { formatEvent } from "./format.js";

/** Re-read from a little before the last event seen: commit order and updated_at order may differ slightly. */
const REPLAY_MARGIN_US = 5_000_000;
const SEEN_LIMIT = 20_000;

export function registerWatch(program: Command): void {
  program
    .command("watch")
    .description("stream job events live (LISTEN pmt_jobs); survives database restarts")
    .option("--task <name>", "only this task")
    .option("--database <name>", "only this served database (default: all)")
    .option("--json", "one JSON event per line (with several databases, each with its database)")
    .action(async (opts: { task?: string; json?: boolean; database?: string }) => {
      await withDatabases({ database: opts.database, parallel: true }, async ({ url, db, logger, database, several }) => {
        // Several databases: each line says whose it is.
        const who = several ? `${database}: ` : "";
        const seen = new Set<string>();
        let lastSeq = Date.now() * 1000;
        const emit = (event: JobEvent) => {
          const key = `${event.id}:${event.seq}:${event.status}`;
          if (seen.has(key)) return;
          seen.add(key);
          if (seen.size > SEEN_LIMIT) seen.delete(seen.values().next().value!);
          lastSeq = Math.max(lastSeq, event.seq);
          if (opts.task && event.task !== opts.task) return;
          if (opts.json) process.stdout.write(JSON.stringify(several ? { database, ...event } : event) + "\n");
          else process.stdout.write(formatEvent(event, several ? database : undefined));
        };

        const replay = async () => {
          for (let attempt = 0; ; attempt++) {
            try {
              for (const event of await eventsSince(db, lastSeq - REPLAY_MARGIN_US)) emit(event);
              return;
            } catch (error) {
              if (attempt === 0) logger.warn({ database, err: errorMessage(error) }, "re-reading missed events failed; retrying");
              await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
            }
          }
        };

        // pg-listen is CommonJS with `exports.default`: from ESM the function is `.default`.
        const subscriber = pgListen.default(clientConfig(url), { retryTimeout: Infinity, retryInterval: 500, paranoidChecking: 5000 });
        let connectedOnce = false;
        // One at a time, so events print in the order they arrived while an error is read.
        let printing = Promise.resolve();
        const withError = async (event: JobEvent): Promise<JobEvent> => {
          if (!event.error_class) return event;
          const error = await runError(db, event.id).catch(() => null);
          return { ...event, error: error ?? event.error_class };
        };
        subscriber.notifications.on("pmt_jobs", (payload: JobEvent) => {
          printing = printing.then(async () => emit(await withError(payload)));
        });
        subscriber.events.on("error", (error) => logger.warn({ database, err: errorMessage(error) }, "notification connection error"));
        subscriber.events.on("reconnect", (attempt) => {
          if (attempt === 1) process.stderr.write(`watch: ${who}connection lost; reconnecting…\n`);
        });
        subscriber.events.on("connected", () => {
          if (!connectedOnce) {
            connectedOnce = true;
            return;
          }
          process.stderr.write(`watch: ${who}reconnected\n`);
          void replay();
        });
        await subscriber.connect();
        await subscriber.listenTo("pmt_jobs");
        process.stderr.write(`watch: ${who}listening for job events${opts.task ? ` of ${opts.task}` : ""} (Ctrl-C to stop)\n`);

        await new Promise<void>((resolve) => {
          const done = () => resolve();
          process.once("SIGINT", done);
          process.once("SIGTERM", done);
        });
        await subscriber.close().catch(() => {});
      });
    });
}
