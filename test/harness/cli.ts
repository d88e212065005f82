/** Runs the built CLI (dist/, built by `npm test` before vitest) as a child process. */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = path.join(ROOT, "bin/pmt-worker.js");

/**
 * A folder of the team's shared test material (PMT 2.0.8.51's upstream files,
 * the IATI schema): PMT_SHARED_DIR, else ../shared beside the checkout, else
 * /work/shared. The first that holds `name` wins.
 */
export function sharedDir(name: string): string {
  const candidates = [process.env.PMT_SHARED_DIR, path.resolve(ROOT, "../shared"), "/work/shared"].filter((d): d is string => !!d);
  const found = candidates.map((d) => path.join(d, name)).find((d) => fs.existsSync(d));
  return found ?? path.join(candidates[0]!, name);
}

/** The environment for a child: ours minus anything pmt-worker reads, plus `env`. */
export function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Colours and the log format as a terminal would set them: a test asks for them by name.
    if (!/^(DATABASE_URL|PMT_HOME|EMBEDDED_PG_PORT|WORKER_|HTTP_|HISTORY_|LOG_LEVEL|LOG_FORMAT|FORCE_COLOR|NO_COLOR)/.test(k)) base[k] = v;
  }
  return { ...base, ...env };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `input`: written to the command's stdin, which is then closed (an identity given as `--identity-file -`). */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, cwd = ROOT, input?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: childEnv(env), cwd });
    if (input !== undefined) child.stdin.end(input);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** A long-running child whose output lines can be awaited. */
export class ChildHandle {
  stdout = "";
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private listeners: (() => void)[] = [];

  constructor(readonly child: ChildProcess) {
    child.stdout!.on("data", (d) => {
      this.stdout += d;
      this.listeners.forEach((l) => l());
    });
    child.stderr!.on("data", (d) => {
      this.stderr += d;
      this.listeners.forEach((l) => l());
    });
    this.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  }

  static spawn(file: string, args: string[], env: Record<string, string | undefined>, cwd = ROOT): ChildHandle {
    return new ChildHandle(spawn(process.execPath, [file, ...args], { env: childEnv(env), cwd }));
  }

  /** Resolves when stdout+stderr match `pattern`. */
  waitForOutput(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pattern.test(this.stdout + this.stderr)) {
          clearTimeout(timer);
          this.listeners = this.listeners.filter((l) => l !== check);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== check);
        reject(new Error(`timed out waiting for ${pattern} in output:\n${this.stdout}\n${this.stderr}`));
      }, timeoutMs);
      this.listeners.push(check);
      check();
    });
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    this.child.kill(signal);
  }
}
