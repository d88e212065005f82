import type { Command } from "commander";
import { table } from "./format.js";

export function registerRetention(program: Command): void {
  const retention = program.command("retention").description("grandfather-father-son retention of backups");
  retention
    .command("plan")
    .description("what retention would keep (and by which tier) and prune now; changes nothing")
    .option("--database <name>", "one database of BACKUP_DATABASES or PMT_DATABASES (default: all)")
    .option("--json", "JSON output")
    .action(async (opts: { database?: string; json?: boolean }) => {
      const [{ withDatabases }, { backupTargets, findTarget }, { planDatabase }] = await Promise.all([
        import("./context.js"),
        import("../backups/target.js"),
        import("../retention/apply.js"),
      ]);
      // Each served database plans the backups in its own catalog.
      await withDatabases({ database: opts.database, ownCheck: true }, async ({ config, pool, url }) => {
        const all = backupTargets(url, config.backup);
        const targets = opts.database ? [findTarget(all, opts.database)] : all;
        for (const target of targets) {
          const plan = await planDatabase(config, pool, target.database);
          if (opts.json) {
            process.stdout.write(
              JSON.stringify({
                database: target.database,
                keep: plan.keep.map((k) => ({ id: k.backup.id, file: k.backup.file, started_at: k.backup.started_at, tiers: k.tiers, held: k.held })),
                prune: plan.prune.map((b) => ({ id: b.id, file: b.file, started_at: b.started_at })),
                unknown_files: plan.unknownFiles,
              }) + "\n",
            );
            continue;
          }
          const rows = [
            ...plan.keep.map((k) => [String(k.backup.id), k.backup.started_at.toISOString(), `keep (${k.held ?? k.tiers.join(", ")})`, k.backup.file ?? ""]),
            ...plan.prune.map((b) => [String(b.id), b.started_at.toISOString(), "prune", b.file ?? ""]),
          ].sort((a, b) => b[1]!.localeCompare(a[1]!));
          process.stdout.write(`${target.database}:\n`);
          process.stdout.write(rows.length ? table(["id", "started", "decision", "file"], rows) : "  no successful backups\n");
          for (const f of plan.unknownFiles) process.stdout.write(`  not in the catalog (left alone): ${f}\n`);
        }
      });
    });
}
