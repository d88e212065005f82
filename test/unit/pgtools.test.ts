/**
 * How a PostgreSQL client tool is run and how its failure reads
 * (src/pgtools/tools.ts), without PostgreSQL: stand-in "tools" are small
 * shell scripts named like the real ones.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  chooseTool,
  libpqEnv,
  parseToolVersion,
  recordedVersion,
  runTool,
  startTool,
  stoppedReading,
  toolFailure,
  type PgTool,
} from "../../src/pgtools/tools.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-unit-pgtools-"));
const URL_WITH_SECRET = "postgres://backup:Tool-Sekret-7@db.example.org:6543/pmt?sslmode=require";

/** A stand-in tool: `tmp/<dir>/<name>`, running `body` under /bin/sh. */
function fakeTool(dir: string, name: "pg_dump" | "pg_restore", body: string): PgTool {
  fs.mkdirSync(path.join(tmp, dir), { recursive: true });
  const file = path.join(tmp, dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o700 });
  return { path: file, major: 15, version: "15.18" };
}

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("toolFailure", () => {
  it("says which tool, how it ended, and the end of what it said", () => {
    expect(toolFailure("pg_dump", 1, null, "pg_dump: error: connection refused\n").message).toBe("pg_dump exited with 1: pg_dump: error: connection refused");
    expect(toolFailure("pg_restore", null, "SIGKILL", "").message).toBe("pg_restore was killed (SIGKILL): no message");
    expect(toolFailure("pg_dump", 2, null, "   \n").message).toBe("pg_dump exited with 2: no message");
  });

  it("never repeats a password the tool printed", () => {
    const message = toolFailure("pg_dump", 1, null, `could not connect to ${URL_WITH_SECRET}; password=Other-Sekret-8 rejected`).message;
    expect(message).not.toMatch(/Tool-Sekret-7|Other-Sekret-8/);
    expect(message).toContain("postgres://backup:***@db.example.org");
    expect(message).toContain("password=***");
  });
});

describe("runTool and startTool", () => {
  const saved = process.env.SMTP_URL;
  beforeAll(() => {
    process.env.SMTP_URL = "smtp://mailer:Smtp-Sekret-9@mail.example.org";
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.SMTP_URL;
    else process.env.SMTP_URL = saved;
  });

  it("returns stdout; the tool gets the target's libpq settings in its environment, no secret of ours, nothing in argv", async () => {
    const tool = fakeTool("env", "pg_dump", 'env; echo "ARGV $*"');
    const out = await runTool(tool, ["--list", "file.dump"], URL_WITH_SECRET);
    const env = Object.fromEntries(
      out
        .split("\n")
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    expect(env).toMatchObject({
      PGHOST: "db.example.org",
      PGPORT: "6543",
      PGUSER: "backup",
      PGPASSWORD: "Tool-Sekret-7",
      PGDATABASE: "pmt",
      PGSSLMODE: "require",
    });
    expect(env.SMTP_URL).toBeUndefined();
    expect(out).toContain("ARGV --list file.dump\n");
    expect(out.split("\n").find((l) => l.startsWith("ARGV"))).not.toContain("Sekret");
  });

  it("rejects with the tool's exit code and its stderr, passwords removed", async () => {
    const tool = fakeTool("fails", "pg_restore", `echo "pg_restore: error: could not connect to ${URL_WITH_SECRET}" >&2; exit 3`);
    await expect(runTool(tool, [], URL_WITH_SECRET)).rejects.toThrow(
      "pg_restore exited with 3: pg_restore: error: could not connect to postgres://backup:***@db.example.org:6543/pmt?sslmode=require",
    );
  });

  it("says when the tool was killed, and lets the caller reach the process", async () => {
    const tool = fakeTool("killed", "pg_dump", "exec sleep 30");
    let pid: number | undefined;
    const running = runTool(tool, [], URL_WITH_SECRET, (child) => {
      pid = child.pid;
      child.kill("SIGKILL");
    });
    await expect(running).rejects.toThrow("pg_dump was killed (SIGKILL): no message");
    expect(pid).toBeGreaterThan(0);
  });

  it("keeps only the end of a long stderr (where the tool says why it stopped)", async () => {
    const tool = fakeTool(
      "chatty",
      "pg_restore",
      'i=0; while [ $i -lt 500 ]; do echo "warning line $i" >&2; i=$((i+1)); done; echo "the real reason" >&2; exit 1',
    );
    const error = await runTool(tool, [], URL_WITH_SECRET).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/the real reason$/);
    expect(error?.message).not.toContain("warning line 0\n");
    expect(error!.message.length).toBeLessThan(4100);
  });

  it("startTool feeds stdin and resolves when the tool exits with 0", async () => {
    const tool = fakeTool("stdin", "pg_restore", `cat > "${path.join(tmp, "stdin", "got")}"`);
    const run = startTool(tool, [], URL_WITH_SECRET, { stdin: "pipe", stdout: "ignore" });
    expect(run.stdout).toBeNull();
    run.child.stdin!.end("archive bytes");
    await run.exited;
    expect(fs.readFileSync(path.join(tmp, "stdin", "got"), "utf8")).toBe("archive bytes");
  });
});

describe("choosing a tool", () => {
  it("parses --version output and recorded versions", () => {
    expect(parseToolVersion("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)")).toEqual({ major: 15, version: "15.18" });
    expect(parseToolVersion("pg_restore (PostgreSQL) 17")).toEqual({ major: 17, version: "17" });
    expect(parseToolVersion("something else")).toBeUndefined();
    expect(recordedVersion("16.4")).toEqual({ major: 16, version: "16.4" });
    expect(recordedVersion(null)).toEqual({ major: 0, version: "unknown" });
  });

  it("takes the newest tool at least as new as the server, and says what to install when none is", () => {
    const old = { ...fakeTool("v14", "pg_dump", "exit 0"), major: 14, version: "14.9" };
    const newer = { ...fakeTool("v17", "pg_dump", "exit 0"), major: 17, version: "17.2" };
    const current = fakeTool("v15", "pg_dump", "exit 0");
    expect(chooseTool("pg_dump", [old, current, newer], { major: 15, version: "15.18" })).toBe(newer);
    expect(() => chooseTool("pg_dump", [old], { major: 15, version: "15.18" })).toThrow(
      `pg_dump cannot handle PostgreSQL 15.18: it needs pg_dump 15 or newer, found 14.9 (${old.path}); install postgresql-client-15 (apt-get install postgresql-client-15) or set PG_BIN_DIR`,
    );
  });

  it("libpqEnv carries a URL's connection settings, user and password decoded, an IPv6 host without its brackets", () => {
    expect(libpqEnv("postgres://us%40er:p%40ss@[::1]:5433/my%20db?connect_timeout=5")).toEqual({
      PGHOST: "::1",
      PGPORT: "5433",
      PGDATABASE: "my db",
      PGAPPNAME: "pmt-worker backup",
      PGUSER: "us@er",
      PGPASSWORD: "p@ss",
      PGCONNECT_TIMEOUT: "5",
    });
  });
});

describe("stoppedReading", () => {
  it("takes both ways Node reports a tool that closed its stdin early, and nothing else", () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(stoppedReading(err("EPIPE"))).toBe(true);
    expect(stoppedReading(err("ERR_STREAM_PREMATURE_CLOSE"))).toBe(true);
    expect(stoppedReading(err("ENOENT"))).toBe(false);
    expect(stoppedReading(new Error("decryption failed"))).toBe(false);
  });
});
