/**
 * Busy loops in child processes, one more than the machine has cores, so a
 * test proves its point on a saturated machine. Stopped when the test that
 * started them finishes, pass or fail; and each loop ends by itself once its
 * parent is gone (a test process killed by vitest runs no hooks).
 */
import { spawn, type ChildProcess } from "node:child_process";
import os from "node:os";
import { onTestFinished } from "vitest";

export interface CpuHog {
  stop(): void;
}

// Spins, checking every few million turns whether the process that started it still lives.
const LOOP = "const p = process.ppid; for (let i = 1; ; i++) if (i % 5e6 === 0 && process.ppid !== p) process.exit(0);";

/** Call inside a test. */
export function startCpuHog(processes = os.availableParallelism() + 1): CpuHog {
  const children: ChildProcess[] = [];
  const stop = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  };
  for (let i = 0; i < processes; i++) children.push(spawn(process.execPath, ["-e", LOOP], { stdio: "ignore" }));
  onTestFinished(stop);
  return { stop };
}
