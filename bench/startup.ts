/**
 * Start-up benchmark: what every command pays before it does anything.
 * `pmt-worker --help` and `pmt-worker status` (against a migrated, empty
 * database of an embedded PostgreSQL 15, or BENCH_DATABASE_URL's server)
 * against a bare `node -e ""`, the three in turn in every round (the order
 * rotating), so that each ratio compares runs on the same machine under the
 * same load. Wall time is the figure; the CPU time of each child (from this
 * process's children's rusage, 10 ms ticks, so a mean) is reported beside it,
 * as it moves less with the machine's other load.
 *
 *   npm run bench -- startup [--rounds=30]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { benchDatabase, createDatabase, intArg, measure, printTable, row, writeResults } from "./lib.js";

const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../bin/pmt-worker.js");

/** CPU seconds of this process's waited-for children so far (utime + stime, Linux's 100 Hz ticks). */
function childrenCpuSeconds(): number {
  const stat = fs.readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the command name: state is field 3, cutime 16 and cstime 17.
  return (Number(fields[16 - 3]) + Number(fields[17 - 3])) / 100;
}

export async function main(): Promise<void> {
  const rounds = intArg("rounds", 30);
  const server = await benchDatabase();
  const url = await createDatabase(server.url, "bench_startup");
  const env = { ...process.env, DATABASE_URL: url, LOG_LEVEL: "warn" };
  await measure(process.execPath, [BIN, "migrate"], env);

  const commands: { name: string; args: string[] }[] = [
    { name: "bare", args: ["-e", ""] },
    { name: "help", args: [BIN, "--help"] },
    { name: "status", args: [BIN, "status"] },
  ];
  const wall: Record<string, number[]> = Object.fromEntries(commands.map((c) => [c.name, []]));
  const cpu: Record<string, number> = Object.fromEntries(commands.map((c) => [c.name, 0]));
  const loadBefore = os.loadavg();
  // Round 0 warms the file cache and is not counted.
  for (let round = 0; round <= rounds; round++) {
    for (let i = 0; i < commands.length; i++) {
      const { name, args } = commands[(round + i) % commands.length]!;
      const cpu0 = childrenCpuSeconds();
      const { ms } = await measure(process.execPath, args, env);
      if (round === 0) continue;
      wall[name]!.push(ms);
      cpu[name]! += (childrenCpuSeconds() - cpu0) * 1000;
    }
  }
  const loadAfter = os.loadavg();
  await server.close();

  const cpuMs = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / rounds]));
  const rows = [
    row('pmt-worker --help vs node -e ""', "ms", wall.help!, wall.bare!, "ratio <= 2"),
    row('pmt-worker status vs node -e "" (empty database)', "ms", wall.status!, wall.bare!, "ratio <= 3"),
  ];
  const cpuRatio = (name: string) => cpuMs[name]! / cpuMs.bare!;
  const load = (l: number[]) => l.map((n) => n.toFixed(2)).join(" ");
  printTable(`Start-up: ${rounds} rounds, wall time, medians`, rows, [
    `CPU time, mean per run: node -e "" ${cpuMs.bare!.toFixed(0)} ms, --help ${cpuMs.help!.toFixed(0)} ms (${cpuRatio("help").toFixed(2)}), status ${cpuMs.status!.toFixed(0)} ms (${cpuRatio("status").toFixed(2)})`,
    `load average (1, 5, 15 min) before ${load(loadBefore)}, after ${load(loadAfter)}, ${os.cpus().length} cores`,
  ]);
  const file = writeResults("startup", {
    rounds,
    rows,
    cpu_ms_mean: cpuMs,
    cpu_ratio: { help: cpuRatio("help"), status: cpuRatio("status") },
    loadavg: { before: loadBefore, after: loadAfter },
  });
  process.stdout.write(`results: ${file}\n`);
}
