/**
 * PostgreSQL's client programs, found and run in one place: which pg_dump /
 * pg_restore to run (the newest installed one whose major version is at
 * least the server's: pg_dump refuses newer servers, searched on PATH and in
 * /usr/lib/postgresql/<major>/bin, or only in PG_BIN_DIR), the environment it
 * gets (childEnv's few names and one connection's libpq variables: the
 * password travels in PGPASSWORD, never in argv), and how its failure reads
 * (`pg_dump exited with 1: <its stderr, passwords removed>`, or `was killed
 * (SIGKILL)`), the same for a backup, verify, restore and doctor.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { childEnv } from "../child-env.js";
import { PermanentJobError } from "../errors.js";
import { redactText } from "../redact.js";

export type ToolName = "pg_dump" | "pg_restore";

export interface PgTool {
  path: string;
  major: number;
  version: string;
}

/** A server's major version and its version as PostgreSQL prints it ("15.18"). */
export interface ServerVersion {
  major: number;
  version: string;
}

export function searchDirs(pgBinDir?: string): string[] {
  if (pgBinDir) return [pgBinDir];
  const fromPath = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
  let debian: string[] = [];
  try {
    debian = fs
      .readdirSync("/usr/lib/postgresql")
      .filter((d) => /^\d+$/.test(d))
      .map((d) => `/usr/lib/postgresql/${d}/bin`);
  } catch {
    // not a Debian-style installation
  }
  return [...fromPath, ...debian];
}

/** "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" -> 15.18 */
export function parseToolVersion(output: string): { major: number; version: string } | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(output);
  return m ? { major: Number(m[1]), version: m[2] ? `${m[1]}.${m[2]}` : m[1]! } : undefined;
}

/**
 * The executables named `name` in `dirs`, once each (by real path). Debian's
 * pg_wrapper (a Perl script, /usr/bin/pg_dump) only runs one of
 * /usr/lib/postgresql/<major>/bin's, which are searched too when it is: not
 * asked its version then (chooseTool would take the real binary anyway).
 */
function candidates(name: ToolName, dirs: string[]): { file: string; real: string; stamp: string }[] {
  const seen = new Set<string>();
  const found: { file: string; real: string; stamp: string }[] = [];
  const debianSearched = dirs.some((d) => /^\/usr\/lib\/postgresql\/\d+\/bin\/?$/.test(d));
  for (const dir of dirs) {
    const file = path.join(dir, name);
    let real: string;
    let stamp: string;
    try {
      fs.accessSync(file, fs.constants.X_OK);
      real = fs.realpathSync(file);
      const st = fs.statSync(real);
      stamp = `${real}:${st.size}:${st.mtimeMs}`;
    } catch {
      continue;
    }
    if (seen.has(real) || (debianSearched && path.basename(real) === "pg_wrapper")) continue;
    seen.add(real);
    found.push({ file, real, stamp });
  }
  return found;
}

export function findTools(name: ToolName, dirs: string[]): PgTool[] {
  const tools: PgTool[] = [];
  for (const { file } of candidates(name, dirs)) {
    try {
      const parsed = parseToolVersion(execFileSync(file, ["--version"], { encoding: "utf8", timeout: 10_000, env: childEnv() }));
      if (parsed) tools.push({ path: file, ...parsed });
    } catch {
      // not runnable: skip
    }
  }
  return tools;
}

/** Versions asked of executables, by real path, size and mtime: an upgraded pg_dump is asked again. */
const probed = new Map<string, Promise<{ major: number; version: string } | undefined>>();

/** `file --version`, asynchronously (remembered while the file stays the same). */
function probe(file: string, stamp: string): Promise<{ major: number; version: string } | undefined> {
  let known = probed.get(stamp);
  if (!known) {
    known = new Promise((resolve) =>
      execFile(file, ["--version"], { encoding: "utf8", timeout: 10_000, env: childEnv() }, (error, stdout) => {
        // A failure is asked again next time (a timeout on a loaded machine is not an answer).
        if (error) probed.delete(stamp);
        resolve(error ? undefined : parseToolVersion(stdout));
      }),
    );
    probed.set(stamp, known);
  }
  return known;
}

/** pg_dump's and pg_restore's versions asked now, so that a backup's toolForAsync finds them known (or on their way). */
export function prefetchTools(pgBinDir?: string): void {
  for (const name of ["pg_dump", "pg_restore"] as const) findToolsAsync(name, searchDirs(pgBinDir)).catch(() => {});
}

/** findTools without blocking: every candidate asked at once, each file's answer remembered for the next call (a backup's fixed cost). */
export async function findToolsAsync(name: ToolName, dirs: string[]): Promise<PgTool[]> {
  const found = candidates(name, dirs);
  const versions = await Promise.all(found.map((c) => probe(c.file, c.stamp)));
  return found.flatMap((c, i) => (versions[i] ? [{ path: c.file, ...versions[i] }] : []));
}

/** Server version_num 150018 -> major 15. */
export function serverMajor(versionNum: number): number {
  return Math.floor(versionNum / 10_000);
}

/** The server's version, asked over a connection to it. */
export async function serverVersion(client: pg.Client | pg.PoolClient): Promise<ServerVersion> {
  const { rows } = await client.query<{ num: string; version: string }>(
    "select current_setting('server_version_num') as num, current_setting('server_version') as version",
  );
  return { major: serverMajor(Number(rows[0]!.num)), version: rows[0]!.version.split(" ")[0]! };
}

/** The version a catalog row or manifest recorded ("15.18"; unknown when none was). */
export function recordedVersion(version: string | null | undefined): ServerVersion {
  return { major: Number((version ?? "0").split(".")[0]), version: version ?? "unknown" };
}

export function chooseTool(name: ToolName, tools: PgTool[], server: ServerVersion): PgTool {
  // Newest major first; at equal majors the real binary before Debian's pg_wrapper script.
  const wrapper = (t: PgTool) => (fs.realpathSync(t.path).includes("pg_wrapper") ? 1 : 0);
  const suitable = tools.filter((t) => t.major >= server.major).sort((a, b) => b.major - a.major || wrapper(a) - wrapper(b));
  if (suitable[0]) return suitable[0];
  const found = tools.length ? tools.map((t) => `${t.version} (${t.path})`).join(", ") : "none";
  throw new PermanentJobError(
    `${name} cannot handle PostgreSQL ${server.version}: it needs ${name} ${server.major} or newer, found ${found}; ` +
      `install postgresql-client-${server.major} (apt-get install postgresql-client-${server.major}) or set PG_BIN_DIR`,
  );
}

/** The tool for `server`, searched where PG_BIN_DIR (or PATH and Debian's folders) says. */
export function toolFor(name: ToolName, server: ServerVersion, pgBinDir?: string): PgTool {
  return chooseTool(name, findTools(name, searchDirs(pgBinDir)), server);
}

/** toolFor without blocking (findToolsAsync). */
export async function toolForAsync(name: ToolName, server: ServerVersion, pgBinDir?: string): Promise<PgTool> {
  return chooseTool(name, await findToolsAsync(name, searchDirs(pgBinDir)), server);
}

const PARAMS: Record<string, string> = {
  sslmode: "PGSSLMODE",
  sslrootcert: "PGSSLROOTCERT",
  sslcert: "PGSSLCERT",
  sslkey: "PGSSLKEY",
  connect_timeout: "PGCONNECT_TIMEOUT",
};

/** libpq environment for the URL (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, ...). */
export function libpqEnv(url: string): Record<string, string> {
  const u = new URL(url);
  const env: Record<string, string> = {
    PGHOST: u.hostname.replace(/^\[|\]$/g, "") || "localhost",
    PGPORT: u.port || "5432",
    PGDATABASE: decodeURIComponent(u.pathname.slice(1)),
    PGAPPNAME: "pmt-worker backup",
  };
  if (u.username) env.PGUSER = decodeURIComponent(u.username);
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  for (const [param, name] of Object.entries(PARAMS)) {
    const value = u.searchParams.get(param);
    if (value) env[name] = value;
  }
  return env;
}

/** The environment for pg_dump/pg_restore: the target's libpq settings and nothing of ours but childEnv's few (no secrets). */
export function toolEnv(url: string): NodeJS.ProcessEnv {
  return childEnv(libpqEnv(url));
}

/** How much of a tool's stderr is kept for its error: the end, where it says why it stopped. */
const STDERR_KEPT = 4000;

/** `pg_dump exited with 1: <stderr>` / `pg_dump was killed (SIGKILL): ...`, passwords removed from what it said. */
export function toolFailure(tool: string, code: number | null, signal: NodeJS.Signals | null, stderr: string): Error {
  return new Error(`${tool} ${signal ? `was killed (${signal})` : `exited with ${code}`}: ${redactText(stderr.trim()) || "no message"}`);
}

export interface RunningTool {
  child: ChildProcess;
  /** The tool's stdout when it was asked for ("pipe"), else null. */
  stdout: Readable | null;
  /** Resolves when it exits with 0; rejects with toolFailure otherwise (always handled: await it when it matters). */
  exited: Promise<void>;
}

/**
 * Starts a tool against the database of `url`, with its stdin and stdout as
 * asked; its stderr is kept for the error. `exited` never goes unhandled:
 * a caller that stops early (a pipe broke) awaits it for the tool's own reason.
 */
export function startTool(tool: PgTool, args: string[], url: string, stdio: { stdin: "pipe" | "ignore"; stdout: "pipe" | "ignore" }): RunningTool {
  const child = spawn(tool.path, args, { env: toolEnv(url), stdio: [stdio.stdin, stdio.stdout, "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr = (stderr + d).slice(-STDERR_KEPT)));
  const exited = new Promise<void>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => (code === 0 ? resolve() : reject(toolFailure(path.basename(tool.path), code, signal, stderr))));
  });
  exited.catch(() => {});
  return { child, stdout: child.stdout, exited };
}

/** Runs a tool to completion and returns its stdout; rejects with its stderr (passwords removed) on failure. */
export async function runTool(tool: PgTool, args: string[], url: string, onChild?: (c: ChildProcess) => void): Promise<string> {
  const run = startTool(tool, args, url, { stdin: "ignore", stdout: "pipe" });
  onChild?.(run.child);
  let stdout = "";
  run.stdout!.on("data", (d) => (stdout += d));
  await run.exited;
  return stdout;
}

/**
 * Runs a tool reading `input` on its stdin (an archive decrypted as it is
 * read) and returns its stdout. A tool that stops reading early (`--list`
 * needs only the table of contents) is not a failure; an input that fails is
 * (the tool is killed: it must not go on with part of an archive).
 */
export async function runToolOn(tool: PgTool, args: string[], url: string, input: Readable): Promise<string> {
  const run = startTool(tool, args, url, { stdin: "pipe", stdout: "pipe" });
  let stdout = "";
  run.stdout!.on("data", (d) => (stdout += d));
  try {
    await pipeline(input, run.child.stdin!);
  } catch (error) {
    if (!stoppedReading(error)) {
      run.child.kill("SIGKILL");
      throw error;
    }
    input.destroy();
  }
  await run.exited;
  return stdout;
}

/**
 * A tool closed its stdin before the end of what was piped to it (pg_restore
 * --list has read the table of contents and exits): its exit status says
 * whether that was success. Node reports it as EPIPE when a write fails, or
 * as a premature close when the pipe is seen closed first; which one depends
 * on timing.
 */
export function stoppedReading(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "EPIPE" || code === "ERR_STREAM_PREMATURE_CLOSE";
}
