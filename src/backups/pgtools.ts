/**
 * Which pg_dump / pg_restore to run: the newest installed one whose major
 * version is at least the server's (pg_dump refuses newer servers), searched
 * on PATH and in /usr/lib/postgresql/<major>/bin, or only in PG_BIN_DIR.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { childEnv } from "../child-env.js";
import { PermanentJobError } from "../errors.js";

export interface PgTool {
  path: string;
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

export function findTools(name: "pg_dump" | "pg_restore", dirs: string[]): PgTool[] {
  const seen = new Set<string>();
  const tools: PgTool[] = [];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    let real: string;
    try {
      fs.accessSync(file, fs.constants.X_OK);
      real = fs.realpathSync(file);
    } catch {
      continue;
    }
    if (seen.has(real)) continue;
    seen.add(real);
    try {
      const parsed = parseToolVersion(execFileSync(file, ["--version"], { encoding: "utf8", timeout: 10_000, env: childEnv() }));
      if (parsed) tools.push({ path: file, ...parsed });
    } catch {
      // not runnable: skip
    }
  }
  return tools;
}

/** Server version_num 150018 -> major 15. */
export function serverMajor(versionNum: number): number {
  return Math.floor(versionNum / 10_000);
}

export function chooseTool(name: "pg_dump" | "pg_restore", tools: PgTool[], server: { major: number; version: string }): PgTool {
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
