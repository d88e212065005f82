import type { Command } from "commander";
import type { RetentionResult } from "../retention/apply.js";
import { stdoutColours, type Colours } from "../colour.js";
import { UserError } from "../errors.js";
import { humanBytes, humanSpan, isoSeconds } from "../human.js";
import { table } from "./format.js";

const DATABASE_OPTION = "one database of BACKUP_DATABASES or PMT_DATABASES (default: all)";

/** A plan as `retention plan` prints it: each backup, newest first, with what retention decides for it. */
function formatPlan(plan: RetentionResult, c: Colours): string {
  const rows = [
    ...plan.keep.map((k) => ({ b: k.backup, decision: c.green(`keep (${k.held ?? k.tiers.join(", ")})`) })),
    ...plan.prune.map((b) => ({ b, decision: c.yellow("prune") })),
  ]
    .sort((x, y) => y.b.started_at.getTime() - x.b.started_at.getTime())
    .map(({ b, decision }) => [String(b.id), isoSeconds(b.started_at), decision, humanBytes(b.bytes), b.file ?? ""]);
  let out = `${c.bold(`${plan.database}:`)}\n`;
  out += rows.length ? table(["id", "started", "decision", "size", "file"], rows, c) : "  no successful backups\n";
  for (const f of plan.unknownFiles) out += `  not in the catalog (left alone): ${f}\n`;
  return out;
}

const bytesOf = (rows: { bytes: number | null }[]) => rows.reduce((n, r) => n + (r.bytes ?? 0), 0);

/** Asks on the terminal (stderr, so that stdout carries only the output); true for y or yes. */
async function confirm(question: string): Promise<boolean> {
  const { createInterface } = await import("node:readline/promises");
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

export function registerRetention(program: Command): void {
  const retention = program
    .command("retention")
    .description("grandfather-father-son retention of backups: plan (read-only) and apply")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker retention plan
  $ pmt-worker retention apply --database bmgf`,
    );
  retention
    .command("plan")
    .description("what retention would keep (and by which tier) and prune now; changes nothing")
    .option("--database <name>", DATABASE_OPTION)
    .option("--json", "one JSON object per database (sizes in bytes, times in ISO 8601)")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker retention plan
  $ pmt-worker retention plan --database bmgf --json
  (RETAIN_DAILY, RETAIN_WEEKLY, RETAIN_MONTHLY set the tiers: pmt-worker config shows them)`,
    )
    .action(async (opts: { database?: string; json?: boolean }) => {
      const [{ withDatabases }, { backupTargets, findTarget }, { planDatabase }] = await Promise.all([
        import("./context.js"),
        import("../backups/target.js"),
        import("../retention/apply.js"),
      ]);
      const c = stdoutColours();
      // Each served database plans the backups in its own catalog.
      await withDatabases({ database: opts.database, ownCheck: true }, async ({ config, pool, url }) => {
        const all = backupTargets(url, config.backup);
        const targets = opts.database ? [findTarget(all, opts.database)] : all;
        for (const target of targets) {
          const plan = await planDatabase(config, pool, target.database);
          if (!opts.json) {
            process.stdout.write(formatPlan(plan, c));
            continue;
          }
          process.stdout.write(
            JSON.stringify({
              database: target.database,
              keep: plan.keep.map((k) => ({
                id: k.backup.id,
                file: k.backup.file,
                started_at: k.backup.started_at,
                bytes: k.backup.bytes,
                tiers: k.tiers,
                held: k.held,
              })),
              prune: plan.prune.map((b) => ({ id: b.id, file: b.file, started_at: b.started_at, bytes: b.bytes })),
              unknown_files: plan.unknownFiles,
            }) + "\n",
          );
        }
      });
    });

  retention
    .command("apply")
    .description(
      "apply retention now, as after each backup: print the plan, then (once confirmed) delete the backups it prunes and tag the kept ones with their tiers. " +
        "Asks before deleting on a terminal; elsewhere (cron, a script) give --yes. Only the backups shown are pruned: one that the plan adds meanwhile waits for the next run",
    )
    .option("--database <name>", DATABASE_OPTION)
    .option("--yes", "apply without asking (needed when stdin is not a terminal)")
    .option("--json", "with --yes: one JSON object per database (what was pruned, kept and left for the next run; sizes in bytes)")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker retention apply                     shows each database's plan and asks before pruning
  $ pmt-worker retention apply --database bmgf --yes
  $ pmt-worker retention apply --yes --json        for a script
  (pmt-worker retention plan shows the same plan and changes nothing)`,
    )
    .action(async (opts: { database?: string; yes?: boolean; json?: boolean }) => {
      if (opts.json && !opts.yes) {
        throw new UserError("retention apply --json needs --yes: JSON output asks nothing (run pmt-worker retention plan --json to see what it would do)");
      }
      // Before any database is opened: a script that cannot answer learns it at once.
      if (!opts.yes && !process.stdin.isTTY) {
        throw new UserError(
          "retention apply deletes backups and stdin is not a terminal to ask on: give --yes to apply without asking (pmt-worker retention plan shows what it would do)",
        );
      }
      const [{ withDatabases }, { backupTargets, findTarget }, { planDatabase, applyRetention }] = await Promise.all([
        import("./context.js"),
        import("../backups/target.js"),
        import("../retention/apply.js"),
      ]);
      const c = stdoutColours();
      const brief = (b: { id: number; file: string | null; started_at: Date; bytes: number | null }) => ({
        id: b.id,
        file: b.file,
        started_at: b.started_at,
        bytes: b.bytes,
      });
      await withDatabases({ database: opts.database, ownCheck: true }, async ({ config, pool, url, logger }) => {
        const all = backupTargets(url, config.backup);
        for (const target of opts.database ? [findTarget(all, opts.database)] : all) {
          const plan = await planDatabase(config, pool, target.database);
          if (!opts.json) process.stdout.write(formatPlan(plan, c));
          const prune = plan.prune.length;
          if (prune && !opts.yes) {
            const oldest = Math.min(...plan.prune.map((b) => b.started_at.getTime()));
            const noCopy = plan.pruneWithoutCopy.length
              ? `; ${plan.pruneWithoutCopy.length} of them ${plan.pruneWithoutCopy.length === 1 ? "has" : "have"} no offsite copy yet (BACKUP_DIR is below BACKUP_MIN_FREE_MB) and will exist nowhere`
              : "";
            const asked = `${target.database}: delete ${prune} ${prune === 1 ? "backup" : "backups"} (${humanBytes(bytesOf(plan.prune))}, the oldest ${humanSpan((Date.now() - oldest) / 1000)} old${noCopy})?`;
            if (!(await confirm(asked))) {
              process.stdout.write(`${target.database}: not applied\n`);
              continue;
            }
          }
          // Planned again as it applies, but only what was shown (and confirmed) is pruned.
          const done = await applyRetention(config, pool, logger, target.database, new Date(), { only: new Set(plan.prune.map((b) => b.id)) });
          if (opts.json) {
            process.stdout.write(
              JSON.stringify({
                database: target.database,
                pruned: done.prune.map(brief),
                pruned_without_offsite_copy: done.pruneWithoutCopy.map((b) => b.id),
                kept: done.keep.length,
                left_for_next_run: done.deferred.map(brief),
                unknown_files: done.unknownFiles,
              }) + "\n",
            );
            continue;
          }
          const without = done.pruneWithoutCopy.length ? c.red(` (${done.pruneWithoutCopy.length} without an offsite copy: BACKUP_DIR is nearly full)`) : "";
          const deferred = done.deferred.length
            ? `; ${done.deferred.length} more the plan now prunes ${done.deferred.length === 1 ? "was" : "were"} not shown and left for the next run (ids ${done.deferred.map((b) => b.id).join(", ")})`
            : "";
          process.stdout.write(
            `${target.database}: pruned ${done.prune.length} ${done.prune.length === 1 ? "backup" : "backups"} (${humanBytes(bytesOf(done.prune))})${without}, kept ${done.keep.length}${deferred}\n`,
          );
        }
      });
    });
}
