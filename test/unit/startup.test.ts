/**
 * Start-up: each command loads only what it uses (docs/performance.md,
 * start-up). The CLI runs from src/ (through tsx, so no build is needed) in a
 * child process whose module loads are recorded: every ES module by a loader
 * hook, every CommonJS one from the require cache at exit. Module-load facts
 * only, never timings (bench/startup.ts measures those).
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, childEnv } from "../harness/cli.js";
import { freePort } from "../harness/net.js";

/** Runs in the loader thread: every ES module's URL, sent to the main thread as it loads. */
const HOOKS = `let port;
export function initialize(data) { port = data.port; }
export async function load(url, context, next) { port.postMessage(url); return next(url, context); }
`;

/** Preloaded: registers HOOKS, and at exit writes the ES modules and the require cache to STARTUP_LOADED. */
const TRACKER = `import fs from "node:fs";
import { createRequire, register } from "node:module";
import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
const { port1, port2 } = new MessageChannel();
port1.unref();
register("./hooks.mjs", import.meta.url, { data: { port: port2 }, transferList: [port2] });
const require = createRequire(import.meta.url);
process.on("exit", () => {
  const loaded = [];
  for (let m; (m = receiveMessageOnPort(port1)); ) loaded.push(m.message);
  fs.writeFileSync(process.env.STARTUP_LOADED, JSON.stringify([...loaded, ...Object.keys(require.cache)]));
});
`;

/** The CLI as bin/pmt-worker.js runs it, from src/. */
const ENTRY = `const { main } = await import(process.env.STARTUP_CLI);
await main(process.argv);
`;

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-startup-"));
  fs.writeFileSync(path.join(dir, "hooks.mjs"), HOOKS);
  fs.writeFileSync(path.join(dir, "tracker.mjs"), TRACKER);
  fs.writeFileSync(path.join(dir, "entry.mjs"), ENTRY);
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Every module loaded, as file paths (node_modules/... or src/...) relative to the checkout. */
  modules: string[];
}

/** Runs `pmt-worker args` from src/, in an empty folder (no .env), recording what it loads. */
function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm")).href;
  const loadedFile = path.join(dir, `loaded-${args.join("-")}.json`);
  const child = spawn(
    process.execPath,
    ["--import", tsx, "--import", pathToFileURL(path.join(dir, "tracker.mjs")).href, path.join(dir, "entry.mjs"), ...args],
    {
      cwd: dir,
      env: childEnv({
        ...env,
        PMT_HOME: path.join(dir, "home"),
        STARTUP_CLI: pathToFileURL(path.join(ROOT, "src/cli/index.ts")).href,
        STARTUP_LOADED: loadedFile,
      }),
    },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      const loaded = JSON.parse(fs.readFileSync(loadedFile, "utf8")) as string[];
      const modules = [...new Set(loaded.map((m) => path.relative(ROOT, m.startsWith("file:") ? new URL(m).pathname : m)))];
      resolve({ code, stdout, stderr, modules });
    });
  });
}

/** The packages among `modules` (scoped ones as @scope/name). */
function packages(modules: string[]): Set<string> {
  return new Set(modules.flatMap((m) => /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(m)?.[1] ?? []));
}

/** What no command that neither runs the worker nor talks to S3 should load. */
const WORKER_AND_S3 = ["kysely", "nodemailer", "age-encryption", "prom-client", "@aws-sdk/client-s3", "@aws-sdk/lib-storage"];

describe("command start-up", () => {
  it("--help loads commander and the command names, no database, config, logging or S3 module", async () => {
    const r = await run(["--help"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ {2}status\b/m);
    const loaded = packages(r.modules);
    expect(loaded).toContain("commander");
    expect(r.modules).toContain("src/cli/index.ts");
    for (const pkg of ["pg", "zod", "pino", "graphile-worker", ...WORKER_AND_S3]) expect(loaded, pkg).not.toContain(pkg);
    expect(r.modules).not.toContain("src/config.ts");
  }, 60_000);

  it("start --help loads the configuration's documentation, and still no database", async () => {
    const r = await run(["start", "--help"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("WORKER_CONCURRENCY (default 4)");
    const loaded = packages(r.modules);
    expect(r.modules).toContain("src/config.ts");
    for (const pkg of ["pg", "pino", ...WORKER_AND_S3]) expect(loaded, pkg).not.toContain(pkg);
    // The crontab check alone, not graphile-worker's index (which loads all of it).
    expect(r.modules).toContain("node_modules/graphile-worker/dist/cronMatcher.js");
    expect(r.modules).not.toContain("node_modules/graphile-worker/dist/index.js");
  }, 60_000);

  it("status and backup list load pg and the configuration, not kysely, pino, graphile-worker, zod 4's locales or the AWS SDK", async () => {
    // A closed port: the command loads all it needs, then fails to connect.
    const url = `postgres://pmt:secret@127.0.0.1:${await freePort()}/pmt`;
    for (const args of [["status"], ["backup", "list"]]) {
      const r = await run(args, { DATABASE_URL: url });
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toContain("cannot connect to postgres://pmt:***@127.0.0.1");
      const loaded = packages(r.modules);
      expect(loaded).toContain("pg");
      expect(loaded).toContain("zod");
      for (const pkg of ["pino", ...WORKER_AND_S3]) expect(loaded, `${args.join(" ")}: ${pkg}`).not.toContain(pkg);
      expect(r.modules).not.toContain("node_modules/graphile-worker/dist/index.js");
      // zod/v3 (a few modules), not zod 4's classic API with its ~60 locales.
      expect(r.modules.filter((m) => m.startsWith("node_modules/zod/v4/"))).toEqual([]);
    }
  }, 120_000);
});
