/**
 * Busy loops in child processes, one more than the machine has cores, so a
 * test proves its point on a saturated machine. Killed in afterAll (and when
 * this process exits) even when the test fails.
 */
import { spawn, type ChildProcess } from "node:child_process";
import os from "node:os";
import { afterAll } from "vitest";

export interface CpuHog {
  stop(): void;
}

export function startCpuHog(processes = os.availableParallelism() + 1): CpuHog {
  const children: ChildProcess[] = [];
  const stop = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  };
  for (let i = 0; i < processes; i++) children.push(spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
  process.once("exit", stop);
  afterAll(stop);
  return { stop };
}
