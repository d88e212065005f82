import type { Command } from "commander";
import { errorMessage } from "../errors.js";
import { redactUrl } from "../redact.js";

/** `envHelp`: config.ts's describeEnv(), given by main() only when the arguments name `start` (it loads every schema); commander ignores an empty text. */
export function registerStart(program: Command, envHelp?: string): void {
  program
    .command("start")
    .description("run the worker: migrate, then process jobs and cron tasks until SIGTERM/SIGINT")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker start                                   the embedded PostgreSQL under ./.pmt, for a try
  $ DATABASE_URL=postgres://pmt:secret@db/pmt pmt-worker start
  $ PMT_DATABASES=bmgf,oam DATABASE_URL=postgres://pmt@db/postgres pmt-worker start
  $ LOG_FORMAT=json pmt-worker start                   JSON log lines on a terminal too
  (pmt-worker config shows the settings in effect)
` + (envHelp === undefined ? "" : `\nEnvironment (also read from ./.env):\n${envHelp}\n`),
    )
    .action(async () => {
      const [{ loadConfig }, { openDatabases }, { createLogger }] = await Promise.all([
        import("../config.js"),
        import("../db/database.js"),
        import("../log.js"),
      ]);
      const config = loadConfig();
      const logger = createLogger(config.logLevel, undefined, config.logFormat);
      // PMT_DATABASES of full URLs needs no DATABASE_URL and starts no embedded server.
      const database = await openDatabases(config, logger);
      let worker: Awaited<ReturnType<typeof import("../worker/runner.js").startWorker>>;
      // A signal while starting (the worker may already log "worker started" and take jobs
      // before startWorker returns) must not kill it mid-job: remembered, then a graceful
      // stop once started. A second one exits at once (a database that never comes up).
      let early: NodeJS.Signals | undefined;
      const onEarlySignal = (signal: NodeJS.Signals) => {
        if (early) process.exit(130);
        early = signal;
        logger.info({ signal }, "signal received while starting: stopping once started (a second signal exits at once)");
      };
      process.on("SIGTERM", onEarlySignal);
      process.on("SIGINT", onEarlySignal);
      try {
        if (database.embedded && config.demoActivities > 0) await (await import("../exports/demo.js")).loadDemo(database.url!, config.demoActivities, logger);
        // Loaded here, not at the top: other commands start faster without the worker's modules (AWS SDK...).
        const { startWorker } = await import("../worker/runner.js");
        // DATABASE_URL's server may come up after us (boot order, a container starting): wait for it.
        worker = await startWorker({ config, databaseUrl: database.url, logger, embedded: database.embedded, waitForDatabase: !database.embedded });
      } catch (error) {
        await database.close();
        throw error;
      }
      if (database.embedded) {
        logger.info({ url: redactUrl(database.url!), passwordFile: `${config.pmtHome}/embedded.json` }, "using the embedded PostgreSQL");
      }

      // Graceful shutdown: running jobs finish, then exit 0. A second signal exits at once.
      const code = await new Promise<number>((resolve) => {
        let signalled = false;
        const onSignal = (signal: NodeJS.Signals) => {
          if (signalled) {
            logger.warn({ signal }, "second signal: exiting without waiting for running jobs");
            process.exit(130);
          }
          signalled = true;
          worker.stop(`received ${signal}`).then(
            () => resolve(0),
            (error) => {
              logger.error({ err: errorMessage(error) }, "error during shutdown");
              resolve(1);
            },
          );
        };
        process.off("SIGTERM", onEarlySignal);
        process.off("SIGINT", onEarlySignal);
        process.on("SIGTERM", onSignal);
        process.on("SIGINT", onSignal);
        if (early) onSignal(early);
        // The runners settle before stop() has deregistered the worker and closed its pool:
        // wait for all of it, or the embedded server goes down under the deregistration
        // and status shows a stopped worker alive until WORKER_DEAD_AFTER_SECONDS.
        worker.promise.then(
          () =>
            void worker.stop("runners stopped").then(
              () => resolve(0),
              () => resolve(1),
            ),
          (error) => {
            logger.error({ err: errorMessage(error) }, "worker died");
            void worker.stop("worker died").finally(() => resolve(1));
          },
        );
      });
      await database.close();
      process.exitCode = code;
    });
}
