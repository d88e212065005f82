/** Shared parts of the benchmarks: a database, statistics, the table, the results file. */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { startEmbedded } from "../src/db/embedded.js";
import { createLogger } from "../src/log.js";
import { freePort } from "../test/harness/net.js";
import { S3RVER_CREDENTIALS } from "../test/harness/s3.js";

export const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "results");

/** BENCH_DATABASE_URL, or a throw-away embedded PostgreSQL 15. */
export async function benchDatabase(): Promise<{ url: string; close(): Promise<void> }> {
  if (process.env.BENCH_DATABASE_URL) return { url: process.env.BENCH_DATABASE_URL, close: async () => {} };
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-bench-"));
  fs.chmodSync(home, 0o711);
  const server = await startEmbedded(home, await freePort(), createLogger("warn"));
  return {
    url: server.url,
    close: async () => {
      await server.stop();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** (Re)creates database `name` on the server of `url`; returns its URL. */
export async function createDatabase(url: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop database if exists ${name} with (force)`);
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface Summary {
  median: number;
  min: number;
  max: number;
}

export function summarize(values: number[]): Summary {
  return { median: quantile(values, 0.5), min: Math.min(...values), max: Math.max(...values) };
}

export interface Row {
  metric: string;
  unit: string;
  ours: Summary;
  baseline: Summary;
  /** ours / baseline of the medians. */
  ratio: number;
  target?: string;
}

export function row(metric: string, unit: string, ours: number[], baseline: number[], target?: string): Row {
  const o = summarize(ours);
  const b = summarize(baseline);
  return { metric, unit, ours: o, baseline: b, ratio: o.median / b.median, target };
}

const fmt = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2));

export function printTable(title: string, rows: Row[], notes: string[] = []): void {
  const lines = [
    ["metric", "unit", "ours median [min-max]", "baseline median [min-max]", "ours/baseline", "target"],
    ...rows.map((r) => [
      r.metric,
      r.unit,
      `${fmt(r.ours.median)} [${fmt(r.ours.min)}-${fmt(r.ours.max)}]`,
      `${fmt(r.baseline.median)} [${fmt(r.baseline.min)}-${fmt(r.baseline.max)}]`,
      r.ratio.toFixed(2),
      r.target ?? "",
    ]),
  ];
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  process.stdout.write(`\n${title}\n`);
  for (const l of lines)
    process.stdout.write(
      l
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd() + "\n",
    );
  for (const n of notes) process.stdout.write(`${n}\n`);
}

export function writeResults(name: string, data: Record<string, unknown>): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}.json`);
  const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version };
  fs.writeFileSync(file, JSON.stringify({ name, at: new Date().toISOString(), machine, ...data }, null, 2) + "\n");
  return file;
}

/** Peak resident set size of this process so far, in MB. */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export function intArg(name: string, fallback: number): number {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  const value = flag ? Number(flag.split("=")[1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: expected a positive whole number`);
  return value;
}

/** A number flag that may be 0 or fractional (`--rtt=40`, `--mbps=0`). */
export function numberArg(name: string, fallback: number): number {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  const value = flag ? Number(flag.split("=")[1]) : fallback;
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name}: expected a number, 0 or more`);
  return value;
}

/** Runs a command; resolves with wall milliseconds, the peak RSS (MB) of the process, read from /proc while it runs, and its stderr. */
export function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdoutFile?: string): Promise<{ ms: number; rssMb: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const out = stdoutFile ? fs.openSync(stdoutFile, "w") : "ignore";
    const child = spawn(cmd, args, { env, stdio: ["ignore", out, "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    let peak = 0;
    const timer = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, "utf8"));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {
        // exited
      }
    }, 20);
    child.on("close", (code) => {
      clearInterval(timer);
      if (typeof out === "number") fs.closeSync(out);
      if (code !== 0) reject(new Error(`${cmd} ${args.join(" ")} exited with ${code}: ${stderr}`));
      else resolve({ ms: performance.now() - t0, rssMb: peak, stderr });
    });
  });
}

/** An s3cmd configuration (0600) for the in-process s3rver at `host` ("127.0.0.1:port"); its path. */
export function s3cmdConfig(dir: string, host: string): string {
  const file = path.join(dir, "s3cfg");
  fs.writeFileSync(
    file,
    `[default]\naccess_key = ${S3RVER_CREDENTIALS.AWS_ACCESS_KEY_ID}\nsecret_key = ${S3RVER_CREDENTIALS.AWS_SECRET_ACCESS_KEY}\nhost_base = ${host}\nhost_bucket = ${host}\nuse_https = False\nbucket_location = us-east-1\n`,
    { mode: 0o600 },
  );
  return file;
}

/** Whether `--name` was given. */
export function flagArg(name: string): boolean {
  return process.argv.includes(`--${name}`);
}
