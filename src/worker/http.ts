/**
 * /healthz: 200 when the database answers and the worker runs, 503 otherwise,
 * with a JSON body saying which. With several databases (PMT_DATABASES), 200
 * while the worker runs and at least one answers ("degraded" naming the
 * others: restarting the worker would not bring a dropped database back, and
 * would stop serving the rest; alert on pmt_worker_database_up instead).
 * /metrics: Prometheus text.
 * /console: the web console (console/server.ts), unless CONSOLE=off.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type pg from "pg";
import { backupTargets } from "../backups/target.js";
import type { Config } from "../config.js";
import { createConsole, type Console } from "../console/server.js";
import type { ActionTasks } from "../console/actions.js";
import type { Instance } from "../db/databases.js";
import { UserError, errorMessage } from "../errors.js";
import { DUTIES } from "../jobs/index.js";
import { TEST_RESTORE_QUEUE } from "../jobs/test-restore.js";
import type { Logger } from "../log.js";
import { redactText } from "../redact.js";
import { buildCronItems } from "./crontab.js";
import type { Metrics } from "./metrics.js";

export interface HealthSource {
  metrics: Metrics;
  /** Why the worker is not running, or null when it is. */
  workerProblem(): string | null;
  /** The served databases: the pool of one running, else why it is not. */
  databases(): { name: string; pool?: pg.Pool; problem?: string }[];
  /** Several databases: the body names each (else `database` is the one's state, as before PMT_DATABASES). */
  multi?: boolean;
  /** The web console's view of the served databases; absent: no console (CONSOLE=off). */
  console?: { config: Config; served: Instance[]; embedded?: boolean; logger: Logger };
}

/** What the console's actions enqueue (jobs/ names them; console/ is below it). */
export const CONSOLE_TASKS: ActionTasks = { backup: DUTIES.backup.task, testRestore: DUTIES.testRestore.task, testRestoreQueue: TEST_RESTORE_QUEUE };

/** The console over the served databases: each one's pool while it runs, its crontab and what it backs up. */
function consoleFor(source: HealthSource, host: string): Console | undefined {
  const c = source.console;
  if (!c || !c.config.console.enabled) return undefined;
  const fixed = new Map(
    c.served.map((s) => {
      const targets = backupTargets(s.url, s.config.backup);
      const cron = buildCronItems(s.config, targets, { embedded: c.embedded });
      return [s.name, { name: s.name, url: s.url, config: s.config, cron, backupTargets: targets.map((t) => t.database) }];
    }),
  );
  return createConsole({
    host,
    access: { user: c.config.console.user, password: c.config.console.password },
    tasks: CONSOLE_TASKS,
    logger: c.logger,
    databases: () => source.databases().flatMap((d) => (fixed.has(d.name) ? [{ ...fixed.get(d.name)!, pool: d.pool, problem: d.problem }] : [])),
  });
}

const DB_TIMEOUT_MS = 2000;

/** "ok", or why the database does not answer (secrets removed). */
async function databaseState(db: { pool?: pg.Pool; problem?: string }): Promise<string> {
  if (!db.pool) return db.problem ?? "not started";
  try {
    await Promise.race([
      db.pool.query("select 1"),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${DB_TIMEOUT_MS} ms`)), DB_TIMEOUT_MS).unref()),
    ]);
    return "ok";
  } catch (error) {
    return redactText(errorMessage(error)) || "unreachable";
  }
}

export async function checkHealth(source: HealthSource): Promise<{ ok: boolean; body: Record<string, unknown> }> {
  const databases = source.databases();
  const states = await Promise.all(databases.map((d) => databaseState(d)));
  const worker = source.workerProblem() ?? "running";
  if (!source.multi) {
    const database = states[0] ?? "none";
    const ok = database === "ok" && worker === "running";
    return { ok, body: { status: ok ? "ok" : "unavailable", database, worker } };
  }
  const answering = states.filter((s) => s === "ok").length;
  const ok = worker === "running" && answering > 0;
  const status = !ok ? "unavailable" : answering < states.length ? "degraded" : "ok";
  return { ok, body: { status, worker, databases: Object.fromEntries(databases.map((d, i) => [d.name, states[i]])) } };
}

export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(source: HealthSource, host: string, port: number): Promise<HttpServer> {
  const webConsole = consoleFor(source, host);
  const server = http.createServer((req, res) => {
    const url = (req.url ?? "/").split("?")[0];
    if (webConsole?.handle(req, res)) return;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (url === "/healthz") {
      void checkHealth(source).then(({ ok, body }) => {
        res.writeHead(ok ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(body) + "\n");
      });
    } else if (url === "/metrics") {
      source.metrics.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": source.metrics.registry.contentType }).end(text),
        (error) => res.writeHead(500, { "content-type": "text/plain" }).end(redactText(errorMessage(error)) + "\n"),
      );
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: try /healthz or /metrics${webConsole ? " or /console" : ""}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  }).catch(async (error: NodeJS.ErrnoException) => {
    await webConsole?.close();
    throw new UserError(
      error.code === "EADDRINUSE"
        ? `HTTP_PORT ${port} on ${host} is already in use: choose another port (0 picks a free one)`
        : `cannot listen on ${host}:${port}: ${error.message}`,
    );
  });
  // Listening: an error now (EMFILE accepting a connection) is the server's, not the worker's to die of.
  server.on("error", (error) => process.stderr.write(`pmt-worker: health/console listener: ${redactText(errorMessage(error))}\n`));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      await webConsole?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
