/**
 * A PostgreSQL 15 with PostGIS for the PMT 2.0 compatibility suite: Debian's
 * postgresql-15 and postgresql-15-postgis-3, a throwaway cluster in a
 * temporary folder (as the `postgres` user when we are root), on 127.0.0.1
 * and a free port. The embedded PostgreSQL has no PostGIS, and PMT's schema
 * needs it.
 *
 * The suite also needs PMT 2.0.8.51's upstream files (pmt-2.0.8.51 in
 * PMT_SHARED_DIR or ../shared beside the checkout: sharedDir()). Without them, or without the
 * packages, it is skipped with one line saying why, unless
 * PMT_COMPAT_REQUIRED=1 (CI), where that is a failure.
 */
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { sharedDir } from "./cli.js";
import { freePort } from "./net.js";

const PG_BIN = process.env.PMT_COMPAT_PG_BIN ?? "/usr/lib/postgresql/15/bin";
const POSTGIS_CONTROL = "/usr/share/postgresql/15/extension/postgis.control";

export const UPSTREAM_DIR = sharedDir("pmt-2.0.8.51");

/** Why the compatibility suite cannot run here, or undefined when it can. */
export function compatUnavailable(): string | undefined {
  if (!fs.existsSync(path.join(UPSTREAM_DIR, "PMTCreateDatabase.sql"))) {
    return `PMT 2.0.8.51's upstream files are not at ${UPSTREAM_DIR} (set PMT_SHARED_DIR to the folder that holds pmt-2.0.8.51)`;
  }
  if (!fs.existsSync(path.join(PG_BIN, "initdb")) || !fs.existsSync(POSTGIS_CONTROL)) {
    return "PostgreSQL 15 with PostGIS is not installed (apt-get install postgresql-15-postgis-3)";
  }
  return undefined;
}

export interface PostgisCluster {
  /** Superuser connection to database `postgres` (`trust`; with `password`, it carries postgres's password). */
  adminUrl: string;
  /** Its Unix socket's folder and its port (PGHOST and PGPORT for psql). */
  socketDir: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * trust: anyone connects as anyone (the compatibility suite). debian: Debian's
 * pg_hba.conf, peer over the socket and passwords over TCP (the deployment guide).
 * password: passwords over TCP for every role, postgres's included (in adminUrl),
 * without root (the disaster-recovery drill: a restored login role has none until the DBA sets it).
 */
export type ClusterAuth = "trust" | "debian" | "password";

function asPostgres(cmd: string, args: string[]): string[] {
  return process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", cmd, ...args] : [cmd, ...args];
}

function run(cmd: string, args: string[]): void {
  const [file, ...rest] = asPostgres(cmd, args);
  execFileSync(file!, rest, { stdio: ["ignore", "pipe", "pipe"] });
}

export async function startPostgisCluster(options: { auth?: ClusterAuth } = {}): Promise<PostgisCluster> {
  if (process.getuid?.() === 0) {
    try {
      execFileSync("id", ["postgres"], { stdio: "ignore" });
    } catch {
      execFileSync("useradd", ["--system", "--no-create-home", "postgres"]);
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-postgis-"));
  fs.chmodSync(dir, 0o700);
  if (process.getuid?.() === 0) execFileSync("chown", ["postgres", dir]);
  const data = path.join(dir, "data");
  const port = await freePort();
  const password = options.auth === "password" ? crypto.randomBytes(12).toString("hex") : undefined;
  const pwfile = path.join(dir, "pwfile");
  const auth =
    options.auth === "debian"
      ? ["--auth-local=peer", "--auth-host=scram-sha-256"]
      : password
        ? ["--auth-local=trust", "--auth-host=scram-sha-256", `--pwfile=${pwfile}`]
        : ["--auth=trust"];
  if (password) {
    fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (process.getuid?.() === 0) execFileSync("chown", ["postgres", pwfile]);
  }
  try {
    run(path.join(PG_BIN, "initdb"), ["-D", data, "-U", "postgres", ...auth, "--encoding=UTF8", "--locale=C.UTF-8"]);
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
  run(path.join(PG_BIN, "pg_ctl"), [
    "-D",
    data,
    "-l",
    path.join(dir, "log"),
    "-w",
    "-t",
    "120",
    "start",
    "-o",
    `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off -c max_connections=50`,
  ]);
  return {
    adminUrl: `postgres://postgres${password ? `:${password}` : ""}@127.0.0.1:${port}/postgres`,
    socketDir: dir,
    port,
    async stop() {
      try {
        run(path.join(PG_BIN, "pg_ctl"), ["-D", data, "-w", "-m", "immediate", "stop"]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
